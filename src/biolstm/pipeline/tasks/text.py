"""The text task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from .. import evaluation as ev
from .base import (
    AT_LEAST_1,
    SEED,
    TEST,
    VAL,
    ClassifierTask,
    Prepared,
    check_data_keys,
    class_head,
    class_ids,
    encode_classes,
    make_split,
    split_record,
)


# ---------------------------------------------------------------------------------- text
@dataclass
class TextData(Config):
    """data: section of a text classification config (e.g. biomedical abstracts)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV with a text and a label column
    text_col: str = "text"
    label_col: str = "label"
    level: str = "word"  # word | char
    max_vocab: int = 20000
    min_count: int = 2
    max_length: int = 400  # tokens kept per text
    positive: str | int | None = None
    split: str = "random"
    test: float = 0.2
    val: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a CSV/TSV of texts, got none")
        check_data_keys(self, {
            "max_vocab": (lambda v: v >= 3, "an int >= 3 (padding and out-of-vocabulary take 2)"),
            "min_count": AT_LEAST_1, "max_length": AT_LEAST_1, "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.level, ("word", "char"), "data.level")
        check_choice(self.split, ("random",), "data.split")


class TextTask(ClassifierTask):
    name = "text"
    data_class = TextData

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
        classes, y = encode_classes(labels, d.positive, f"{d.file}: column {d.label_col!r}")
        s = make_split(d, y, class_names=classes)
        tok = Tokenizer(d.level, max_vocab=d.max_vocab, min_count=d.min_count).fit([texts[i] for i in s.train])
        state = {"classes": classes, "tokenizer": tok.to_json()}

        def part(idx):
            ids, n = tok.encode([texts[i] for i in idx], d.max_length)
            return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, torch.from_numpy(y[idx])

        from sklearn.feature_extraction.text import CountVectorizer

        bow = CountVectorizer(
            vocabulary={k: v - 2 for k, v in tok.vocab.items() if v > 1},
            tokenizer=tok.split,
            lowercase=False,
            token_pattern=None,
        )
        f = bow.transform(texts).toarray().astype(np.float32)
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[int(i) for i in s.test],
            model_overrides={"vocab_size": tok.vocab_size, "conv_filters": 0, **class_head(len(classes))},
            state=state,
            baselines={
                "majority": ev.majority_baseline(y[s.train], len(s.test), len(classes)),
                "bag_of_words_logistic": ev.logistic_baseline(f[s.train], y[s.train], f[s.test], len(classes)),
            },
            split=split_record("random", [f"row {i + 2}" for i in range(len(y))], s),  # table rows (header: 1)
        )

    def read_new(self, d, state: dict, path: str):
        from ...data import Tokenizer

        texts, labels = self._read(d, path)
        tok = Tokenizer.from_json(state["tokenizer"])
        ids, n = tok.encode(texts, d.max_length)
        y = None
        if labels is not None:
            y = class_ids(labels, state["classes"], f"{path}: column {d.label_col!r}")
        return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, list(range(len(texts))), y

