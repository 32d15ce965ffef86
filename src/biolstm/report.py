"""``biolstm report RUN_DIR``: one self-contained report.html a lab can open offline.

Everything is inside the file: figures as base64 PNG, the interactive gate viewer's data as
JSON and its script inline. No external URL is referenced, so the page loads with no network
and sends no request.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from ._io import atomic_write_text

# the page may load nothing from anywhere: only its own inline style, script and data: images
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
GRADIENT_FLOW = ("gradient_flow", "gradient_flow_cells")  # the trained model; untrained cells (illustration)
# explain.json written before captions were saved: its gradient_flow figure showed untrained cells
OLD_CAPTIONS = {
    "gradient_flow": "Illustration, not this run's model: norm of dLoss/dh_t against t for freshly initialised "
    "(untrained) RNN, GRU and LSTM cells on synthetic noise",
}


def _asset(name: str) -> str:
    from importlib.resources import files

    return (files("biolstm") / "report_assets" / name).read_text(encoding="utf-8")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _motif_table(summary: dict) -> str:
    """The motifs' best JASPAR matches with p- and q-values, as an HTML table."""
    found = [m for m in summary.get("motifs", []) if "matches" in m]
    if not found:
        return ""
    db = summary.get("motif_database", {})
    rows = []
    target = f"P({summary['output_class']})" if summary.get("output_class") else "the output"
    for m in found:
        effect = f"{'raises' if m['sign'] > 0 else 'lowers'} {html.escape(target)}"
        hits = m["matches"] or [None]
        for rank, hit in enumerate(hits, 1):
            head = (f"<td>{html.escape(m['name'])}</td><td><code>{html.escape(m['consensus'])}</code></td>"
                    f"<td>{effect}</td>") if rank == 1 else "<td></td><td></td><td></td>"  # fmt: skip
            if hit is None:
                rows.append(f"<tr>{head}<td colspan=5>too little information to compare</td></tr>")
                continue
            strong = ' class="hit"' if hit["q"] < 0.05 else ""
            cells = (f"<td>{rank}</td><td>{html.escape(hit['name'])}</td><td>{html.escape(hit['matrix_id'])}</td>"
                     f"<td>{hit['p']:.2g}</td><td>{hit['q']:.2g}</td>")  # fmt: skip
            rows.append(f"<tr{strong}>{head}{cells}</tr>")
    caption = (f"Best matches in {html.escape(db.get('name', 'JASPAR'))} {html.escape(db.get('collection', ''))} "
               f"{html.escape(db.get('tax_group', ''))} by TOMTOM; q &lt; 0.05 in bold")  # fmt: skip
    return ('<table class="motifs"><caption>' + caption + "</caption><tr><th>motif</th><th>consensus</th>"
            "<th>effect</th><th>rank</th><th>JASPAR factor</th><th>matrix</th><th>p</th><th>q</th></tr>"
            + "".join(rows) + "</table>")  # fmt: skip


def _filter_table(summary: dict) -> str:
    """The first-layer convolution filters that JASPAR names (best match q < 0.05), as a table."""
    filters = summary.get("filters", [])
    named = [f for f in filters if f["matches"] and f["matches"][0]["q"] < 0.05]
    if not named:
        return ""
    rows = []
    for f in sorted(named, key=lambda f: f["matches"][0]["q"]):
        best, rest = f["matches"][0], ", ".join(h["name"] for h in f["matches"][1:])
        rows.append(
            f"<tr><td>{html.escape(f['name'])}</td><td><code>{html.escape(f['consensus'])}</code></td>"
            f"<td>{f['sites']}</td><td>{html.escape(best['name'])}</td><td>{html.escape(best['matrix_id'])}</td>"
            f"<td>{best['q']:.2g}</td><td>{html.escape(rest)}</td></tr>"
        )
    caption = (f"First-layer convolution filters read as motifs (the windows activating each above half its "
               f"maximum): {len(named)} of the {len(filters)} active filters have a JASPAR match with q &lt; 0.05. "
               "A filter's weak flanks are trimmed before comparison, but a short GC-rich core can still match a "
               "long GC-rich matrix such as CTCF's by chance: read such names with care.")  # fmt: skip
    return ('<table class="motifs"><caption>' + caption + "</caption><tr><th>filter</th><th>consensus</th>"
            "<th>sites</th><th>best JASPAR factor</th><th>matrix</th><th>q</th><th>next matches</th></tr>"
            + "".join(rows) + "</table>")  # fmt: skip


def _method_note(summary: dict) -> str:
    how = summary.get("motif_method", {})
    if how.get("name") == "modisco":
        s = how.get("seqlets", {})
        return (
            f"Motifs found by TF-MoDISco (modisco-lite) on {how.get('attribution', 'attributions')}: "
            f"{s.get('up', 0)} seqlets in the patterns that raise the output, {s.get('down', 0)} in those that "
            "lower it."
        )
    if how.get("name") == "cluster":
        return (
            "Motifs found by clustering the strongest 12-bp windows of input x gradient attributions of each "
            "sign (both strands, shifted into line)."
        )
    return ""


def _figure(path: Path, caption: str, wide: bool = False) -> str:
    if not path.is_file():
        return ""
    cls = ' class="wide"' if wide else ""
    return f"<figure{cls}>{_img(path)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _metrics_table(metrics: dict) -> str:
    from .pipeline.evaluation import metric_keys

    keys = metric_keys(metrics) + (("n",) if "n" in metrics["model"] else ())
    rows = []
    for name, m in metrics.items():
        cells = []
        for k in keys:
            v = m.get(k, math.nan)
            if isinstance(v, int):
                cells.append(f"<td>{v}</td>")
            else:  # NaN: not defined for this model (a baseline predicting one value for every example)
                cells.append('<td title="not defined for this model">-</td>' if math.isnan(v) else f"<td>{v:.4f}</td>")
        rows.append(
            f'<tr class="{"model" if name == "model" else ""}"><td>{html.escape(name)}</td>{"".join(cells)}</tr>'
        )
    head = "".join(f"<th>{k}</th>" for k in keys)
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def build_report(run_dir, explain: bool = True) -> Path:
    """Write ``RUN_DIR/report.html`` (running ``explain`` first if its figures are missing)."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file() or not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir}: expected a finished run folder (config.yaml, metrics.json), found none")
    ex_dir = run_dir / "explain"
    if explain and not (ex_dir / "explain.json").is_file():
        from .interpret.explain import explain_run

        explain_run(run_dir)
    result = json.loads((run_dir / "metrics.json").read_text())
    summary = json.loads((ex_dir / "explain.json").read_text()) if (ex_dir / "explain.json").is_file() else {}
    config = (run_dir / "config.yaml").read_text()
    parts = [
        "<section><h2>Test metrics, with baselines fitted on the same training split</h2>",
        _metrics_table(result["metrics"]),
        f'<p class="note">{result.get("n_test", "")} test examples; task {html.escape(result["task"])}.</p></section>',
        '<section><h2>Training and evaluation</h2><div class="grid">',
        _figure(run_dir / "loss.png", "Training and validation loss per epoch"),
        _figure(run_dir / "roc.png", "ROC curves on the test split"),
        _figure(run_dir / "pr.png", "Precision-recall curves on the test split"),
        _figure(run_dir / "forecast.png", "Forecast against truth on the test part of the series", True),
        _figure(
            run_dir / "profiles.png",
            "Observed and predicted coverage of the test regions with the most coverage of each track "
            "(one y scale per track)",
            True,
        ),
        _figure(run_dir / "predicted.png", "Predicted against true values"),
        "</div></section>",
    ]
    if summary:
        figs = summary.get("figures", [])
        gates = "".join(
            _figure(ex_dir / f"{f}.png", "Gates of one of the most confident examples, every unit and step", True)
            for f in figs
            if f.startswith("gates_")
        )
        captions = summary.get("captions", OLD_CAPTIONS)
        explained = summary.get("explained_output", "the output")
        logos = "".join(
            _figure(
                ex_dir / f"{f}.png",
                f"Integrated-gradients logo: letters above the axis raise {explained}, letters below lower it",
                True,
            )
            for f in figs
            if f.startswith("attribution_example")
        )
        if "attribution_aligned" in figs:
            logos += _figure(
                ex_dir / "attribution_aligned.png",
                captions.get("attribution_aligned", "Attributions aligned at each sequence's strongest seqlet"),
                True,
            )
        source = "TF-MoDISco pattern" if summary.get("motif_method", {}).get("name") == "modisco" else (
            "Motif from the strongest attribution windows")  # fmt: skip
        motifs = "".join(_figure(ex_dir / f"{f}.png", f"{source}, in bits") for f in figs if f.startswith("motif_"))
        ig = summary.get("integrated_gradients_completeness")
        ig_note = ""
        if ig and "mean_relative_error" in ig:
            ig_note = (
                f"Integrated gradients against {ig['baseline']}: on the examples shown, the contributions sum to "
                f"the mean of f(x) - f(reference) within {100 * ig['mean_relative_error']:.1f}% on average."
            )
        elif ig:
            ig_note = (
                f"Integrated gradients completeness: attributions sum to f(x) - f(baseline) within "
                f"{100 * ig['max_relative_error']:.2f}% on the examples shown."
            )
        parts += [
            '<section><h2>Gates</h2><div class="grid">',
            _figure(
                ex_dir / "gate_saturation.png",
                "Per unit: fraction of steps with the gate below 0.1 (x) and above 0.9 (y)",
                wide=True,
            ),
            _figure(ex_dir / "timescales.png", "Memory time scales -1/log f of the forget gate"),
            "</div>",
            '<div id="viewer"><h2>Gate viewer</h2><label>example <select id="ex"></select></label>'
            '<label>gate <select id="gate"></select></label><div id="tip"></div><canvas id="heat"></canvas>'
            '<p class="note">Time runs left to right, units top to bottom; '
            "hover a cell for its step, bases and value.</p></div>",
            f'<div class="grid">{gates}</div></section>',
        ]
        if logos or motifs:
            parts += [
                f'<section><h2>Attributions and motifs</h2><p class="note">{html.escape(ig_note)}</p>',
                f'<div class="grid">{logos}</div><div class="grid">{motifs}</div>',
                _motif_table(summary),
                '<p class="note">' + html.escape(_method_note(summary)) + " Motifs are also in explain/motifs.meme "
                "(MEME format), named by their best JASPAR match where q &lt; 0.05.</p>",
                _filter_table(summary),
                "</section>",
            ]
        # captions come from explain.json, written with the numbers, so they say what was computed
        flows = "".join(_figure(ex_dir / f"{f}.png", captions[f]) for f in GRADIENT_FLOW if f in captions)
        parts += ['<section><h2>Gradient flow</h2><div class="grid">', flows, "</div></section>"]
    from .interpret.explain import GATE_NAMES

    viewer = json.dumps({"examples": summary.get("examples", []), "names": GATE_NAMES}).replace("</", "<\\/")
    css, script = _asset("report.css"), _asset("viewer.js")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>biolstm report: {html.escape(run_dir.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<style>{css}</style></head>
<body><header><h1>biolstm report: {html.escape(run_dir.name)}</h1>
<p>{html.escape(result["task"])} run in {html.escape(str(run_dir.resolve()))}</p></header><main>
{"".join(parts)}
<section><h2>Resolved configuration</h2><pre>{html.escape(config)}</pre></section>
</main>
<script type="application/json" id="gate-data">{viewer}</script>
<script>{script}</script></body></html>
"""
    out = run_dir / "report.html"
    atomic_write_text(out, page)
    return out
