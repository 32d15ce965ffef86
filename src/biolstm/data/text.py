"""Text for the seed's NLP uses (e.g. classifying biomedical abstracts): character or word tokens.

The vocabulary is built with :meth:`Tokenizer.fit` on the training split only; words never
seen there map to the out-of-vocabulary id, so nothing about the test texts leaks into the
model. Id 0 is padding and id 1 is out-of-vocabulary; the vocabulary saves to and loads from
JSON (never pickle).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import InputError

PAD, OOV = "<pad>", "<oov>"
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")


class Tokenizer:
    """``Tokenizer(level='word'|'char', lowercase=True, max_vocab=20000, min_count=1)``."""

    def __init__(self, level: str = "word", lowercase: bool = True, max_vocab: int = 20000, min_count: int = 1):
        if level not in ("word", "char"):
            raise InputError(f"level: expected 'word' or 'char', got {level!r}")
        if max_vocab < 3 or min_count < 1:
            raise InputError(f"max_vocab, min_count: expected >= 3 and >= 1, got {max_vocab}, {min_count}")
        self.level, self.lowercase, self.max_vocab, self.min_count = level, lowercase, max_vocab, min_count
        self.vocab: dict[str, int] = {}

    def split(self, text: str) -> list[str]:
        """The tokens of one text (words and punctuation marks, or characters)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        t = text.lower() if self.lowercase else text
        return list(t) if self.level == "char" else _WORD.findall(t)

    def fit(self, texts: Sequence[str]) -> Tokenizer:
        """Build the vocabulary from ``texts`` (the training split): the most frequent tokens,
        ties broken alphabetically, that occur at least ``min_count`` times."""
        counts = Counter(tok for t in texts for tok in self.split(t))
        kept = sorted((tok for tok, c in counts.items() if c >= self.min_count), key=lambda k: (-counts[k], k))
        self.vocab = {PAD: 0, OOV: 1} | {tok: i + 2 for i, tok in enumerate(kept[: self.max_vocab - 2])}
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Token ids ``(N, T)`` int64 padded with 0 (truncated to ``max_length``) and lengths ``(N,)``;
        an empty text keeps one out-of-vocabulary token so every sequence has a step."""
        if not self.vocab:
            raise InputError("Tokenizer: call fit(training_texts) before encode")
        if isinstance(texts, str):
            raise TypeError("texts: expected a list of texts, got a single string")
        rows = [[self.vocab.get(tok, 1) for tok in self.split(t)][:max_length] or [1] for t in texts]
        T = max((len(r) for r in rows), default=1)
        ids = np.zeros((len(rows), T), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return ids, np.array([len(r) for r in rows], dtype=np.int64)

    def to_json(self) -> str:
        cfg = {
            "level": self.level,
            "lowercase": self.lowercase,
            "max_vocab": self.max_vocab,
            "min_count": self.min_count,
        }
        return json.dumps({**cfg, "vocab": self.vocab})

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        d = json.loads(text)
        tok = cls(d["level"], d["lowercase"], d["max_vocab"], d["min_count"])
        tok.vocab = {str(k): int(v) for k, v in d["vocab"].items()}
        return tok
