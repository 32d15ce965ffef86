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
from .attributions import attribute, shuffled_integrated_gradients
from .gates import gate_statistics, traces
from .gradient_flow import CELLS, gradient_flow, model_gradient_flow
from .motifs import find_motifs, logo, write_meme


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
    """(task, data config, model, inputs dict, ids, targets or None, the training loss's name,
    (the positive class of a binary run or None, the name of each output: classes or tracks, the
    run's state)) of up to ``limit`` examples of the run's test split or of DATA."""
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
    names = (state.get("tracks") or classes) if isinstance(state, dict) else None  # one per output
    picked = [ids[i] for i in pick]
    return task, data, model, inputs, picked, None if y is None else y[pick], train.loss, (positive, names, state)


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


MOTIF_METHODS = ("cluster", "modisco")


def explain_run(
    run_dir,
    data_path: str | None = None,
    out=None,
    examples: int = 3,
    limit: int = 800,
    motifs: str = "cluster",
    references: int = 10,
) -> Path:
    """Write the interpretation figures and ``explain.json``; returns the output folder.

    ``motifs``: how DNA motifs are found, ``cluster`` (the strongest input x gradient windows,
    clustered) or ``modisco`` (TF-MoDISco on integrated gradients against dinucleotide shuffles).
    ``references``: dinucleotide shuffles per sequence for the integrated gradients of every
    sequence (TF-MoDISco's input and the aligned view; 32 steps each)."""
    from ..errors import InputError

    if motifs not in MOTIF_METHODS:
        raise InputError(f"--motifs: expected one of {', '.join(MOTIF_METHODS)}, got {motifs!r}")
    if not isinstance(references, int) or references < 1:
        raise InputError(f"--references: expected an int >= 1, got {references!r}")
    method = motifs
    plt = _plt()
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "explain"
    _check_out(out)
    task, data, model, inputs, ids, y, loss, (positive, names, state) = _inputs(run_dir, data_path, limit)
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
            ax.scatter(s.left[g], s.right[g], s=12, alpha=0.7, label=layer_label(model, s.layer))
        ax.plot([0, 1], [1, 0], ":", color="grey")
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="share of steps < 0.1", title=GATE_NAMES.get(g, g))
    axes[0][0].set_ylabel("share of steps > 0.9")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Gate saturation per unit", y=1.02)
    _save(fig, out, "gate_saturation", written)
    # --- chosen examples: the most confident ones
    with torch.no_grad():
        raw = model(**{k: v for k, v in inputs.items()})
    per_position = task.name == "positions"  # one output per position: their mean over the sequence
    if task.name == "profile" or (per_position and raw.dim() >= 2):  # a profile: each track's mean over bins
        flat = raw.mean(1)
    elif raw.dim() > 2:  # a forecast (B, horizon, ...): its first value
        flat = raw.reshape(len(raw), -1)[:, 0]
    else:
        flat = raw
    target = None if flat.dim() == 1 else int(flat.mean(0).argmax())  # the output explained
    score = flat if target is None else flat[:, target]
    label, target_name = _output_label(task.name, positive, names, target)
    chosen = [int(i) for i in torch.argsort(score.float(), descending=True)[:examples]]
    shown, shown_what = _in_data_units(task, state, model, raw, target, label)
    summary["examples"] = []
    found = traces(model, {k: v[chosen] for k, v in inputs.items()})
    name, trace = next(iter(found.items()))
    gate_names = [g for g in trace.gate_names if g != "h"] + ["h"]
    bases = None
    protein = getattr(data, "alphabet", "dna") == "protein"
    alphabet = "ACDEFGHIKLMNPQRSTVWY" if protein else "ACGT"
    if task.name in ("sequence", "profile") and x.dim() == 3 and x.shape[-1] in (4, 5, 20, 21):
        bases = [
            "".join(alphabet[j] if r.max() > 0 else "-" for j, r in zip(row.argmax(-1), row))
            for row in x[chosen].numpy()
        ]
    rec = trace.layers[0][0]
    T = rec["h"].shape[1]
    layer = layer_label(model, name)  # the first direction of the first recurrent layer
    stride = max(1, round(x.shape[1] / T)) if bases is not None else None  # bases per recurrent step
    if stride is None:
        each = {"text": "token", "multivariate": "visit", "longitudinal": "visit", "expression": "profile"}.get(
            task.name, "time step")  # fmt: skip
        where = f"step of the {layer_label(model, name, direction=False)} (one per {each})"
    elif stride == 1:
        where = "position in the sequence (bp)"
    else:
        kind = layer_label(model, name, direction=False)
        where = f"position in the sequence (bp); one {kind} step reads {stride} bp (after max-pooling by {stride})"
    if stats[0].timescale.any():
        fig, ax = plt.subplots(figsize=(4.5, 3))
        for s in stats:
            ax.hist(np.log10(np.clip(s.timescale, 1e-3, None)), bins=20, alpha=0.6, label=layer_label(model, s.layer))
        per = "" if stride is None else f"; one step = {stride} bp"
        ax.set(xlabel=f"log10 memory time scale (steps{per}), -1/log f", ylabel="units",
               title="Forget-gate time scales")  # fmt: skip
        ax.legend(fontsize=7)
        _save(fig, out, "timescales", written)
    for k, idx in enumerate(chosen):
        n = T if trace.lengths is None else max(1, int(trace.lengths[k]))  # the example's own steps, no padding
        fig, axes = plt.subplots(
            len(gate_names), 1, figsize=(min(12, 2.5 + n * 0.06), 1.3 * len(gate_names)), sharex=True
        )
        span = (0, n * (stride or 1)) if stride else (0.5, n + 0.5)
        for ax, g in zip(np.atleast_1d(axes), gate_names):
            v = rec[g][k, :n].numpy().T  # (H, n)
            extent = (*span, v.shape[0] - 0.5, -0.5)
            if g in ("g", "n", "c", "h"):  # signed: white at 0
                lim = float(np.abs(v).max()) or 1.0
                im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                               extent=extent)  # fmt: skip
            else:  # sigmoid gates on [0, 1]
                im = ax.imshow(v, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest", extent=extent)
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
            ax.set_ylabel(f"{GATE_NAMES.get(g, g)}\n(unit)", fontsize=8)
        np.atleast_1d(axes)[-1].set_xlabel(where)
        fig.suptitle(f"Gates of the {layer}, example {ids[idx]} (one row per unit)")
        _save(fig, out, f"gates_example{k + 1}", written)
        summary["examples"].append({
            "id": str(ids[idx]), "output": float(shown[idx]), "output_what": shown_what,
            "bases": None if bases is None else bases[k], "bp_per_step": stride, "layer": layer,
            "gates": {g: np.round(rec[g][k, :n].numpy(), 3).tolist() for g in gate_names},
        })  # fmt: skip

    # --- attributions (classification and regression on float inputs)
    if task.name not in ("forecast", "positions") and x.is_floating_point() and "static" not in inputs:
        dna = bases is not None and not protein
        if dna:  # integrated gradients against dinucleotide-shuffled references, projected on the bases
            refs, ig_steps = 10, 64
            ig = shuffled_integrated_gradients(model, x[chosen], None if lengths is None else lengths[chosen],
                                               target=target, references=refs, steps=ig_steps)  # fmt: skip
            contribs = ig.values
            summary["integrated_gradients_completeness"] = {
                "baseline": f"{refs} dinucleotide-shuffled copies of each sequence (seeded)",
                "steps": ig_steps, "mean_relative_error": ig.relative_error,
                "abs_delta": [float(abs(d)) for d in ig.delta],
            }  # fmt: skip
            ig_what = f"Integrated gradients against {refs} dinucleotide shuffles, on the observed bases"
        elif bases is not None:
            n_chosen = None if lengths is None else lengths[chosen]
            ig = attribute(model, x[chosen], "integrated_gradients", lengths=n_chosen, target=target)
            contribs = ig.values * x[chosen].numpy()
            summary["integrated_gradients_completeness"] = {
                "baseline": "zeros", "max_relative_error": ig.relative_error,
                "abs_delta": [float(d) for d in ig.delta],
            }  # fmt: skip
            ig_what = "Integrated gradients (all-zero baseline), on the observed residues"
        if bases is not None:
            C = len(alphabet)
            for k, idx in enumerate(chosen):
                contrib = contribs[k, :, :C]
                n = int(lengths[idx]) if lengths is not None else contrib.shape[0]
                fig, ax = plt.subplots(figsize=(min(18, 2 + 0.09 * n), 2.4))
                logo(contrib[:n], alphabet, ax=ax, title=f"{ig_what}, example {ids[idx]}")
                ax.set_ylabel(f"contribution to\n{label}")
                _save(fig, out, f"attribution_example{k + 1}", written)
                summary["examples"][k]["attribution"] = np.round(contrib.sum(-1), 4).tolist()
        if dna:
            summary["explained_output"] = label
            how = (method, references)
            _dna_motifs(plt, model, x, lengths, raw, target, positive, label, target_name, how, out, written, summary)

    # --- gradient flow: the trained model on these examples, and untrained cells for comparison
    where = "the run's test split" if data_path is None else Path(data_path).name
    steps = int(min(200, max(50, x.shape[1] if x.dim() >= 2 else 100)))  # about as long as the run's
    _gradient_flow(plt, model, inputs, y, loss, where, steps, out, written, summary, stride)
    atomic_write_text(out / "explain.json", json.dumps(summary))
    return out


GATE_NAMES = {"i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o", "c": "cell state c",
              "h": "hidden state h", "r": "reset gate r", "z": "update gate z", "n": "candidate n"}  # fmt: skip


def layer_label(model, name: str, direction: bool = True) -> str:
    """A recurrent layer's trace name ('rnn', 'rnn (reverse)', 'rnn[layer 1]') in words: 'LSTM,
    forward (left to right)', 'LSTM, backward (right to left)', 'LSTM layer 2, ...'."""
    base = name.split("[")[0].split(" (")[0]
    module = dict(model.named_modules()).get(base)
    kind = type(module).__name__ if module is not None else base
    two = bool(getattr(module, "bidirectional", False))
    if "[layer " in name:
        kind += f" layer {int(name.split('[layer ')[1].split(']')[0]) + 1}"
    parts = base.split(".")
    if "members" in parts and parts.index("members") + 1 < len(parts):  # an ensemble's member
        kind += f" of member {int(parts[parts.index('members') + 1]) + 1}"
    if two and direction:
        return f"Bi{kind}, " + ("backward (right to left)" if name.endswith("(reverse)") else "forward (left to right)")
    return f"Bi{kind}" if two else kind


def _in_data_units(task, state, model, raw: torch.Tensor, target: int | None, label: str) -> tuple[np.ndarray, str]:
    """Each example's explained output as a reader knows it, and its name: a probability, a value
    in the label's units, a forecast in the series' units, a coverage; else the raw output."""
    if task.name == "positions":
        classes = state["classes"]
        if raw.dim() == 2:  # binary: one logit per position
            return torch.sigmoid(raw).mean(1).numpy(), f"mean P({classes[-1]}) over positions"
        k = target or 0
        return torch.softmax(raw, -1)[..., k].mean(1).numpy(), f"mean P({classes[k]}) over positions"
    if task.name == "profile":
        cov = model.coverage(raw).mean(1)[:, target or 0].numpy()
        return cov, label.replace("log coverage", "predicted coverage per base")
    if task.name == "forecast":
        return task._unscale(state, model.point(raw).detach().numpy()[:, 0, 0]), "forecast, first step (data units)"
    if hasattr(task, "outcome") and "outcome" in state:
        o = task.outcome(state)
        v = o.inverse_transform(raw)
        if o.kind_ == "regression":
            return v, "predicted value (the label's units)"
        return (v if v.ndim == 1 else v[:, target or 0]), label.replace("logit ", "")
    what = "forecast, first step (scaled per series)" if task.name == "panel" else "model output"
    return (raw if raw.dim() == 1 else raw.reshape(len(raw), -1)[:, 0]).float().numpy(), what


def _output_label(task: str, positive: str | None, names: list | None, target: int | None) -> tuple[str, str]:
    """(the explained output as attributions measure it, what a motif raises or lowers), e.g.
    ('logit P(oct4)', 'P(oct4)') for a binary run, the class of a multi-output one, the track of a
    profile."""
    if task == "profile":
        name = names[target or 0] if names else "the track"
        return f"log coverage of {name} (mean over bins)", f"{name} coverage"
    if positive:
        return f"logit P({positive})", f"P({positive})"
    if target is not None and names and target < len(names):
        return f"logit P({names[target]})", f"P({names[target]})"
    return "the output", "the output"


def _dna_motifs(plt, model, x, lengths, raw, target, positive, label, target_name, how, out, written, summary):
    """Motifs of a DNA model by ``how`` (method, shuffled references), named against JASPAR,
    their logos and MEME file; the aligned attribution view of every sequence; first-layer
    filters as motifs."""
    (method, refs), steps = how, 32
    shuffled = shuffled_integrated_gradients(model, x, lengths, target=target, references=refs, steps=steps)
    summary["integrated_gradients_all"] = {"references": refs, "steps": steps, "n": len(x),
                                           "mean_relative_error": shuffled.relative_error}  # fmt: skip
    if method == "modisco":
        from .modisco import modisco_motifs

        found = modisco_motifs(shuffled.hypothetical[..., :4], x[..., :4].numpy())
        motifs = found.motifs
        how = {"name": "modisco", "attribution": f"integrated gradients against {refs} dinucleotide shuffles "
               f"({steps} steps), hypothetical contributions", "seqlets": found.seqlets, **found.settings}  # fmt: skip
    else:
        ixg = attribute(model, x, "input_x_gradient", lengths=lengths, target=target)
        motifs = find_motifs(ixg.values[..., :4], x[..., :4].numpy(), width=12,
                             output=ixg.output if raw.dim() == 1 else None)  # fmt: skip
        sites = {label: sum(m.sites for m in motifs if m.name.startswith(label)) for label in ("up", "down")}
        how = {"name": "cluster", "attribution": "input x gradient", "seqlets": sites}
    summary["motif_method"] = how
    matches = _named(motifs, summary)
    if motifs:
        write_meme(motifs, out / "motifs.meme", matches)
        summary["output_class"] = positive
        summary["motifs"] = [
            {"name": m.name, "consensus": m.consensus, "sites": m.sites, "sign": m.sign,
             "matches": [hit.to_dict() for hit in hits]}
            for m, hits in zip(motifs, matches)
        ]  # fmt: skip
    _filters(model, x[..., :4].numpy(), summary)
    for m, hits in zip(motifs, matches):
        fig, ax = plt.subplots(figsize=(4.5, 2.2))
        direction = "raises" if m.sign > 0 else "lowers"
        best = hits[0] if hits and hits[0].q < 0.05 else None
        named = f"JASPAR: {best.name} (q = {best.q:.1g})" if best else "no JASPAR match with q < 0.05"
        logo(
            m.pwm,
            ax=ax,
            kind="pwm",
            title=f"{m.name}: {m.consensus} ({m.sites} sites, {direction} {target_name})\n{named}",
        )
        _save(fig, out, f"motif_{m.name}", written)
    _aligned_figure(plt, shuffled, label, refs, out, written, summary)


def _aligned_figure(plt, shuffled, what: str, refs, out, written, summary, flank: int = 40, rows: int = 200):
    """Every sequence's projected contributions aligned at its strongest seqlet: a heatmap of the
    ``rows`` sequences with the most extreme outputs (highest on top), under the logos of the
    mean contribution of its upper and lower half."""
    from .motifs import aligned_view

    aligned, centres = aligned_view(shuffled.values[..., :4], width=12, flank=flank)
    order = np.argsort(-shuffled.output)
    half = min(rows, len(order)) // 2
    high, low = order[: max(half, 1)], order[len(order) - half :] if half else order[:0]
    shown = np.concatenate([high, low]) if len(order) > rows else order
    heat = np.nansum(aligned[shown], -1)
    heat[np.isnan(aligned[shown]).all(-1)] = np.nan
    fig, axes = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True, gridspec_kw={"height_ratios": [1, 1, 3.2]})
    for ax, group, label in ((axes[0], high, "highest"), (axes[1], low, "lowest")):
        cut = aligned[group]
        seen = (~np.isnan(cut)).sum(0)  # rows reaching each position
        mean = np.nansum(cut, 0) / np.maximum(seen, 1)
        logo(mean, ax=ax, title=f"Mean of the {len(group)} sequences with the {label} {what}")
        ax.set(xlabel="", ylabel="mean\ncontribution")
    ax = axes[2]
    lim = float(np.nanpercentile(np.abs(heat), 99)) if np.isfinite(heat).any() else 1.0
    im = ax.imshow(heat, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                   extent=(-0.5, 2 * flank - 0.5, len(heat) - 0.5, -0.5))  # fmt: skip
    ticks = np.arange(0, 2 * flank + 1, 10)
    ax.set_xticks(ticks, [str(t - flank) for t in ticks])
    ax.set(xlabel="position relative to the strongest seqlet's centre (bp)",
           ylabel=f"sequence ({len(heat)}, by {what},\nhighest on top)")  # fmt: skip
    fig.colorbar(im, ax=axes, pad=0.01, fraction=0.04, label=f"contribution to {what}")
    _save(fig, out, "attribution_aligned", written)
    summary["captions"]["attribution_aligned"] = (
        f"Integrated gradients against {refs} dinucleotide shuffles of each sequence, on the observed bases, "
        f"of {len(aligned)} sequences, each cut at ±{flank} bp around its strongest 12-bp seqlet (largest summed "
        f"|contribution|). Logos: the mean contribution of the {len(high)} sequences with the highest and the "
        f"{len(low)} with the lowest {what}. Heatmap: one row per sequence, highest {what} on top, red raising "
        f"and blue lowering it."
    )
    summary["aligned"] = {"flank": flank, "centres": centres.tolist(), "rows": shown.tolist()}


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


def _gradient_flow(plt, model, inputs, y, loss: str, where: str, steps: int, out: Path, written: list, summary: dict,
                   stride: int | None = None):  # fmt: skip
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
        f"of its recurrent layer '{flow.layer}' (the {layer_label(model, flow.layer, direction=False)}) at step t, "
        f"mean over the {flow.n} examples of {where} that reach step t"
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
    per = f" (one step = {stride} bp)" if stride and stride > 1 else ""
    ax.set(xlabel=f"step t of the {layer_label(model, flow.layer, direction=False)}{per}", ylabel=ylabel,
           title="Gradient flow, trained model")  # fmt: skip
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
