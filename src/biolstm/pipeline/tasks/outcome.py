"""What a task predicts: the outcome kind, fitted on the training labels only.

:class:`Outcome` follows scikit-learn's conventions: ``fit`` on the training labels returns
self, learned attributes end in ``_`` (``classes_``, ``groups_``, ``mean_``, ``scale_``),
``transform`` turns labels into what the loss reads and ``inverse_transform`` turns model
outputs back into probabilities or values in the labels' own units. It is saved in the run's
state.json (``to_json``/``from_json``), never pickled.

Kinds:

- ``binary``: two classes (or ``positive`` naming the classes that count as one side), one
  logit, binary cross-entropy; auROC, auPRC, accuracy, log loss.
- ``multiclass``: K classes, softmax, cross-entropy; macro one-vs-rest auROC and auPRC,
  accuracy, log loss, a per-class table and a confusion matrix.
- ``multilabel``: every record carries any number of L labels (``a;b``), L sigmoid outputs;
  macro auROC and auPRC over the labels, accuracy per label.
- ``regression``: a number, standardised with the training mean and SD for the loss and put
  back in its units on output; R^2, MAE, RMSE, Pearson and Spearman.

``auto`` is binary for two classes and multiclass for more: a class column with more than two
values is never cut down to two unless ``positive`` says how.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError

KINDS = ("auto", "binary", "multiclass", "multilabel", "regression")


def _plain(v) -> str:
    return str(v.item() if hasattr(v, "item") else v)


class Outcome:
    """A task's target, fitted on the training labels (see the module docstring)."""

    def __init__(self, kind: str = "auto", positive=None, sep: str = ";", where: str = "data", at=None) -> None:
        # where: what the labels are called in messages; at(k): where example k came from
        self.kind, self.positive, self.sep, self.where, self.at = kind, positive, sep, where, at

    # ------------------------------------------------------------------ fitting
    def fit(self, labels) -> Outcome:
        labels = list(labels)
        if self.kind == "regression":
            if self.positive is not None:
                raise InputError("data.positive: only for class outcomes, not outcome 'regression'")
            v = self._numbers(labels)
            self.mean_, self.scale_ = float(v.mean()), float(v.std()) or 1.0
            self.kind_ = "regression"
            return self
        if self.kind == "multilabel":
            names = sorted({n for lab in labels for n in self._split(lab)})
            if not names:
                raise InputError(f"{self.where}: expected at least one label, got none")
            self.classes_, self.kind_ = names, "multilabel"
            return self
        names = sorted({_plain(v) for v in labels})
        stray = [n for n in names if n != n.strip()]
        if stray:
            raise InputError(
                f"{self.where}: label {stray[0]!r} has leading or trailing spaces; expected none ({stray[0]!r} and "
                f"{stray[0].strip()!r} would be two classes); remove them"
            )
        if len(names) < 2:
            raise InputError(f"{self.where}: expected at least two classes, got {names}")
        self.groups_ = None
        if self.positive is not None:
            self._fit_positive(names)
        elif self.kind == "binary" and len(names) > 2:
            raise InputError(
                f"{self.where}: outcome 'binary' needs two classes, got {len(names)} ({', '.join(names[:10])}); "
                "set data.positive to the classes that count as positive, or outcome: multiclass"
            )
        else:
            self.classes_ = names
        self.kind_ = "binary" if len(self.classes_) == 2 and self.kind != "multiclass" else "multiclass"
        return self

    def _fit_positive(self, names: list[str]) -> None:
        """``positive``: one class (the positive of two) or a list of classes counted as one side."""
        if self.kind == "multiclass":
            raise InputError("data.positive: groups classes into two; expected no positive with outcome 'multiclass'")
        pos = [_plain(p) for p in (self.positive if isinstance(self.positive, list) else [self.positive])]
        unknown = [p for p in pos if p not in names]
        if unknown:
            raise InputError(f"data.positive: expected classes among {names}, got {unknown[0]!r}")
        rest = [n for n in names if n not in pos]
        if not rest:
            raise InputError(
                f"{self.where}: with data.positive {self.positive} every example is in one class (the classes are "
                f"{names}); name the classes that count as positive, or leave data.positive out for a multi-class "
                "outcome"
            )
        if len(names) == 2:  # the positive class last, the names unchanged
            self.classes_ = rest + pos
            return
        self.classes_ = ["+".join(rest), "+".join(pos)]
        self.groups_ = {n: int(n in pos) for n in names}

    # ------------------------------------------------------------------ labels -> targets
    def _split(self, label) -> list[str]:
        if label is None or (isinstance(label, float) and np.isnan(label)):
            return []
        return [p.strip() for p in str(label).split(self.sep) if p.strip()]

    def _at(self, k: int) -> str:
        return self.at(k) if self.at is not None else f"{self.where}: example {k + 1}"

    def _numbers(self, labels: list) -> np.ndarray:
        out = np.empty(len(labels), dtype=np.float64)
        for k, v in enumerate(labels):
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                raise InputError(f"{self._at(k)}: expected a number for outcome 'regression', got {v!r}") from None
            if not np.isfinite(out[k]):
                raise InputError(f"{self._at(k)}: expected a finite number, got {v!r}")
        return out

    def truth(self, labels) -> np.ndarray:
        """Labels in metric form: class ids (N,), a 0/1 matrix (N, L) or values (N,) in their units."""
        labels = list(labels)
        if self.kind_ == "regression":
            return self._numbers(labels)
        if self.kind_ == "multilabel":
            m = np.zeros((len(labels), len(self.classes_)), dtype=np.float32)
            index = {c: j for j, c in enumerate(self.classes_)}
            for i, lab in enumerate(labels):
                for n in self._split(lab):
                    if n not in index:
                        raise InputError(f"{self._at(i)}: expected labels among {self.classes_}, got {n!r}")
                    m[i, index[n]] = 1
            return m
        names = [_plain(v) for v in labels]
        known = set(self.groups_) if self.groups_ else set(self.classes_)
        unknown = sorted(set(names) - known)
        if unknown:
            raise InputError(f"{self.where}: expected classes {sorted(known)}, got {unknown[:5]}")
        if self.groups_:
            return np.array([self.groups_[n] for n in names], dtype=np.int64)
        index = {c: j for j, c in enumerate(self.classes_)}
        return np.array([index[n] for n in names], dtype=np.int64)

    def transform(self, labels) -> torch.Tensor:
        """Targets for the loss: class ids, a 0/1 matrix, or standardised values (float32)."""
        t = self.truth(labels)
        if self.kind_ == "regression":
            return torch.from_numpy(((t - self.mean_) / self.scale_).astype(np.float32))
        return torch.from_numpy(t)

    def target_truth(self, y: torch.Tensor) -> np.ndarray:
        """Targets back in metric form (the inverse of :meth:`transform` on targets)."""
        y = y.detach().cpu().numpy()
        return y.astype(np.float64) * self.scale_ + self.mean_ if self.kind_ == "regression" else y

    def inverse_transform(self, out: torch.Tensor) -> np.ndarray:
        """Model outputs -> probabilities ((N,) binary, (N, K) or (N, L)) or values (N,) in the labels' units."""
        out = out.detach().float().cpu()
        if self.kind_ == "regression":
            return out.reshape(len(out), -1)[:, 0].numpy().astype(np.float64) * self.scale_ + self.mean_
        if self.kind_ == "multiclass":
            return torch.softmax(out, -1).numpy()
        return torch.sigmoid(out).numpy()

    # ------------------------------------------------------------------ model, loss, metrics
    def head(self) -> dict:
        """The model's head: ``task`` and ``num_outputs`` of SequenceClassifierConfig."""
        n = {"binary": 1, "regression": 1}.get(self.kind_, len(getattr(self, "classes_", [])))
        return {"task": self.kind_, "num_outputs": n}

    def loss(self) -> str:
        return {"multiclass": "cross_entropy", "regression": "mse"}.get(self.kind_, "bce_with_logits")

    def metrics(self, truth: np.ndarray, pred: np.ndarray) -> dict:
        from .. import evaluation as ev

        if self.kind_ == "regression":
            return ev.regression_metrics(truth, pred)
        if self.kind_ == "multilabel":
            return ev.multilabel_metrics(truth, pred)
        return ev.classification_metrics(truth, pred)

    def class_table(self, truth: np.ndarray, pred: np.ndarray) -> dict | None:
        """Per-class rows and the confusion matrix of a multi-class outcome, per-label metrics of
        a multi-label one (None otherwise)."""
        from .. import evaluation as ev

        if self.kind_ == "multilabel":
            return ev.per_label(truth, pred, self.classes_)
        if self.kind_ != "multiclass":
            return None
        return ev.per_class(truth, pred, self.classes_)

    def constant_baseline(self, truth_train: np.ndarray, n: int) -> np.ndarray:
        """The training split's class frequencies (label rates, mean value) for every example."""
        from .. import evaluation as ev

        if self.kind_ == "regression":
            return np.full(n, float(np.mean(truth_train)))
        if self.kind_ == "multilabel":
            return np.tile(np.mean(truth_train, 0), (n, 1))
        return ev.majority_baseline(truth_train, n, len(self.classes_))

    def constant_name(self) -> str:
        return {"regression": "train_mean", "multilabel": "label_rates"}.get(self.kind_, "majority")

    def fit_linear(self, f_train: np.ndarray, truth_train: np.ndarray):
        """Logistic regression (one per label for multilabel) or ridge regression fitted on
        ``f_train``: a function of new features giving predictions in metric form."""
        from .. import evaluation as ev

        if self.kind_ == "regression":
            return ev.fit_ridge(f_train, truth_train)
        if self.kind_ == "multilabel":
            return ev.fit_multilabel_logistic(f_train, truth_train)
        return ev.fit_logistic(f_train, truth_train, len(self.classes_))

    def linear_kind(self) -> str:
        return "ridge" if self.kind_ == "regression" else "logistic"

    # ------------------------------------------------------------------ predictions as rows
    def rows(self, ids: list, pred: np.ndarray) -> tuple[list[str], list[list]]:
        if self.kind_ == "regression":
            return ["id", "predicted"], [[i, f"{float(v):.6g}"] for i, v in zip(ids, pred)]
        if self.kind_ == "multilabel":
            header = ["id", "predicted", *[f"p_{c}" for c in self.classes_]]
            return header, [
                [i, self.sep.join(c for c, q in zip(self.classes_, p) if q > 0.5), *(f"{v:.6g}" for v in p)]
                for i, p in zip(ids, pred)
            ]
        prob = np.stack([1 - pred, pred], 1) if pred.ndim == 1 else pred
        header = ["id", "predicted", *[f"p_{c}" for c in self.classes_]]
        best = np.argmax(prob, 1).tolist()  # one call for all rows: predict writes millions
        rows = [[i, self.classes_[k], *(f"{v:.6g}" for v in p)] for i, k, p in zip(ids, best, prob.tolist())]
        return header, rows

    def label_strings(self, truth: np.ndarray) -> list[str]:
        """The true labels of :meth:`truth` as text (the ``true`` column of test_predictions.tsv)."""
        if self.kind_ == "regression":
            return [f"{float(v):.6g}" for v in truth]
        if self.kind_ == "multilabel":
            return [self.sep.join(c for c, q in zip(self.classes_, r) if q > 0.5) for r in truth]
        return [self.classes_[int(t)] for t in truth]

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        out = {"kind": self.kind_, "sep": self.sep}
        if self.kind_ == "regression":
            out.update(mean_=self.mean_, scale_=self.scale_)
        else:
            out["classes_"] = list(self.classes_)
            if getattr(self, "groups_", None):
                out["groups_"] = dict(self.groups_)
        return out

    @classmethod
    def from_json(cls, d: dict, where: str = "data") -> Outcome:
        o = cls(d["kind"], sep=d.get("sep", ";"), where=where)
        o.kind_ = d["kind"]
        if o.kind_ == "regression":
            o.mean_, o.scale_ = float(d["mean_"]), float(d["scale_"])
        else:
            o.classes_, o.groups_ = list(d["classes_"]), d.get("groups_")
        return o

    @classmethod
    def from_state(cls, state: dict, where: str = "data") -> Outcome:
        """The outcome of a run's state.json, also from runs written before outcomes were saved
        (``classes`` and ``target: value``)."""
        if "outcome" in state:
            return cls.from_json(state["outcome"], where)
        if state.get("target") == "value":  # regression on unscaled values
            return cls.from_json({"kind": "regression", "mean_": 0.0, "scale_": 1.0}, where)
        classes = state["classes"]
        return cls.from_json({"kind": "binary" if len(classes) == 2 else "multiclass", "classes_": classes}, where)
