"""biolstm report: one self-contained report.html, rendered in headless Chromium with no console
errors, no request leaving the file, and a screenshot that is not blank."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from biolstm.cli import app

from .pipeline.test_runs import SEQ_CONFIG, motif_fastas, write_config

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    motif_fastas(tmp, n=60, length=40)
    cfg = write_config(tmp / "m.yaml", SEQ_CONFIG)
    assert runner.invoke(app, ["train", str(cfg), "-o", str(tmp / "run"), "-q"]).exit_code == 0
    res = runner.invoke(app, ["report", str(tmp / "run")])
    assert res.exit_code == 0, res.output
    return tmp / "run" / "report.html"


def test_report_is_self_contained(report):
    page = report.read_text()
    for section in ("Test metrics", "Training and evaluation", "Gates", "Gate viewer", "Attributions and motifs",
                    "Gradient flow", "Resolved configuration"):  # fmt: skip
        assert section in page, section
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    assert refs and all(r.startswith("data:") or r.startswith("#") for r in refs)
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page  # the browser itself refuses any request


def test_gradient_flow_captions_say_what_was_computed(report, tmp_path):
    import html
    import json

    from biolstm.report import OLD_CAPTIONS, build_report

    page = report.read_text()
    summary = json.loads((report.parent / "explain" / "explain.json").read_text())
    flow = summary["gradient_flow"]["model"]
    trained, cells = summary["captions"]["gradient_flow"], summary["captions"]["gradient_flow_cells"]
    assert f"<figcaption>{html.escape(trained)}</figcaption>" in page  # the caption explain wrote with the numbers
    assert f"<figcaption>{html.escape(cells)}</figcaption>" in page
    assert f"layer '{flow['layer']}'" in trained and f"({flow['loss']})" in trained
    assert f"the {flow['n']} examples of the run's test split" in trained
    assert cells.startswith("Illustration, not this run's model or data: ") and "(untrained)" in cells
    assert "on the same task" not in page
    # an explain.json from before captions were saved: its figure showed untrained cells, and says so
    old = tmp_path / "old"
    shutil.copytree(report.parent, old)
    del summary["captions"]
    (old / "explain" / "explain.json").write_text(json.dumps(summary))
    page = build_report(old, explain=False).read_text()
    assert page.count(f"<figcaption>{html.escape(OLD_CAPTIONS['gradient_flow'])}</figcaption>") == 1
    assert OLD_CAPTIONS["gradient_flow"].startswith("Illustration, not this run's model: ")
    assert "on the same task" not in page


def test_bad_run_folder(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 1 and "expected a finished run folder" in res.output


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
            "--v=0", "--no-first-run", "--disable-background-networking", "--disable-component-update"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console  # no script error, no blocked request, nothing logged
    assert dom.stdout.count("<option") >= 3  # the gate viewer's script ran: examples and gates listed
    assert ">forget gate f</option>" in dom.stdout and "(P(bound) 0." in dom.stdout  # words, a probability
    # the heatmap has room for its axes and colour scale beside the 20 steps x 6 units of 8 px
    width, height = (int(v) for v in re.search(r'<canvas id="heat" width="(\d+)" height="(\d+)"', dom.stdout).groups())
    assert width > 20 * 8 + 100 and height > 6 * 8 + 30
    assert "BiLSTM, forward (left to right), input gate i: 20 steps x 6 units" in dom.stdout
    run = subprocess.run([*base, "--window-size=1280,2000", f"--screenshot={shot}", report.as_uri()],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shot.is_file(), run.stderr[-2000:]
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.std() > 20  # not blank
    assert len(np.unique(img.reshape(-1, 3)[::7], axis=0)) > 200  # figures, not a flat page


def test_named_filters_are_listed_with_a_warning_about_chance_matches():
    from biolstm.report import _filter_table

    hit = {"name": "Pou5f1::Sox2", "matrix_id": "MA0142.1", "p": 1e-6, "q": 2e-4}
    weak = {**hit, "name": "CTCF", "matrix_id": "MA0139.2", "q": 0.3}
    summary = {"filters": [{"name": "filter_3", "consensus": "ATGCAAAT", "sites": 40, "matches": [hit, weak]},
                           {"name": "filter_9", "consensus": "GGGCGG", "sites": 12, "matches": [weak]}]}  # fmt: skip
    table = _filter_table(summary)
    assert "1 of the 2 active filters" in table and "filter_3" in table and "filter_9" not in table
    assert "<td>Pou5f1::Sox2</td><td>MA0142.1</td><td>0.0002</td><td>CTCF</td>" in table and "by chance" in table
    assert _filter_table({"filters": []}) == "" and _filter_table({}) == ""
