"""TextVectorization: Keras 3's vocabulary order, reserved ids, output modes and errors, on tiny
corpora with hand-computed values, and text -> ids -> LSTM end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from biolstm.data.encode import kmer_tokens
from biolstm.keras import Input, Sequential
from biolstm.keras import layers as L
from biolstm.keras.layers import LAYERS, TextVectorization, layer_from_config

CORPUS = ["The cat sat.", "the dog sat", "a cat!"]  # the 2, sat 2, cat 2, dog 1, a 1


def _ids(t: torch.Tensor) -> list:
    assert t.dtype == torch.int64
    return t.tolist()


# ---------------------------------------------------------------- vocabulary
def test_adapt_orders_by_count_then_token_high_to_low_with_reserved_ids():
    v = TextVectorization()
    v.adapt(CORPUS)
    # counts high to low; ties (the/sat/cat, dog/a) by token high to low, as Keras' lexsort()[::-1]
    assert v.get_vocabulary() == ["", "[UNK]", "the", "sat", "cat", "dog", "a"]
    assert v.get_vocabulary(include_special_tokens=False) == ["the", "sat", "cat", "dog", "a"]
    assert v.vocabulary_size() == 7
    assert _ids(v(["the cat ate", "dog"])) == [[2, 4, 1], [5, 0, 0]]  # 0 pads to the longest, 1 is [UNK]


def test_non_int_modes_have_no_padding_token():
    v = TextVectorization(output_mode="multi_hot")
    v.adapt(CORPUS)
    assert v.get_vocabulary() == ["[UNK]", "the", "sat", "cat", "dog", "a"]
    assert v.vocabulary_size() == 6


def test_max_tokens_counts_the_reserved_tokens():
    v = TextVectorization(max_tokens=4)
    v.adapt(CORPUS)
    assert v.get_vocabulary() == ["", "[UNK]", "the", "sat"]
    assert _ids(v(["cat sat"])) == [[1, 3]]
    c = TextVectorization(max_tokens=4, output_mode="count")
    c.adapt(CORPUS)
    assert c.get_vocabulary() == ["[UNK]", "the", "sat", "cat"]
    assert c(["dog cat cat"]).tolist() == [[1.0, 0.0, 0.0, 2.0]]


def test_adapt_again_replaces_and_iterable_of_batches_and_steps():
    v = TextVectorization()
    v.adapt(CORPUS)
    v.adapt((b for b in [["x y y"], ["z z z"], ["w w w w"]]), steps=2)
    assert v.get_vocabulary() == ["", "[UNK]", "z", "y", "x"]


def test_set_vocabulary_with_or_without_reserved_tokens_and_from_file(tmp_path):
    v = TextVectorization(vocabulary=["earth", "wind", "and", "fire"])  # Keras' docstring example
    assert v.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    v.set_vocabulary(["", "[UNK]", "fire", "earth"])
    assert v.get_vocabulary() == ["", "[UNK]", "fire", "earth"]
    path = tmp_path / "vocab.txt"
    path.write_text("earth\nwind\r\nand\nfire\n\n", encoding="utf-8")
    f = TextVectorization(vocabulary=str(path), output_sequence_length=6)
    assert f.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert _ids(f(["earth wind and fire", "water"])) == [[2, 3, 4, 5, 0, 0], [1, 0, 0, 0, 0, 0]]
    g = TextVectorization(vocabulary=path)  # a PathLike too
    assert g.vocabulary_size() == 6


# ---------------------------------------------------------------- int mode shapes
def test_output_sequence_length_pads_and_truncates():
    v = TextVectorization(output_sequence_length=3, vocabulary=["a", "b", "c", "d"])
    assert _ids(v(["a b c d", "b", ""])) == [[2, 3, 4], [3, 0, 0], [0, 0, 0]]
    assert tuple(v(["a"]).shape) == (1, 3)
    assert _ids(v("d c b a")) == [5, 4, 3]  # a single string: no batch axis
    assert tuple(TextVectorization(vocabulary=["a"])([""]).shape) == (1, 0)


def test_inputs_as_numpy_bytes_and_batch_by_one():
    v = TextVectorization(vocabulary=["a", "b"])
    want = [[2, 3], [3, 0]]
    assert _ids(v(np.array(["a b", "b"]))) == want
    assert _ids(v(np.array([["a b"], ["b"]]))) == want  # Keras' (batch, 1) layout
    assert _ids(v([b"a b", "b"])) == want
    assert _ids(v(("a b", "b"))) == want


def test_ngrams_int_and_tuple():
    v = TextVectorization(ngrams=2)
    v.adapt(["a b c"])
    # tokens by width (1-grams then 2-grams, as tf.strings.ngrams); all count 1 -> ordered high to low
    assert v.get_vocabulary() == ["", "[UNK]", "c", "b c", "b", "a b", "a"]
    assert _ids(v(["a b c"])) == [[6, 4, 2, 5, 3]]  # a, b, c, "a b", "b c"
    w = TextVectorization(ngrams=(2,), vocabulary=["a b", "b c"])
    assert _ids(w(["a b c", "a"])) == [[2, 3], [0, 0]]  # a 1-token text has no 2-gram


# ---------------------------------------------------------------- output modes
DOCS = ["a a b", "b c", "c"]  # counts: a 2, b 2, c 2 -> vocab [c, b, a]; df: a 1, b 2, c 2; 3 documents


def test_multi_hot_and_count():
    m = TextVectorization(output_mode="multi_hot")
    m.adapt(DOCS)
    assert m.get_vocabulary() == ["[UNK]", "c", "b", "a"]
    out = m(["a a z", "c b", ""])
    assert out.dtype == torch.float32
    assert out.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]]
    c = TextVectorization(output_mode="count")
    c.adapt(DOCS)
    assert c(["a a z z z", "c b c"]).tolist() == [[3, 0, 0, 2], [0, 2, 1, 0]]
    assert c("a c").tolist() == [0, 1, 0, 1]


def test_tf_idf_learns_keras_idf_and_unk_gets_their_mean():
    t = TextVectorization(output_mode="tf_idf")
    t.adapt(DOCS)
    idf_c, idf_b, idf_a = math.log(1 + 3 / 3), math.log(1 + 3 / 3), math.log(1 + 3 / 2)
    unk = (idf_c + idf_b + idf_a) / 3
    out = t(["a a z", "b c c"])
    assert out.dtype == torch.float32
    want = [[unk, 0, 0, 2 * idf_a], [0, 2 * idf_c, idf_b, 0]]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    cfg = t.get_config()
    np.testing.assert_allclose(cfg["idf_weights"], [unk, idf_c, idf_b, idf_a], rtol=1e-6)


def test_tf_idf_with_given_weights_and_pad_to_max_tokens():
    t = TextVectorization(output_mode="tf_idf", vocabulary=["x", "y"], idf_weights=[1.0, 3.0])
    assert t.get_vocabulary() == ["[UNK]", "x", "y"]
    assert t(["x y y q"]).tolist() == [[2.0, 1.0, 6.0]]  # [UNK] weight: the mean, 2
    p = TextVectorization(
        output_mode="tf_idf",
        max_tokens=5,
        pad_to_max_tokens=True,
        vocabulary=["[UNK]", "x", "y"],
        idf_weights=[0.5, 1, 3],
    )
    assert p(["x q"]).tolist() == [[0.5, 1.0, 0.0, 0.0, 0.0]]
    h = TextVectorization(output_mode="multi_hot", max_tokens=6, pad_to_max_tokens=True, vocabulary=["x"])
    assert tuple(h(["x", "y"]).shape) == (2, 6)


# ---------------------------------------------------------------- standardize / split
def test_standardize_options():
    text = ["Hi, There! ÉTÉ"]

    def vocab_of(std):
        v = TextVectorization(standardize=std)
        v.adapt(text)
        return sorted(v.get_vocabulary(include_special_tokens=False))

    assert vocab_of("lower_and_strip_punctuation") == sorted(
        ["hi", "there", "ÉtÉ"]
    )  # ASCII letters only, as tf.strings.lower
    assert vocab_of("lower") == sorted(["hi,", "there!", "ÉtÉ"])
    assert vocab_of("strip_punctuation") == sorted(["Hi", "There", "ÉTÉ"])
    assert vocab_of(None) == sorted(["Hi,", "There!", "ÉTÉ"])
    seen = []

    def custom(x):
        seen.append(x)
        return np.char.replace(np.char.lower(x), "<br />", " ")

    c = TextVectorization(standardize=custom, vocabulary=["good", "film"])
    assert _ids(c(["GOOD<br />Film", "film"])) == [[2, 3], [3, 0]]
    assert isinstance(seen[0], np.ndarray) and seen[0].dtype.kind == "U"  # as Keras 3 on torch/JAX


def test_split_options():
    ch = TextVectorization(split="character", standardize=None)
    ch.adapt(["abca"])
    assert ch.get_vocabulary() == ["", "[UNK]", "a", "c", "b"]
    assert _ids(ch(["cab", "ad"])) == [[3, 2, 4], [2, 1, 0]]
    ws = TextVectorization(vocabulary=["a", "b"])
    assert _ids(ws([" a\t\n b  "])) == [[2, 3]]  # runs of whitespace, stripped ends
    none = TextVectorization(split=None, vocabulary=["red fox", "dog"])
    assert _ids(none(["red fox", "dog", "cat"])) == [[2], [3], [1]]  # each string one token
    assert _ids(none(np.array([["dog", "red fox"], ["cat", "dog"]]))) == [[3, 2], [1, 3]]  # rows of tokens
    cs = TextVectorization(split=lambda s: s.split("-"), standardize=None, vocabulary=["a", "b c"])
    assert _ids(cs(["a-b c-d"])) == [[2, 3, 1]]


def test_split_callable_biolstm_kmer_tokenizer():
    v = TextVectorization(split=lambda s: kmer_tokens(s, 2), standardize=None)
    v.adapt(["ACGT", "ACNA"])
    # 2-mer codes (1 + base-4 number; 0 for a k-mer with N): AC=2 twice, CG=7, GT=12, CN=0, NA=0
    assert v.get_vocabulary() == ["", "[UNK]", "2", "0", "7", "12"]
    assert _ids(v(["ACGTT", "acg"])) == [[2, 4, 5, 1], [2, 4, 0, 0]]


# ---------------------------------------------------------------- config
def test_config_round_trips_vocabulary_and_idf_as_json():
    t = TextVectorization(output_mode="tf_idf", ngrams=(1, 2), max_tokens=50, name="tv")
    t.adapt(DOCS)
    cfg = json.loads(json.dumps(t.get_config()))
    again = TextVectorization.from_config(cfg)
    assert again.get_vocabulary() == t.get_vocabulary()
    assert again.layer_name == "tv" and again._ngrams == (1, 2)
    torch.testing.assert_close(again(["a b c q"]), t(["a b c q"]))
    i = TextVectorization(output_sequence_length=4)
    i.adapt(CORPUS)
    spec = json.loads(json.dumps({"class_name": "TextVectorization", "config": i.get_config()}))
    j = layer_from_config(spec)
    assert LAYERS["TextVectorization"] is TextVectorization and L.TextVectorization is TextVectorization
    assert _ids(j(["cat dog"])) == _ids(i(["cat dog"])) == [[4, 5, 0, 0]]
    keras_style = {**i.get_config(), "vocabulary_size": 7, "sparse": False, "ragged": False, "trainable": True}
    assert TextVectorization.from_config(keras_style).get_vocabulary() == i.get_vocabulary()
    with pytest.raises(ValueError, match="split: a TextVectorization with a callable split cannot be saved"):
        TextVectorization(split=str.split).get_config()


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"output_mode": "one_hot"}, ValueError, "output_mode: expected one of 'int'.*one_hot is StringLookup"),
        ({"output_mode": "ids"}, ValueError, "output_mode: expected one of"),
        ({"standardize": "upper"}, ValueError, "standardize: expected one of"),
        ({"split": "comma"}, ValueError, "split: expected 'whitespace'"),
        ({"ngrams": 0}, ValueError, "ngrams: expected None, an int >= 1"),
        ({"ngrams": "2"}, ValueError, "ngrams: expected None"),
        ({"max_tokens": 1}, ValueError, "max_tokens: expected an int > 1"),
        ({"max_tokens": 2.5}, TypeError, "max_tokens: expected an int"),
        ({"pad_to_max_tokens": True}, ValueError, "pad_to_max_tokens: True needs max_tokens"),
        ({"output_mode": "count", "output_sequence_length": 4}, ValueError, "output_sequence_length: only for"),
        ({"output_sequence_length": -1}, ValueError, "output_sequence_length: expected an int >= 0"),
        ({"sparse": True}, ValueError, "sparse: .*expected False"),
        ({"ragged": True}, ValueError, "ragged: .*expected False"),
        ({"idf_weights": [1.0], "vocabulary": ["a"]}, ValueError, "idf_weights: only for output_mode='tf_idf'"),
        ({"output_mode": "tf_idf", "vocabulary": ["a"]}, ValueError, "idf_weights: output_mode='tf_idf' with voc"),
        ({"vocabulary": ["a", "b", "a"]}, ValueError, r"vocabulary: expected unique tokens, got repeats of \['a'\]"),
        ({"vocabulary": ["a", ""]}, ValueError, "vocabulary: the padding token '' may only come first"),
        ({"vocabulary": []}, ValueError, "vocabulary: expected at least one token"),
        ({"vocabulary": ["a", "b", "c"], "max_tokens": 4}, ValueError, "vocabulary: 5 tokens .* max_tokens=4"),
        ({"vocabulary": "/no/such/vocab.txt"}, ValueError, "vocabulary: no vocabulary file"),
        ({"vocabulary": 3}, TypeError, "vocabulary: expected a list of strings or a file path"),
        ({"vocabulary": [1, 2]}, TypeError, "vocabulary: expected strings, got 1"),
        ({"colour": "red"}, TypeError, "unknown argument 'colour'"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TextVectorization(**kwargs)


def test_call_and_adapt_errors():
    v = TextVectorization()
    with pytest.raises(ValueError, match=r"no vocabulary yet; call adapt\(\) .* or pass vocabulary="):
        v(["a b"])
    with pytest.raises(TypeError, match="data: expected strings, got 3"):
        v.adapt(["a", 3])
    with pytest.raises(ValueError, match="data: found no tokens"):
        v.adapt(["", "  ", "!!"])
    v.adapt(["a b"])
    with pytest.raises(TypeError, match=r"inputs: expected strings .* got a torch tensor"):
        v(torch.tensor([[1, 2]]))
    with pytest.raises(TypeError, match=r"inputs: expected strings, got 1\.5"):
        v([1.5])
    with pytest.raises(TypeError, match="inputs: expected a string or a list or NumPy array"):
        v(12)
    with pytest.raises(ValueError, match=r"inputs: expected a 1-D batch of strings .* got shape \(1, 2\)"):
        v(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="cannot adapt a layer given vocabulary="):
        TextVectorization(vocabulary=["a"]).adapt(["a"])
    with pytest.raises(ValueError, match="idf_weights: output_mode='tf_idf' needs idf_weights"):
        TextVectorization(output_mode="tf_idf").set_vocabulary(["a"])
    with pytest.raises(ValueError, match=r"idf_weights: expected one weight per vocabulary token \(2\)"):
        TextVectorization(output_mode="tf_idf").set_vocabulary(["a", "b"], idf_weights=[1.0])
    with pytest.raises(ValueError, match="standardize: the callable returned shape"):
        TextVectorization(standardize=lambda x: x[:1], vocabulary=["a"])(["a", "b"])


def test_symbolic_input_says_to_vectorize_outside_the_model():
    v = TextVectorization(vocabulary=["a"])
    with pytest.raises(ValueError, match="used outside the model, on the raw strings"):
        v(Input(shape=(1,)))
    with pytest.raises(ValueError, match="used outside the model"):
        Sequential([v, L.Embedding(3, 2)]).build((1,))


# ---------------------------------------------------------------- end to end
def test_vectorize_dna_kmers_then_embedding_lstm_dense():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(9, 15)))) for _ in range(24)]
    y = np.array([float("GC" in s) for s in seqs], dtype=np.float32)
    texts = [" ".join(s[i : i + 3] for i in range(len(s) - 2)) for s in seqs]  # space-separated 3-mers
    vectorize = TextVectorization(max_tokens=40, output_sequence_length=12)
    vectorize.adapt(texts)
    x = vectorize(texts)
    assert x.shape == (24, 12) and x.dtype == torch.int64 and int(x.max()) < 40
    torch.manual_seed(0)
    model = Sequential(
        [L.Embedding(vectorize.vocabulary_size(), 8, mask_zero=True), L.LSTM(8), L.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(hist.history["loss"]) == 2
    pred = model.predict(vectorize(["ACG CGT GTA", "TTT"]), verbose=0)
    assert tuple(np.asarray(pred).shape) == (2, 1)


def test_fit_on_raw_strings_or_ragged_lists_says_what_to_do():
    model = Sequential([L.Embedding(10, 4, mask_zero=True), L.LSTM(3), L.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    with pytest.raises(ValueError, match=r"^x: expected numbers, got text .*layers\.TextVectorization"):
        model.fit(np.array(["ACGT AC", "GT"]), np.array([0.0, 1.0]), verbose=0)
    with pytest.raises(ValueError, match=r"^x: expected a rectangular array .*pad_sequences"):
        model.fit(np.array([[1, 2, 3], [4]], dtype=object), np.array([0.0, 1.0]), verbose=0)
