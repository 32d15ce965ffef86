"""``biolstm explain RUN_DIR [DATA]``: the interpretation figures of a trained run.

Writes ``RUN_DIR/explain/`` (or ``out``): PNG and SVG figures of gate saturation, forget-gate
time scales, gate heatmaps for chosen examples, attribution logos and motif logos (DNA), the
gradient flow through the trained recurrent layer on the run's data and, for comparison,
through untrained RNN/GRU/LSTM cells on synthetic noise, ``motifs.meme``, and ``explain.json``
with the numbers behind them, each figure's caption (what was computed, for the report) and
the gate values of the chosen examples (for the interactive report).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_text
from .attributions import attribute
from .gates import gate_statistics, traces
from .gradient_flow import CELLS, gradient_flow, model_gradient_flow
from .motifs import find_motifs, logo, position_scores, write_meme


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    return plt


def _save(fig, out: Path, name: str, written: list) -> None:
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=120, bbox_inches="tight")
    written.append(name)
    _plt().close(fig)


def _inputs(run_dir: Path, data_path: str | None, limit: int):
    """(task, data config, model, inputs dict, ids, targets or None, the training loss's name, the
    positive class of a binary run or None) of up to ``limit`` examples of the run's test split
    or of DATA."""
    from ..pipeline import load_run

    task, data, model, state, train = load_run(run_dir)
    if data_path is None:
        prep = task.prepare(data, lambda msg: None)
        (inputs, y), ids = prep.test, prep.test_ids
    elif task.name == "forecast":
        prep = task.prepare_new(data, state, data_path)
        (inputs, y), ids = prep.test, prep.test_ids
    else:
        inputs, ids, y, _ = task.read_new(data, state, data_path)
    if not isinstance(inputs, dict):
        inputs = {"x": inputs}
    # a seeded random subset (files are often sorted by class)
    pick = torch.from_numpy(np.sort(np.random.default_rng(0).permutation(len(ids))[:limit]))
    if "x" in inputs and not isinstance(inputs["x"], torch.Tensor):  # an on-demand source
        inputs = inputs["x"].take(pick)
    else:
        inputs = {k: v[pick] for k, v in inputs.items()}
    classes = state.get("classes") if isinstance(state, dict) else None
    positive = str(classes[-1]) if classes and len(classes) == 2 else None  # a binary run's positive class
    return task, data, model, inputs, [ids[i] for i in pick], None if y is None else y[pick], train.loss, positive


def _check_out(out: Path) -> None:
    """``out`` is new, empty, or an earlier explain output (its explain.json is biolstm's): explain
    never writes its figures over a folder of other files."""
    from ..errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file; expected a folder for the figures")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        earlier = json.loads((out / "explain.json").read_text(encoding="utf-8"))
        ours = isinstance(earlier, dict) and {"task", "figures", "captions"} <= set(earlier)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise InputError(f"--out: {out} holds files that biolstm explain did not write; choose a new or empty folder")


def explain_run(run_dir, data_path: str | None = None, out=None, examples: int = 3, limit: int = 800) -> Path:
    """Write the interpretation figures and ``explain.json``; returns the output folder."""
    plt = _plt()
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "explain"
    _check_out(out)
    task, data, model, inputs, ids, y, loss, positive = _inputs(run_dir, data_path, limit)  # positive: explained
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    written: list[str] = []
    summary: dict = {"task": task.name, "n": len(ids), "figures": written, "captions": {}}
    x = inputs["x"]
    lengths = inputs.get("lengths")

    # --- gates: saturation and time scales (first recurrent layer, both directions)
    stats = gate_statistics(model, inputs)
    summary["gates"] = [
        {"layer": s.layer, "steps": s.steps, "timescale_median": float(np.median(s.timescale)),
         **{f"{g}_left": float(s.left[g].mean()) for g in s.gates},
         **{f"{g}_right": float(s.right[g].mean()) for g in s.gates}}
        for s in stats
    ]  # fmt: skip
    fig, axes = plt.subplots(1, len(stats[0].gates), figsize=(3.2 * len(stats[0].gates), 3.4), squeeze=False)
    for ax, g in zip(axes[0], stats[0].gates):
        for s in stats:
            ax.scatter(s.left[g], s.right[g], s=12, alpha=0.7, label=s.layer)
        ax.plot([0, 1], [1, 0], ":", color="grey")
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="fraction < 0.1", title=f"gate {g}")
    axes[0][0].set_ylabel("fraction > 0.9")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Gate saturation per unit", y=1.02)
    _save(fig, out, "gate_saturation", written)
    if stats[0].timescale.any():
        fig, ax = plt.subplots(figsize=(4.5, 3))
        for s in stats:
            ax.hist(np.log10(np.clip(s.timescale, 1e-3, None)), bins=20, alpha=0.6, label=s.layer)
        ax.set(xlabel="log10 memory time scale (steps), -1/log f", ylabel="units", title="Forget-gate time scales")
        ax.legend(fontsize=7)
        _save(fig, out, "timescales", written)

    # --- chosen examples: the most confident ones
    with torch.no_grad():
        raw = model(**{k: v for k, v in inputs.items()})
    score = raw if raw.dim() == 1 else raw.reshape(len(raw), -1)[:, 0]
    chosen = [int(i) for i in torch.argsort(score.float(), descending=True)[:examples]]
    summary["examples"] = []
    found = traces(model, {k: v[chosen] for k, v in inputs.items()})
    name, trace = next(iter(found.items()))
    gate_names = [g for g in trace.gate_names if g != "h"] + ["h"]
    bases = None
    if task.name == "sequence" and x.dim() == 3 and x.shape[-1] in (4, 5, 20, 21):
        alphabet = "ACDEFGHIKLMNPQRSTVWY" if data.alphabet == "protein" else "ACGT"
        bases = [
            "".join(alphabet[j] if r.max() > 0 else "-" for j, r in zip(row.argmax(-1), row))
            for row in x[chosen].numpy()
        ]
    for k, idx in enumerate(chosen):
        rec = trace.layers[0][0]
        T = rec["h"].shape[1]
        fig, axes = plt.subplots(
            len(gate_names), 1, figsize=(min(12, 2 + T * 0.06), 1.3 * len(gate_names)), sharex=True
        )
        for ax, g in zip(np.atleast_1d(axes), gate_names):
            v = rec[g][k].numpy().T  # (H, T)
            if g in ("g", "n", "c", "h"):  # signed: white at 0
                lim = float(np.abs(v).max()) or 1.0
                im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            else:  # sigmoid gates on [0, 1]
                im = ax.imshow(v, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
            ax.set_ylabel(f"{g}\nunit")
        np.atleast_1d(axes)[-1].set_xlabel(f"step of {name} (after the front end)")
        fig.suptitle(f"Gates of example {ids[idx]} (units on y, time on x)")
        _save(fig, out, f"gates_example{k + 1}", written)
        summary["examples"].append({
            "id": str(ids[idx]), "output": float(score[idx]),
            "bases": None if bases is None else bases[k],
            "gates": {g: np.round(rec[g][k].numpy(), 3).tolist() for g in gate_names},
        })  # fmt: skip

    # --- attributions (classification and regression on float inputs)
    if task.name != "forecast" and x.is_floating_point() and "static" not in inputs:
        target = None if raw.dim() == 1 else int(raw.mean(0).argmax())
        ixg = attribute(model, x, "input_x_gradient", lengths=lengths, target=target)
        ig = attribute(model, x[chosen], "integrated_gradients", lengths=None if lengths is None else lengths[chosen],
                       target=target)  # fmt: skip
        summary["integrated_gradients_completeness"] = {
            "max_relative_error": ig.relative_error,
            "abs_delta": [float(d) for d in ig.delta],
        }
        if bases is not None:
            alphabet = "ACDEFGHIKLMNPQRSTVWY" if data.alphabet == "protein" else "ACGT"
            C = len(alphabet)
            for k, idx in enumerate(chosen):
                contrib = ig.values[k, :, :C] * x[idx, :, :C].numpy()
                n = int(lengths[idx]) if lengths is not None else contrib.shape[0]
                fig, ax = plt.subplots(figsize=(min(18, 2 + 0.09 * n), 2.4))
                logo(contrib[:n], alphabet, ax=ax, title=f"Integrated gradients, example {ids[idx]}")
                _save(fig, out, f"attribution_example{k + 1}", written)
                summary["examples"][k]["attribution"] = np.round(
                    position_scores(contrib, x[idx, :, :C].numpy()), 4
                ).tolist()
            if alphabet == "ACGT":
                out_ = ixg.output if raw.dim() == 1 else None
                motifs = find_motifs(ixg.values[..., :4], x[..., :4].numpy(), width=12, output=out_)
                matches = _named(motifs, summary)
                if motifs:
                    write_meme(motifs, out / "motifs.meme", matches)
                    summary["output_class"] = positive
                    summary["motifs"] = [
                        {
                            "name": m.name,
                            "consensus": m.consensus,
                            "sites": m.sites,
                            "sign": m.sign,
                            "matches": [hit.to_dict() for hit in found],
                        }
                        for m, found in zip(motifs, matches)
                    ]
                _filters(model, x[..., :4].numpy(), summary)
                for m, found in zip(motifs, matches):
                    fig, ax = plt.subplots(figsize=(4.5, 2.2))
                    direction = "raises" if m.sign > 0 else "lowers"
                    target = f"P({positive})" if positive else "the output"
                    best = found[0] if found and found[0].q < 0.05 else None
                    named = f"JASPAR: {best.name} (q = {best.q:.1g})" if best else "no JASPAR match with q < 0.05"
                    logo(
                        m.pwm,
                        ax=ax,
                        kind="pwm",
                        title=f"{m.name}: {m.consensus} ({m.sites} sites, {direction} {target})\n{named}",
                    )
                    _save(fig, out, f"motif_{m.name}", written)

    # --- gradient flow: the trained model on these examples, and untrained cells for comparison
    where = "the run's test split" if data_path is None else Path(data_path).name
    steps = int(min(200, max(50, x.shape[1] if x.dim() >= 2 else 100)))  # about as long as the run's
    _gradient_flow(plt, model, inputs, y, loss, where, steps, out, written, summary)
    atomic_write_text(out / "explain.json", json.dumps(summary))
    return out


def _named(motifs: list, summary: dict, top: int = 3) -> list[list]:
    """The ``top`` JASPAR matches (TOMTOM, q-values per motif) of each motif; the database's
    release and collection go in ``summary``."""
    if not motifs:
        return []
    from .motif_db import jaspar_release, match_motifs

    summary["motif_database"] = {"name": jaspar_release(), "collection": "CORE", "tax_group": "vertebrates",
                                 "method": "TOMTOM (memelite), q-values by Benjamini-Hochberg per motif"}  # fmt: skip
    return match_motifs([m.pwm for m in motifs], top=top)


def _filters(model, x: np.ndarray, summary: dict) -> None:
    """First-layer convolution filters read as motifs (:func:`filter_motifs`) and named by
    their JASPAR matches, in ``summary['filters']`` (nothing for a model without convolution)."""
    from .motif_db import match_motifs
    from .motifs import filter_motifs

    found = filter_motifs(model, x)
    if not found:
        return
    # filters span their whole kernel with many weak positions: only their informative core
    # (flanks under 0.7 bits trimmed, at least 6 bits) is compared
    matches = match_motifs([m.pwm for m in found], top=3, min_bits=0.7, min_total_bits=6.0)
    summary["filters"] = [
        {"name": m.name, "consensus": m.consensus, "sites": m.sites, "matches": [h.to_dict() for h in hits]}
        for m, hits in zip(found, matches)
    ]


def _gradient_flow(plt, model, inputs, y, loss: str, where: str, steps: int, out: Path, written: list, summary: dict):
    """Two figures, each captioned with exactly what was computed: the trained model on the
    examples explained (``gradient_flow``), and untrained cells on synthetic noise, an
    illustration of vanishing gradients by cell type (``gradient_flow_cells``)."""
    flow = model_gradient_flow(model, inputs, y, None if y is None else loss)
    if y is None:
        what, ylabel = "the model's output (the data has no targets)", "||dOutput/dx_t||"
    else:
        name = f"{type(model).__name__}.loss" if loss == "model" else loss  # 'model': the model's own loss method
        what, ylabel = f"each example's own training loss ({name})", "||dLoss/dx_t||"
    caption = (
        f"Gradient flow through the trained model: norm of the gradient of {what} with respect to the input x_t "
        f"of its recurrent layer '{flow.layer}' at step t, mean over the {flow.n} examples of {where} that reach step t"
    )
    if flow.calls > 1:
        rc = getattr(getattr(model, "config", None), "rc_average", False)
        caption += " and over both strands (the model also reads each reverse complement)" if rc else (
            f" and over the layer's {flow.calls} calls per example")  # fmt: skip
    if flow.bidirectional:
        caption += "; the layer reads both directions, so the signal reaches x_t from both ends"
    summary["captions"]["gradient_flow"] = caption + "."
    fig, ax = plt.subplots(figsize=(5, 3.2))
    t = np.arange(1, len(flow.norms) + 1)
    ax.semilogy(t, np.maximum(flow.norms, 1e-45), marker="." if len(t) < 40 else None)
    ax.set(xlabel=f"step t of {flow.layer}", ylabel=ylabel, title="Gradient flow, trained model")
    _save(fig, out, "gradient_flow", written)
    summary["gradient_flow"] = {
        "model": {"layer": flow.layer, "target": flow.target, "loss": None if y is None else loss, "n": flow.n,
                  "calls": flow.calls, "bidirectional": flow.bidirectional, "first_over_last": flow.ratio,
                  "norms": flow.norms.tolist(), "counts": flow.counts.tolist()},
        "cells": {},
    }  # fmt: skip

    batch, hidden = 64, 32
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for c in CELLS:
        gf = gradient_flow(c, steps=steps, batch=batch, hidden_size=hidden)
        ax.semilogy(np.arange(1, steps + 1), np.maximum(gf.norms, 1e-45), label=c.upper())
        summary["gradient_flow"]["cells"][c] = {"first_over_last": gf.ratio}
    ax.set(xlabel="step t", ylabel="||dLoss/dh_t||", title="Untrained cells on synthetic noise (illustration)")
    ax.legend()
    _save(fig, out, "gradient_flow_cells", written)
    summary["captions"]["gradient_flow_cells"] = (
        f"Illustration, not this run's model or data: norm of dLoss/dh_t against t for freshly initialised "
        f"(untrained) RNN, GRU and LSTM cells of {hidden} units (LSTM forget-gate bias 1) reading {batch} "
        f"sequences of {steps} standard-normal steps, with a target (the sign of the first step) read at the "
        f"last step: how fast the error signal fades, by cell type."
    )
