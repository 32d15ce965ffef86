"""``TextVectorization``: strings to token ids (or multi-hot / count / TF-IDF vectors), with
Keras 3's semantics (read against ``keras.layers.TextVectorization`` and the ``StringLookup`` it
is built on, Keras 3.15).

Keras code runs with only its import changed::

    from biolstm.keras import layers

    vectorize = layers.TextVectorization(max_tokens=20000, output_sequence_length=200)
    vectorize.adapt(train_texts)  # a list or NumPy array of strings
    x_train = vectorize(train_texts)  # torch int64 (batch, 200): 0 padding, 1 "[UNK]"
    model.fit(x_train, y_train)

As with Keras on its torch backend, the layer works on the raw strings outside the model (the
models take tensors, which cannot hold strings): vectorize the texts, then fit and predict on
the ids.
"""

from __future__ import annotations

import numbers
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .layers import Layer

PAD, OOV = "", "[UNK]"  # Keras' mask and OOV tokens
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = ("whitespace", "character")
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")

# Keras lowercases with tf.strings.lower (no encoding: ASCII letters only) and strips the
# characters of the regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\'], which is string.punctuation.
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", string.punctuation)
_LOWER_STRIP = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")  # tf.strings.split: runs of ASCII whitespace


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _as_text(value: Any, encoding: str, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode(encoding)
    raise TypeError(f"{what}: expected strings, got {_describe(value)}")


class TextVectorization(Layer):
    """Maps each string to token ids, or to one vector over the vocabulary.

    Each string is standardised, split into tokens, joined into n-grams, then looked up:

    - ``standardize``: ``"lower_and_strip_punctuation"`` (default), ``"lower"``,
      ``"strip_punctuation"``, None, or a callable. As in Keras, "lower" lowercases ASCII letters
      only and punctuation is ``string.punctuation``. A callable gets the batch as a 1-D NumPy
      array of str (what Keras 3 hands it on its non-TensorFlow backends) and returns an
      array-like of as many strings, e.g. ``lambda x: np.char.replace(np.char.lower(x), "<br />", " ")``.
    - ``split``: ``"whitespace"`` (default: runs of ASCII whitespace), ``"character"``, None
      (each string is one token; a 2-D ``(batch, T)`` array is then rows of ready-made tokens),
      or a callable that takes one string and returns its tokens. The tokens may be ints, which
      become their decimal strings, so biolstm's k-mer tokenizer fits as it is:
      ``split=lambda s: biolstm.data.encode.kmer_tokens(s, 3)`` (k-mer codes; 0 for a k-mer
      with an N).
    - ``ngrams``: None, an int n (the 1- to n-grams) or a tuple (or list) of widths; n-grams are the
      tokens joined by a space, all of the first width, then all of the next, as
      ``tf.strings.ngrams``.

    ``output_mode`` ``"int"`` (default) gives int64 ids ``(batch, length)``: 0 is padding
    (``""``), 1 is ``"[UNK]"`` (tokens not in the vocabulary), learned tokens from 2; rows are
    padded with 0 to ``output_sequence_length`` (and cut to it), or without it to the longest
    row of the batch. ``"multi_hot"`` (1 where a token occurs), ``"count"`` (its count) and
    ``"tf_idf"`` (count times the token's IDF weight) give float32 ``(batch, vocabulary_size())``
    (``(batch, max_tokens)`` with ``pad_to_max_tokens``), with no padding token: index 0 is
    ``"[UNK]"``, learned tokens from 1. A single string gives the result for ``[string]``
    without the batch axis.

    The vocabulary comes from ``adapt(texts)`` or ``vocabulary=`` (a list, or the path of a
    UTF-8 text file with one token per line). ``adapt`` orders tokens by count, high to low;
    equally frequent tokens are ordered by the tokens themselves, high to low (code point
    order: ``"b"`` before ``"a"``, ``"zebra"`` before ``"apple"``), as Keras' StringLookup
    sorts them (``np.lexsort((tokens, counts))[::-1]``). ``max_tokens`` counts the reserved
    tokens, so ``max_tokens=10`` keeps the 8 most frequent tokens in "int" mode and 9 in the
    others. In "tf_idf" mode ``adapt`` also learns ``idf = log(1 + num_documents / (1 +
    document_frequency))`` per token (each string a document), and gives "[UNK]" the mean of
    those; with ``vocabulary=``, pass ``idf_weights=`` too.

    ``sparse=True`` and ``ragged=True`` are refused (Keras supports them on TensorFlow only).
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | Callable | None = "lower_and_strip_punctuation",
        split: str | Callable | None = "whitespace",
        ngrams: int | tuple[int, ...] | None = None,
        output_mode: str = "int",
        output_sequence_length: int | None = None,
        pad_to_max_tokens: bool = False,
        vocabulary: Sequence[str] | str | os.PathLike | None = None,
        idf_weights: Sequence[float] | np.ndarray | None = None,
        sparse: bool = False,
        ragged: bool = False,
        encoding: str = "utf-8",
        name: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if sparse:
            raise ValueError(
                "sparse: TextVectorization returns dense torch tensors in biolstm (Keras supports "
                "sparse=True on its TensorFlow backend only); expected False, got True"
            )
        if ragged:
            raise ValueError(
                "ragged: TextVectorization returns padded tensors in biolstm (Keras supports ragged=True "
                "on its TensorFlow backend only); expected False, got True"
            )
        if not (standardize is None or callable(standardize) or standardize in STANDARDIZE):
            raise ValueError(
                f"standardize: expected one of {', '.join(map(repr, STANDARDIZE))}, None or a callable, "
                f"got {standardize!r}"
            )
        if not (split is None or callable(split) or split in SPLIT):
            raise ValueError(f"split: expected 'whitespace', 'character', None or a callable, got {split!r}")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)  # Keras' old names
        if output_mode not in OUTPUT_MODES:
            hint = " (one_hot is StringLookup's, not TextVectorization's)" if output_mode == "one_hot" else ""
            raise ValueError(
                f"output_mode: expected one of {', '.join(map(repr, OUTPUT_MODES))}, got {output_mode!r}{hint}"
            )
        self._ngrams_arg = ngrams
        self._ngrams = self._check_ngrams(ngrams)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
                raise TypeError(f"max_tokens: expected an int > 1 or None, got {_describe(max_tokens)}")
            if max_tokens <= 1:
                raise ValueError(f"max_tokens: expected an int > 1 (it counts the reserved tokens), got {max_tokens}")
            max_tokens = int(max_tokens)
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError("pad_to_max_tokens: True needs max_tokens (the output width), got max_tokens=None")
        if output_sequence_length is not None:
            if output_mode != "int":
                raise ValueError(
                    f"output_sequence_length: only for output_mode='int', got {output_sequence_length!r} "
                    f"with output_mode={output_mode!r}"
                )
            ok = isinstance(output_sequence_length, numbers.Integral) and not isinstance(output_sequence_length, bool)
            if not ok or output_sequence_length < 0:
                raise ValueError(
                    f"output_sequence_length: expected an int >= 0 or None, got {output_sequence_length!r}"
                )
            output_sequence_length = int(output_sequence_length)
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"idf_weights: only for output_mode='tf_idf', got output_mode={output_mode!r}")
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(
                "idf_weights: output_mode='tf_idf' with vocabulary= also needs idf_weights= (one per token)"
            )
        if idf_weights is not None and vocabulary is None:
            raise ValueError("idf_weights: pass it with vocabulary= (adapt() learns both)")
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.encoding = encoding
        self._tokens: list[str] | None = None  # learned tokens, without the reserved ones
        self._index: dict[str, int] = {}
        self._idf: np.ndarray | None = None  # float32, one per output column
        self._has_input_vocabulary = vocabulary is not None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    @staticmethod
    def _check_ngrams(ngrams) -> tuple[int, ...] | None:
        if ngrams is None:
            return None
        if isinstance(ngrams, list):  # a tuple that went through JSON
            ngrams = tuple(ngrams)
        widths = (ngrams,) if isinstance(ngrams, int) and not isinstance(ngrams, bool) else ngrams
        if (
            not isinstance(widths, tuple)
            or not widths
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths)
        ):
            raise ValueError(f"ngrams: expected None, an int >= 1 or a tuple of ints >= 1, got {ngrams!r}")
        return tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else widths

    # ------------------------------------------------------------------ vocabulary
    def _start(self) -> int:
        """Index of the first learned token: after "" and "[UNK]" in int mode, after "[UNK]" otherwise."""
        return 2 if self.output_mode == "int" else 1

    def _reserved(self) -> list[str]:
        return [PAD, OOV] if self.output_mode == "int" else [OOV]

    def _name(self) -> str:
        return self.layer_name or "TextVectorization"

    def vocabulary_size(self) -> int:
        """The number of tokens, the reserved ones included (the ``input_dim`` of an Embedding
        that takes the ids); before ``adapt`` or ``vocabulary=``, just the reserved ones."""
        return self._start() + len(self._tokens or [])

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The tokens in index order: ``["", "[UNK]", ...]`` in int mode, ``["[UNK]", ...]``
        otherwise, so ``get_vocabulary()[i]`` is the token of id (or output column) ``i``."""
        tokens = list(self._tokens or [])
        return self._reserved() + tokens if include_special_tokens else tokens

    def set_vocabulary(
        self, vocabulary: Sequence[str] | str | os.PathLike, idf_weights: Sequence[float] | np.ndarray | None = None
    ) -> None:
        """Use ``vocabulary`` (a list of tokens, or the path of a text file with one per line)
        instead of one from ``adapt``. It may start with the reserved tokens (what
        ``get_vocabulary()`` returns) or leave them out. In "tf_idf" mode ``idf_weights`` (one
        per token of ``vocabulary``) is required; without the reserved tokens, "[UNK]" gets
        their mean, as in Keras."""
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("idf_weights: output_mode='tf_idf' needs idf_weights (one per vocabulary token)")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"idf_weights: only for output_mode='tf_idf', got output_mode={self.output_mode!r}")
        vocab = self._read_vocabulary(vocabulary)
        if not vocab:
            raise ValueError("vocabulary: expected at least one token, got an empty vocabulary")
        reserved = self._reserved()
        found_reserved = vocab[: len(reserved)] == reserved
        tokens = vocab[len(reserved) :] if found_reserved else vocab
        repeated = sorted(t for t, n in Counter(tokens).items() if n > 1)
        if repeated:
            raise ValueError(f"vocabulary: expected unique tokens, got repeats of {repeated[:10]}")
        if PAD in tokens:
            at = vocab.index(PAD, len(reserved) if found_reserved else 0)
            raise ValueError(
                f"vocabulary: the padding token '' may only come first (with the reserved tokens {reserved} "
                f"at the start, or left out), got it at index {at}"
            )
        size = len(reserved) + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(
                f"vocabulary: {size} tokens with the reserved ones is more than max_tokens={self.max_tokens}"
            )
        idf = None
        if idf_weights is not None:
            w = np.asarray(idf_weights, dtype=np.float64)
            if w.ndim != 1 or len(w) != len(vocab):
                raise ValueError(
                    f"idf_weights: expected one weight per vocabulary token ({len(vocab)}), got shape {w.shape}"
                )
            if not found_reserved:
                w = np.concatenate([np.full(len(reserved), w.mean() if len(w) else 0.0), w])
            idf = self._pad_idf(w.astype(np.float32))
        self._set(tokens, idf)

    def _read_vocabulary(self, vocabulary) -> list[str]:
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"vocabulary: no vocabulary file {path!r} (expected a list of tokens or a file path)")
            with open(path, encoding=self.encoding, newline="") as f:
                lines = [line[:-1] if line.endswith("\r") else line for line in f.read().split("\n")]
            while lines and lines[-1] == "":
                lines.pop()
            return lines
        if isinstance(vocabulary, Tensor) or not isinstance(vocabulary, (list, tuple, np.ndarray)):
            raise TypeError(f"vocabulary: expected a list of strings or a file path, got {_describe(vocabulary)}")
        arr = np.asarray(vocabulary, dtype=object)
        if arr.ndim != 1:
            raise ValueError(f"vocabulary: expected a flat list of tokens, got shape {arr.shape}")
        return [_as_text(t, self.encoding, "vocabulary") for t in arr]

    def _pad_idf(self, w: np.ndarray) -> np.ndarray:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            w = np.concatenate([w, np.zeros(self.max_tokens - len(w), np.float32)])
        return w

    def _set(self, tokens: list[str], idf: np.ndarray | None) -> None:
        start = self._start()
        self._tokens = list(tokens)
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._idf = idf

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learn the vocabulary (and, in "tf_idf" mode, the IDF weights) from ``data``: a list,
        tuple or NumPy array of strings (each one document), or an iterable of such batches
        (``steps`` of them at most). Replaces any earlier vocabulary; see the class docstring
        for the order and ``max_tokens``."""
        if self._has_input_vocabulary:
            raise ValueError(
                f"{self._name()}: cannot adapt a layer given vocabulary= at construction; "
                "call set_vocabulary() or make the layer without vocabulary="
            )
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps: expected an int >= 1 or None, got {steps!r}")
        if isinstance(data, (str, bytes, list, tuple, np.ndarray)):
            batches: Iterable = [data]
        elif isinstance(data, Iterable) and not isinstance(data, Tensor):
            batches = data
        else:
            raise TypeError(f"data: expected a list or array of strings, or an iterable of them, got {_describe(data)}")
        counts: Counter = Counter()
        doc_counts: Counter = Counter()
        n_docs = 0
        for k, batch in enumerate(batches):
            if steps is not None and k >= steps:
                break
            docs, _ = self._tokenize(batch, "data")
            for doc in docs:
                counts.update(doc)
                if self.output_mode == "tf_idf":
                    doc_counts.update(set(doc))
            n_docs += len(docs)
        counts.pop(PAD, None)
        counts.pop(OOV, None)
        if not counts:
            raise ValueError("data: found no tokens to learn a vocabulary from (empty texts, or all stripped)")
        order = sorted(counts, key=lambda t: (counts[t], t), reverse=True)  # = np.lexsort((tokens, counts))[::-1]
        if self.max_tokens is not None:
            order = order[: self.max_tokens - self._start()]
        idf = None
        if self.output_mode == "tf_idf":
            df = np.array([doc_counts[t] for t in order], dtype=np.float64)
            learned = np.log(1 + n_docs / (1 + df)).astype(np.float32)
            idf = self._pad_idf(np.concatenate([np.full(self._start(), learned.mean(), np.float32), learned]))
        self._set(order, idf)

    # ------------------------------------------------------------------ preprocessing
    def _strings(self, inputs, what: str) -> tuple[np.ndarray, bool]:
        """Inputs as an object array of str, 1-D (or 2-D rows of tokens with split=None), and
        whether a single string came in."""
        from .functional import KerasTensor

        if isinstance(inputs, KerasTensor):
            self._symbolic_error()
        if isinstance(inputs, Tensor):
            raise TypeError(
                f"{what}: expected strings (a list or NumPy array of str), got a torch tensor of "
                f"{inputs.dtype}; TextVectorization turns texts into ids, so it takes the texts"
            )
        single = isinstance(inputs, (str, bytes, np.str_, np.bytes_))
        if single:
            inputs = [inputs]
        elif not isinstance(inputs, (list, tuple, np.ndarray)):
            if hasattr(inputs, "to_numpy"):  # a pandas Series
                inputs = inputs.to_numpy()
            else:
                raise TypeError(
                    f"{what}: expected a string or a list or NumPy array of strings, got {_describe(inputs)}"
                )
        arr = np.asarray(inputs, dtype=object)
        if arr.ndim == 2 and (arr.shape[1] == 1 or self.split is None):
            arr = arr[:, 0] if self.split is not None else arr
        elif arr.ndim != 1:
            raise ValueError(
                f"{what}: expected a 1-D batch of strings (or shape (batch, 1)), got shape {arr.shape}"
                + ("" if self.split is None else "; a (batch, T) array of tokens needs split=None")
            )
        flat = arr.reshape(-1)
        texts = np.empty(flat.shape, dtype=object)
        for i, v in enumerate(flat):
            texts[i] = _as_text(v, self.encoding, what)
        return texts.reshape(arr.shape), single

    def _standardize(self, texts: np.ndarray) -> np.ndarray:
        std = self.standardize
        if std is None:
            return texts
        if callable(std):
            out = np.asarray(std(np.array(list(texts.reshape(-1)), dtype=str).reshape(texts.shape)))
            if out.shape != texts.shape:
                raise ValueError(
                    f"standardize: the callable returned shape {out.shape} for a batch of shape {texts.shape}; "
                    "expected one string per input string"
                )
            res = np.empty(out.size, dtype=object)
            for i, v in enumerate(out.reshape(-1)):
                res[i] = _as_text(v, self.encoding, "standardize (the callable's result)")
            return res.reshape(out.shape)
        table = {"lower": _LOWER, "strip_punctuation": _STRIP, "lower_and_strip_punctuation": _LOWER_STRIP}[std]
        return np.vectorize(lambda s: s.translate(table), otypes=[object])(texts) if texts.size else texts

    def _split(self, text: str) -> list[str]:
        if self.split == "whitespace":
            return [t for t in _WHITESPACE.split(text) if t]
        if self.split == "character":
            return list(text)
        out = self.split(text)
        if isinstance(out, (str, bytes)):
            raise TypeError(f"split: the callable must return a list of tokens, got the string {out!r}")
        tokens = []
        for t in out:
            if isinstance(t, (numbers.Integral, np.integer)) and not isinstance(t, bool):
                tokens.append(str(int(t)))
            else:
                tokens.append(_as_text(t, self.encoding, "split (the callable's tokens)"))
        return tokens

    def _tokenize(self, inputs, what: str) -> tuple[list[list[str]], bool]:
        """Standardise, split and join into n-grams: one list of tokens per document."""
        texts, single = self._strings(inputs, what)
        texts = self._standardize(texts)
        if self.split is None:
            docs = [[t] for t in texts] if texts.ndim == 1 else [list(row) for row in texts]
        else:
            docs = [self._split(t) for t in texts]
        if self._ngrams is not None:
            docs = [[" ".join(d[i : i + w]) for w in self._ngrams for i in range(len(d) - w + 1)] for d in docs]
        return docs, single

    # ------------------------------------------------------------------ calling
    def _symbolic_error(self):
        raise ValueError(
            f"{self._name()}: in biolstm, TextVectorization is used outside the model, on the raw strings: "
            "x = vectorize(texts) before fit()/predict(), and the model starts at the ids (e.g. "
            "Input(shape=(None,)) -> Embedding); biolstm models take tensors, which cannot hold strings "
            "(as with Keras on its torch backend)"
        )

    def __call__(self, *args, **kwargs):
        from .functional import is_symbolic

        if is_symbolic(args, kwargs):
            self._symbolic_error()
        return super().__call__(*args, **kwargs)

    def ensure_built(self, input_shape):
        self._symbolic_error()  # only models build layers from shapes

    def forward(self, inputs, mask: Tensor | None = None) -> Tensor:
        """Token ids (int64) or vectors (float32) for ``inputs`` (a string, or a list/array of them)."""
        if self._tokens is None:
            raise ValueError(
                f"{self._name()}: the layer has no vocabulary yet; call adapt() on sample texts "
                "or pass vocabulary= (or call set_vocabulary()) before calling it"
            )
        docs, single = self._tokenize(inputs, "inputs")
        out = self._ids(docs) if self.output_mode == "int" else self._vectors(docs)
        return out[0] if single else out

    def _lookup(self, doc: list[str]) -> list[int]:
        index, oov = self._index, self._start() - 1
        return [0 if t == PAD and self.output_mode == "int" else index.get(t, oov) for t in doc]

    def _ids(self, docs: list[list[str]]) -> Tensor:
        rows = [self._lookup(d) for d in docs]
        length = self.output_sequence_length
        if length is None:
            length = max((len(r) for r in rows), default=0)
        out = torch.zeros(len(rows), length, dtype=torch.int64)
        for i, r in enumerate(rows):
            r = r[:length]
            out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return out

    def _depth(self) -> int:
        return self.max_tokens if self.pad_to_max_tokens and self.max_tokens is not None else self.vocabulary_size()

    def _vectors(self, docs: list[list[str]]) -> Tensor:
        out = np.zeros((len(docs), self._depth()), dtype=np.float32)
        for i, d in enumerate(docs):
            ids = [j for t, j in zip(d, self._lookup(d)) if t != PAD]  # '' is dropped outside int mode
            np.add.at(out[i], ids, 1.0)
        if self.output_mode == "multi_hot":
            out = np.minimum(out, 1.0)
        elif self.output_mode == "tf_idf":
            out = out * self._idf
        return torch.from_numpy(out)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (self.output_sequence_length,)
        return (self._depth(),)

    def compute_mask(self, x, mask):
        return None

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The arguments that rebuild the layer, its vocabulary (from ``adapt`` too) and IDF
        weights included, as JSON-able lists. A callable ``standardize`` or ``split`` cannot be
        saved (a ValueError), as with biolstm's callable activations."""
        for arg in ("standardize", "split"):
            if callable(getattr(self, arg)):
                raise ValueError(
                    f"{arg}: a TextVectorization with a callable {arg} cannot be saved in a config; "
                    f"use one of Keras' names, or rebuild the layer with the callable and set_vocabulary()"
                )
        idf = None
        if self._idf is not None:
            idf = [float(w) for w in self._idf[: self.vocabulary_size()]]
        ngrams = list(self._ngrams_arg) if isinstance(self._ngrams_arg, tuple) else self._ngrams_arg
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary": None if self._tokens is None else self.get_vocabulary(),
            "idf_weights": idf,
            "encoding": self.encoding,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextVectorization:
        """The layer ``get_config()`` describes (Keras' own config keys are accepted too)."""
        cfg = dict(config)
        for key in ("vocabulary_size", "trainable", "dtype", "sparse", "ragged"):  # Keras bookkeeping
            if key in ("sparse", "ragged") and cfg.get(key):
                continue  # let __init__ refuse it with its message
            cfg.pop(key, None)
        if isinstance(cfg.get("ngrams"), list):
            cfg["ngrams"] = tuple(cfg["ngrams"])
        return cls(**cfg)

    def extra_repr(self) -> str:
        return f"output_mode={self.output_mode!r}, vocabulary_size={self.vocabulary_size()}"


TEXT_LAYERS: dict[str, type[Layer]] = {"TextVectorization": TextVectorization}
