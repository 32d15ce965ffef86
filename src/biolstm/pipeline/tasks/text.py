"""The text task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from .base import (
    AT_LEAST_1,
    SEED,
    TEST,
    VAL,
    FoldKeys,
    OutcomeTask,
    Prepared,
    check_data_keys,
    make_split,
    outcome_baselines,
    split_outcome,
    split_record,
)
from .outcome import KINDS, Outcome


# ---------------------------------------------------------------------------------- text
@dataclass
class TextData(Config, FoldKeys):
    """data: section of a text config (e.g. biomedical abstracts, or peaks as k-mer words) to an outcome."""

    _what = "data config"

    file: str | None = None  # CSV/TSV with a text and a label column
    text_col: str = "text"  # the column holding the texts
    label_col: str = "label"  # the column holding the labels
    outcome: str = "auto"  # auto (2 classes: binary, more: multiclass) | binary | multiclass | multilabel | regression
    positive: str | int | list | None = None  # the positive class, or a list of classes counted as positive (binary)
    multilabel_sep: str = ";"  # separates the labels of one text (outcome: multilabel)
    level: str = "word"  # word | char: the tokens
    max_vocab: int = 20000  # largest vocabulary (the most frequent training tokens)
    min_count: int = 2  # tokens seen fewer times in training are out of vocabulary
    max_length: int = 400  # tokens kept per text
    split: str = "random"  # random (stratified for classes)
    test: float = 0.2  # test fraction
    val: float = 0.1  # validation fraction
    seed: int = 0  # seeds the split

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a CSV/TSV of texts, got none")
        check_data_keys(self, {
            "max_vocab": (lambda v: v >= 3, "an int >= 3 (padding and out-of-vocabulary take 2)"),
            "min_count": AT_LEAST_1, "max_length": AT_LEAST_1, "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.level, ("word", "char"), "data.level")
        check_choice(self.split, ("random",), "data.split")
        check_choice(self.outcome, KINDS, "data.outcome")


class TextTask(OutcomeTask):
    name = "text"
    data_class = TextData
    model_from_data = ("vocab_size", "conv_filters", "task", "num_outputs")  # set from the data

    def _read(self, d, path):
        """Texts and, when the table has the label column, labels (None otherwise)."""
        from ...data.tables import read_table

        df = read_table(path, dtype=str, keep_default_na=False)
        if d.text_col not in df.columns:
            raise InputError(f"{path}: expected a column {d.text_col!r}, got {list(df.columns)}")
        labels = df[d.label_col].tolist() if d.label_col in df.columns else None
        return df[d.text_col].tolist(), labels

    def prepare(self, d, log) -> Prepared:
        from ...data import Tokenizer

        log("reading texts")
        texts, labels = self._read(d, d.file)
        if labels is None:
            raise InputError(f"{d.file}: expected a column {d.label_col!r}, found none")
        o = Outcome(d.outcome, d.positive, d.multilabel_sep, f"{d.file}: column {d.label_col!r}",
                    lambda k: f"{d.file}: row {k + 2}, column {d.label_col!r}")  # fmt: skip

        def split(strata):
            return make_split(d, len(labels), strata, class_names=getattr(o, "classes_", None))

        s, y, truth = split_outcome(o, labels, split, f"data.split ({d.split})")
        tok = Tokenizer(d.level, max_vocab=d.max_vocab, min_count=d.min_count).fit([texts[i] for i in s.train])
        state = {"outcome": o.to_json(), "classes": getattr(o, "classes_", None), "tokenizer": tok.to_json()}

        def part(idx):
            ids, n = tok.encode([texts[i] for i in idx], d.max_length)
            return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, y[idx]

        from sklearn.feature_extraction.text import CountVectorizer

        bow = CountVectorizer(
            vocabulary={k: v - 2 for k, v in tok.vocab.items() if v > 1},
            tokenizer=tok.split,
            lowercase=False,
            token_pattern=None,
        )
        def words(raw: list[str]) -> np.ndarray:
            return bow.transform(raw).toarray().astype(np.float32)

        fits = outcome_baselines(o, truth[s.train], [texts[i] for i in s.train],
                                 {f"bag_of_words_{o.linear_kind()}": words})  # fmt: skip
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[int(i) for i in s.test],
            model_overrides={"vocab_size": tok.vocab_size, "conv_filters": 0, **o.head()},
            state=state,
            baselines={name: fit([texts[i] for i in s.test]) for name, fit in fits.items()},
            baseline_fits=fits,
            split=split_record("random", [f"row {i + 2}" for i in range(len(y))], s),  # table rows (header: 1)
        )

    def read_new(self, d, state: dict, path: str | None = None, labeled: bool = False):
        """(inputs, row numbers, targets or None, the texts) of a new table (``path``, else data.file)."""
        from ...data import Tokenizer

        path = path or d.file
        texts, labels = self._read(d, path)
        tok = Tokenizer.from_json(state["tokenizer"])
        ids, n = tok.encode(texts, d.max_length)
        y = None
        if labels is not None:
            o = self.outcome(state)
            o.where, o.at = f"{path}: column {d.label_col!r}", lambda k: f"{path}: row {k + 2}, column {d.label_col!r}"
            y = o.transform(labels)
        return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, list(range(len(texts))), y, texts

