"""Test-set metrics with their baselines beside them, and the plots of a run folder.

Classification: auROC, auPRC and accuracy (macro one-vs-rest for several classes) for the
model and for simple baselines fitted on the training split only: the majority class, GC
content and k-mer counts with logistic regression (sequences), logistic regression on the
same inputs (tables, text). Forecasting: MAE, RMSE, sMAPE and MASE for the model, the naive
and the seasonal-naive forecast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """``y`` class ids (N,), ``prob`` (N,) positive-class probabilities or (N, K) class probabilities."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, dtype=np.float64)
    out = {"n": len(y)}
    if prob.ndim == 1:
        out["accuracy"] = float(np.mean((prob > 0.5) == y))
        both = len(np.unique(y)) == 2
        out["auroc"] = float(roc_auc_score(y, prob)) if both else float("nan")
        out["auprc"] = float(average_precision_score(y, prob)) if both else float("nan")
        out["log_loss"] = float(log_loss(y, np.clip(prob, 1e-7, 1 - 1e-7), labels=[0, 1]))
        return out
    out["accuracy"] = float(np.mean(prob.argmax(1) == y))
    p = np.clip(prob, 1e-7, 1)
    out["log_loss"] = float(log_loss(y, p / p.sum(1, keepdims=True), labels=list(range(prob.shape[1]))))
    present = np.unique(y)
    onehot = np.eye(prob.shape[1])[y]
    cols = [k for k in range(prob.shape[1]) if k in present]
    if len(cols) >= 2:  # macro one-vs-rest over the classes present in the test split
        out["auroc"] = float(np.mean([roc_auc_score(onehot[:, k], prob[:, k]) for k in cols]))
        out["auprc"] = float(np.mean([average_precision_score(onehot[:, k], prob[:, k]) for k in cols]))
    else:
        out["auroc"] = out["auprc"] = float("nan")
    return out


def multilabel_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """``y`` (N, L) 0/1, ``prob`` (N, L): macro auROC and auPRC over the labels that have both
    values in ``y``, accuracy per label (mean over labels), and log loss."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    y, prob = np.asarray(y, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    nan = float("nan")
    return {
        "n": len(y),
        "auroc": float(np.mean([roc_auc_score(y[:, j], prob[:, j]) for j in both])) if both else nan,
        "auprc": float(np.mean([average_precision_score(y[:, j], prob[:, j]) for j in both])) if both else nan,
        "accuracy": float(np.mean((prob > 0.5) == (y > 0.5))),
        "log_loss": float(log_loss(y.ravel(), np.clip(prob.ravel(), 1e-7, 1 - 1e-7), labels=[0, 1])),
    }


def per_label(y: np.ndarray, prob: np.ndarray, labels: list[str]) -> dict:
    """Per label of a multi-label prediction (e.g. one experiment of a multi-task genome run):
    auROC and auPRC (NaN where the test part holds one value only), accuracy, positives and n;
    the macro means are :func:`multilabel_metrics`' auroc and auprc."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, prob = np.asarray(y, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    out = {}
    for j, name in enumerate(labels):
        both = 0 < y[:, j].sum() < len(y)
        out[name] = {
            "auroc": float(roc_auc_score(y[:, j], prob[:, j])) if both else float("nan"),
            "auprc": float(average_precision_score(y[:, j], prob[:, j])) if both else float("nan"),
            "accuracy": float(np.mean((prob[:, j] > 0.5) == (y[:, j] > 0.5))),
            "positives": int(y[:, j].sum()),
            "n": len(y),
        }
    return {"per_label": out}


def per_class(y: np.ndarray, prob: np.ndarray, classes: list[str]) -> dict:
    """Per-class precision, recall, F1, one-vs-rest auROC and support, and the confusion matrix
    (rows: true class, columns: predicted class) of a multi-class prediction."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    y, prob = np.asarray(y).astype(int), np.asarray(prob, dtype=np.float64)
    ks = list(range(len(classes)))
    pred = prob.argmax(1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ks, zero_division=0)
    rows = {}
    for k, c in enumerate(classes):
        both = 0 < (y == k).sum() < len(y)
        auc = float(roc_auc_score(y == k, prob[:, k])) if both else float("nan")
        rows[c] = {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "auroc": auc, "n": int(s[k])}
    return {"per_class": rows, "confusion": confusion_matrix(y, pred, labels=ks).tolist(), "classes": list(classes)}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation, MAE, RMSE and R^2 of ``pred`` against ``y``."""
    from scipy.stats import pearsonr, spearmanr

    y, pred = np.asarray(y, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    err = pred - y
    flat = np.ptp(pred) == 0 or np.ptp(y) == 0
    ss = np.sum((y - y.mean()) ** 2)
    return {
        "n": len(y),
        "pearson": float("nan") if flat else float(pearsonr(y, pred)[0]),
        "spearman": float("nan") if flat else float(spearmanr(y, pred)[0]),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(1 - np.sum(err**2) / ss) if ss > 0 else float("nan"),
    }


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (NaN for a flat row)."""
    flat = (np.ptp(a, 1) == 0) | (np.ptp(b, 1) == 0)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(flat, np.nan, (a * b).sum(1) / np.where(flat, 1.0, den))


def profile_metrics(y: np.ndarray, pred: np.ndarray, tracks: list[str]) -> tuple[dict, dict]:
    """Binned coverage profiles ``y`` and predicted ``pred`` (N, bins, K) in data units: per track,
    the Pearson correlation along each region's bins, averaged over the regions where it is
    defined (the shape), the Pearson correlation of the regions' log1p mean coverage across
    regions (the amount), the Poisson NLL per bin (``pred - y log pred``, the training loss without
    its constant) and the MSE of log1p coverage per bin. Returns (the means over tracks, {track:
    its metrics})."""
    y, pred = np.asarray(y, dtype=np.float64), np.clip(np.asarray(pred, dtype=np.float64), 0, None)
    per: dict = {}
    for k, name in enumerate(tracks):
        t, p = y[..., k], pred[..., k]
        shape = _row_pearson(t, p)
        total_t, total_p = np.log1p(t.mean(1)), np.log1p(p.mean(1))
        across = _row_pearson(total_t[None], total_p[None])[0]
        per[name] = {
            "n": len(t),
            "pearson_per_region": float(np.nanmean(shape)) if np.isfinite(shape).any() else float("nan"),
            "regions_with_shape": int(np.isfinite(shape).sum()),
            "pearson_across_regions": float(across),
            "poisson_nll": float(np.mean(p - t * np.log(np.maximum(p, 1e-8)))),
            "mse_log1p": float(np.mean((np.log1p(p) - np.log1p(t)) ** 2)),
        }
    keys = ("pearson_per_region", "pearson_across_regions", "poisson_nll", "mse_log1p")
    mean = {"n": len(y), **{key: float(np.mean([per[n][key] for n in tracks])) for key in keys}}
    return mean, per


def fit_ridge(f_train: np.ndarray, y_train: np.ndarray):
    """Standardised features + ridge regression (alpha by CV), fitted on the training split: predict(f)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12))).fit(f_train, y_train).predict


def metric_keys(metrics: dict) -> tuple[str, ...]:
    """The headline metrics of a {model/baseline: metrics} table, from what the model row holds."""
    model = metrics["model"]
    if "auroc" in model:
        return ("auroc", "auprc", "accuracy", "log_loss")
    if "mase" in model:
        return ("mase", "smape", "mae", "rmse")
    if "pearson_per_region" in model:
        return ("pearson_per_region", "pearson_across_regions", "poisson_nll", "mse_log1p")
    return ("pearson", "spearman", "mae", "rmse", "r2")


def majority_baseline(y_train: np.ndarray, n_test: int, n_classes: int) -> np.ndarray:
    """Class frequencies of the training split, the same for every test sample."""
    freq = np.bincount(np.asarray(y_train).astype(int), minlength=n_classes) / len(y_train)
    p = np.tile(freq, (n_test, 1))
    return p[:, 1] if n_classes == 2 else p


def fit_logistic(f_train: np.ndarray, y_train: np.ndarray, n_classes: int):
    """Standardised features + (multinomial) logistic regression fitted on the training split:
    predict(f) gives positive-class (N,) or class (N, K) probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(f_train, np.asarray(y_train).astype(int))

    def predict(f: np.ndarray) -> np.ndarray:
        p = np.zeros((len(f), n_classes))
        p[:, clf.classes_] = clf.predict_proba(f)
        return p[:, 1] if n_classes == 2 else p

    return predict


def fit_multilabel_logistic(f_train: np.ndarray, y_train: np.ndarray):
    """One logistic regression per label (standardised features), fitted on the training split;
    a label that never or always occurs in training keeps its training rate: predict(f) (N, L)."""
    rates = np.mean(y_train, 0)
    fits = {j: fit_logistic(f_train, y_train[:, j], 2) for j in range(y_train.shape[1])
            if 0 < y_train[:, j].sum() < len(y_train)}  # fmt: skip

    def predict(f: np.ndarray) -> np.ndarray:
        out = np.tile(rates, (len(f), 1))
        for j, fit in fits.items():
            out[:, j] = fit(f)
        return out

    return predict


def gc_content(seqs: list[str]) -> np.ndarray:
    """Fraction of G/C among the unambiguous bases of each sequence ``(N, 1)``."""
    from ..data.genome import gc_content as one

    return np.array([one(s, empty=0.0) for s in seqs], dtype=np.float64).reshape(len(seqs), 1)


def kmer_counts(seqs: list[str], k: int = 5, alphabet: str = "ACGT") -> np.ndarray:
    """k-mer frequencies ``(N, |alphabet|^k)`` (k-mers with other letters are skipped)."""
    from ..data.encode import kmer_tokens

    out = np.zeros((len(seqs), len(alphabet) ** k), dtype=np.float32)
    for i, s in enumerate(seqs):
        t = kmer_tokens(s.replace("U", "T").replace("u", "t"), k, alphabet)
        t = t[t > 0] - 1
        np.add.at(out[i], t, 1.0)
        out[i] /= max(len(t), 1)
    return out


def save_plots(
    run_dir: Path, history: dict, curves: dict | None = None, forecast: dict | None = None, scatter=None,
    confusion: dict | None = None,
) -> list[str]:
    """loss.png from history; roc.png and pr.png from ``curves`` ({name: (y, prob)}, binary or
    multi-class); forecast.png from ``forecast`` ({'time', 'truth', name: values...});
    predicted.png from ``scatter`` ((truth, prediction) of a regression); confusion.png from
    ``confusion`` ({'confusion': matrix, 'classes': names} of :func:`per_class`)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = []
    if history.get("loss"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(np.arange(1, len(history["loss"]) + 1), history["loss"], label="train")
        if history.get("val_loss"):
            ax.plot(np.arange(1, len(history["val_loss"]) + 1), history["val_loss"], label="validation")
        ax.set(xlabel="epoch", ylabel="loss", title="Loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(run_dir / "loss.png", dpi=110)
        plt.close(fig)
        written.append("loss.png")
    if curves:
        from sklearn.metrics import precision_recall_curve, roc_curve

        for kind in ("roc", "pr"):
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            for name, (y, prob) in curves.items():
                y, prob = np.asarray(y).astype(int), np.asarray(prob)
                if prob.ndim == 2 and y.ndim == 2:  # multi-label: micro-average over labels
                    y, prob = y.ravel(), prob.ravel()
                elif prob.ndim == 2:  # micro-average over classes
                    y, prob = np.eye(prob.shape[1])[y].ravel(), prob.ravel()
                if len(np.unique(y)) < 2:
                    continue
                if kind == "roc":
                    a, b, _ = roc_curve(y, prob)
                    ax.plot(a, b, label=name)
                else:
                    p, r, _ = precision_recall_curve(y, prob)
                    ax.plot(r, p, label=name)
            if kind == "roc":
                ax.plot([0, 1], [0, 1], ":", color="grey")
                ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
            else:
                ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(run_dir / f"{kind}.png", dpi=110)
            plt.close(fig)
            written.append(f"{kind}.png")
    if scatter is not None:
        y, pred = (np.asarray(v, dtype=np.float64).ravel() for v in scatter)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(y, pred, s=8, alpha=0.6)
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], ":", color="grey")
        ax.set(xlabel="true value", ylabel="predicted", title="Predicted against true (test)")
        fig.tight_layout()
        fig.savefig(run_dir / "predicted.png", dpi=110)
        plt.close(fig)
        written.append("predicted.png")
    if confusion is not None:
        m, names = np.asarray(confusion["confusion"]), confusion["classes"]
        size = 2.5 + 0.45 * len(names)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        im = ax.imshow(m, cmap="Blues")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > m.max() / 2 else "black")  # fmt: skip
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (test)")
        fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        fig.savefig(run_dir / "confusion.png", dpi=110)
        plt.close(fig)
        written.append("confusion.png")
    if forecast:
        fig, ax = plt.subplots(figsize=(11, 4.8))
        t = forecast["time"]
        ax.plot(t, forecast["truth"], color="black", linewidth=2, label="truth")
        for name, v in forecast.items():
            if name not in ("time", "truth", "lower", "upper", "ylabel", "title"):
                ax.plot(t, v, label=name, alpha=0.85, linewidth=2 if name == "model" else 1.2)
        if "lower" in forecast:
            ax.fill_between(t, forecast["lower"], forecast["upper"], alpha=0.2, label="interval")
        ax.set(xlabel="time", ylabel=forecast.get("ylabel", "value"),
               title=forecast.get("title", "Forecast against truth (test)"))  # fmt: skip
        ax.legend(fontsize=10, loc="upper left", framealpha=0.9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / "forecast.png", dpi=110)
        plt.close(fig)
        written.append("forecast.png")
    return written


def position_metrics(y: np.ndarray, prob: np.ndarray, record: np.ndarray) -> dict[str, float]:
    """Per-position labels: :func:`classification_metrics` pooled over every scored position
    (``n`` positions, ``y`` (P,) class ids, ``prob`` (P,) or (P, K)), and the mean over records
    (``record`` (P,): which record each position is in) of each record's accuracy and auROC
    (macro one-vs-rest for several classes; a record whose positions hold one class has no
    auROC and stays out of that mean)."""
    from sklearn.metrics import roc_auc_score

    out = classification_metrics(y, prob)
    y, prob, record = np.asarray(y).astype(int), np.asarray(prob, dtype=np.float64), np.asarray(record)
    pred = (prob > 0.5).astype(int) if prob.ndim == 1 else prob.argmax(1)
    order = np.argsort(record, kind="stable")
    starts = np.flatnonzero(np.r_[True, record[order][1:] != record[order][:-1]]) if len(order) else []
    acc, auc = [], []
    for idx in np.split(order, starts[1:]) if len(order) else []:
        yr, pr = y[idx], prob[idx]
        acc.append(np.mean(pred[idx] == yr))
        present = np.unique(yr)
        if len(present) < 2:
            continue
        if prob.ndim == 1:
            auc.append(roc_auc_score(yr, pr))
        else:
            auc.append(np.mean([roc_auc_score(yr == k, pr[:, k]) for k in present]))
    out["n_records"] = len(acc)
    out["record_accuracy"] = float(np.mean(acc)) if acc else float("nan")
    out["record_auroc"] = float(np.mean(auc)) if auc else float("nan")
    return out


def window_kmer_counts(
    seq: str, k: int = 3, window: int = 15, alphabet: str = "ACGT", positions: np.ndarray | None = None
) -> np.ndarray:
    """Counts of every k-mer lying wholly inside the window of ``window`` positions centred on
    each position ``(len(positions), |alphabet|^k)`` float32 (all positions of ``seq`` by
    default). Position p's window runs from p - (window - 1) // 2 to p + window // 2, cut at the
    sequence's ends; k-mers with a letter outside the alphabet (N) are not counted; case and
    U/T are ignored."""
    from ..data.encode import kmer_tokens

    if not 1 <= k <= window:
        raise ValueError(f"k: expected 1 <= k <= window ({window}), got {k}")
    tokens = kmer_tokens(seq.replace("U", "T").replace("u", "t"), k, alphabet)  # 1 + code; 0: not counted
    before, after = (window - 1) // 2, window // 2
    span = window - k + 1  # k-mer starts inside one window
    padded = np.concatenate([np.zeros(before, np.int64), tokens, np.zeros(after + k, np.int64)])
    pos = np.arange(len(seq)) if positions is None else np.asarray(positions, dtype=np.int64)
    starts = np.lib.stride_tricks.sliding_window_view(padded, span)[pos]  # (P, span): window p's k-mer starts
    cols = len(alphabet) ** k + 1
    flat = (np.arange(len(pos))[:, None] * cols + starts).ravel()
    counts = np.bincount(flat, minlength=len(pos) * cols).reshape(len(pos), cols)
    return counts[:, 1:].astype(np.float32)
