"""The `biolstm` command. Declarations only: each command calls one library function.

torch is imported inside commands, never at module level, so `biolstm --help` is instant.
"""

from __future__ import annotations

import os
from pathlib import Path

# OpenMP threads (torch's, MKL's and the native kernel's: one libgomp) spin only briefly at a
# barrier before they sleep. Set before torch loads its OpenMP runtime. By default a thread
# spins 300,000 rounds, and on a machine that other jobs share, a partner descheduled by them
# holds up every step: beside two busy processes on 2 cores an epoch took 4.8-30x its idle
# time with the default and 2.0-3.9x with this, at the same idle speed (sleeping at once,
# OMP_WAIT_POLICY=PASSIVE, costs 60% when idle); benchmarks/threads_under_load.py and
# docs/benchmarks.md. A user's own settings are kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import typer

from ._version import __version__

app = typer.Typer(
    name="biolstm",
    help="LSTM networks for biological sequences and time series.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"biolstm {__version__}")
        typer.echo(kernels_report())
        raise typer.Exit()


def kernels_report() -> str:
    """Which compute kernels this process would use: torch's build, and each C kernel (built at
    install, compiled at first use, or not available and why)."""
    import warnings

    import torch

    from .nn import native

    with warnings.catch_warnings():  # the report says it already
        warnings.simplefilter("ignore")
        kernels = native.describe()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return "\n".join([
        f"torch {torch.__version__}: oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}, "
        f"{torch.get_num_threads()} threads; CUDA device: {gpu}",
        *(f"{what}: {line}" for what, line in kernels.items()),
    ])  # fmt: skip


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """LSTM networks for biological sequences and time series."""
    import warnings

    from .validation import BiolstmWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, BiolstmWarning):  # one line, as errors are: no file or line of code
            typer.echo("warning: " + " ".join(str(message).split()), err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", BiolstmWarning)


@app.command()
def bench(
    what: str = typer.Argument("engines", help="engines (speed against torch.nn.LSTM) or longrange (memory tasks)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer repeats and the smallest shape only."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Timed runs per case (median is reported)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch intra-op threads."),
    tasks: str = typer.Option("adding", "--tasks", help="longrange: comma-separated adding,copy,motifs."),
    lengths: str = typer.Option("100,200,500,1000", "--lengths", help="longrange: comma-separated T values."),
    cells: str = typer.Option("rnn,gru,lstm,lstm_chrono,minlstm", "--cells", help="longrange: cells to run."),
    steps: int = typer.Option(2000, "--steps", min=1, help="longrange: optimiser steps per run at most."),
    seconds: float = typer.Option(300.0, "--seconds", min=1, help="longrange: wall seconds per run at most."),
    out: Path = typer.Option(None, "--out", help="longrange: folder for longrange.json/.md/.png (results merge)."),
) -> None:
    """Time biolstm's engines against torch.nn.LSTM, or run the long-range memory tasks."""
    if what == "engines":
        from .bench import run_engine_benchmark

        run_engine_benchmark(quick=quick, repeats=repeats, threads=threads)
        return
    if what != "longrange":
        _fail(ValueError(f"what: expected 'engines' or 'longrange', got {what!r}"))
    import torch

    from .longrange import CELLS, TASKS, run_longrange

    torch.set_num_threads(threads)
    try:
        task_list = [t for t in tasks.split(",") if t]
        cell_list = [c for c in cells.split(",") if c]
        bad = [t for t in task_list if t not in TASKS] + [c for c in cell_list if c not in CELLS]
        if bad:
            raise ValueError(f"--tasks/--cells: unknown {bad}; expected tasks {list(TASKS)} and cells {list(CELLS)}")
        T = [int(v) for v in lengths.split(",") if v]
    except ValueError as err:
        _fail(err)
    run_longrange(task_list, T, cell_list, steps=steps, seconds=seconds, out=out)


def _message(err: BaseException) -> str:
    """The error as one line: an OSError as 'FILE: reason' (a full or read-only disk, a file
    that cannot be written), a MemoryError with what to reduce, others as their text."""
    import errno

    if isinstance(err, MemoryError):
        return "not enough memory; reduce train.batch_size, data.max_length or the model's sizes"
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
        if err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            text += "; the run folder keeps its last complete checkpoint (free space, then --resume)"
        return text
    return str(err)


def _fail(err: BaseException) -> None:
    """One clear line on stderr and exit code 1 for bad input."""
    typer.echo("error: " + " ".join(_message(err).split()), err=True)
    raise typer.Exit(1)


def _overrides(args: list[str]) -> list[str]:
    """``--model.hidden-size 64`` / ``--model.hidden-size=64`` / ``model.hidden_size=64`` -> 'k=v'."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") and "=" not in a:
            raise ValueError(f"override: expected '--section.key value' or 'section.key=value', got {a!r}")
        key = a[2:] if a.startswith("--") else a
        if "=" in key:
            out.append(key)
        elif "." not in key:
            raise ValueError(f"option {a!r}: no such option; config overrides look like --model.hidden-size 64")
        elif i + 1 >= len(args):
            raise ValueError(f"override {a}: expected a value after it")
        else:
            out.append(f"{key}={args[i + 1]}")
            i += 1
        i += 1
    return out


def _override_taken_as_config(config: Path, args: list[str]) -> tuple[Path | None, list[str]]:
    """``train --resume -o RUN --train.epochs 5`` (or ``evaluate RUN --data.file x.fa``): click
    binds the first override to the optional CONFIG (DATA) argument; give it back to the overrides."""
    text = str(config)
    if text.startswith("--") or ("=" in text and "." in text.split("=", 1)[0]):
        return None, [text, *args]
    return config, args


# evaluate, predict and explain: one option, one help text
_THREADS = typer.Option(None, "--threads", min=1, help="torch threads (default: the CPUs this process may use).")

_BAD_INPUT = (ValueError, TypeError, OSError, KeyError, MemoryError)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(
        None, help="YAML config (sections task, data, model, train); not needed with --resume."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<config name>-<time>)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its newest checkpoint, with its own config."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="With --resume: train the run again from epoch 1 when no checkpoint can be resumed."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Data-parallel processes on this machine (via torchrun)."),
    threads: int = typer.Option(
        None, "--threads", min=1, help="torch threads per process, as --train.threads (default: the CPUs it may use)."
    ),
    cv: int = typer.Option(
        None, "--cv", min=2, help="K-fold cross-validation: one run per fold in OUT/fold-k, mean ± sd in OUT/cv.json."
    ),
) -> None:
    """Train from CONFIG; any config key can be overridden, e.g. --model.hidden-size 64 --train.epochs 5."""
    from .pipeline import train as run_train

    try:
        args = list(ctx.args)
        if config is not None:
            config, args = _override_taken_as_config(config, args)
        overrides = _overrides(args) + ([f"train.threads={threads}"] if threads is not None else [])
        if cv is not None:
            if nproc > 1 or restart:
                raise ValueError("--cv: not together with --nproc or --restart")
            from .pipeline.cv import cross_validate

            cross_validate(config, overrides, out, cv, resume=resume, verbose=0 if quiet else 1)
            return
        if nproc > 1:
            _launch(config, overrides, out, resume, quiet, nproc, restart)
            return
        run_train(config, overrides, out=out, resume=resume, verbose=0 if quiet else 1, restart=restart)
    except _BAD_INPUT as err:
        _fail(err)
    except KeyboardInterrupt:
        where = f" -o {out}" if out is not None else ""
        typer.echo(f"error: interrupted; the run keeps its last checkpoint: biolstm train --resume{where}", err=True)
        raise typer.Exit(130) from None


def _launch(
    config: Path, overrides: list[str], out: Path | None, resume: bool, quiet: bool, nproc: int, restart: bool = False
) -> None:
    """``biolstm train --nproc N``: the same command in N processes under torchrun (one machine)."""
    import subprocess
    import sys
    import time

    from .pipeline.run import check_config

    if config is None and not resume:
        raise ValueError("CONFIG: expected a YAML config file (only --resume --out RUN goes without one)")
    if out is None:  # one folder name for every process
        out = Path("runs") / f"{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_config(config, overrides, out, resume)  # config errors once, here, not in every process
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "biolstm", "train", *([str(config)] if config is not None else []), "--out", str(out),
           *(["--resume"] if resume else []), *(["--restart"] if restart else []),
           *(["--quiet"] if quiet else []), *overrides]  # fmt: skip
    code = subprocess.run(cmd).returncode
    if code:
        raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A run folder written by `biolstm train`."),
    data: str = typer.Argument(None, help="New labelled data (default: the run's own test split)."),
    labels: str = typer.Option(None, "--labels", help="CSV/TSV of id,label for a FASTA/FASTQ DATA file."),
    label: str = typer.Option(None, "--label", help="One class for every record of a FASTA/FASTQ DATA file."),
    output: Path = typer.Option(
        None, "--json", help="Also write the metrics to this JSON file (a folder: evaluation.json in it)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
    threads: int = _THREADS,
    workers: int = typer.Option(
        None, "--workers", min=0, help="Processes that read and encode a sequence DATA file in batches (default: auto)."
    ),
    backtest: int = typer.Option(
        None, "--backtest", min=1, help="Panel runs: rolling-origin evaluation at K successive origins before the end."
    ),
) -> None:
    """Metrics of a trained run (with baselines on its test split) or on new labelled DATA.

    New data may also come in any form training reads, as data keys in place of the run's:
    --data.files '{bound: new_bound.fa, unbound: new_unbound.fa}', --data.file x.fa
    --data.labels l.csv, --data.file visits.csv. The baselines fitted on the run's training
    part are scored on the new data too."""
    import json

    from ._io import atomic_write_text
    from .pipeline import evaluate as run_evaluate
    from .pipeline.runfolder import output_path

    try:
        if output is not None:  # before the work, not after it
            output = output_path(output, "evaluation.json", "--json", overwrite)
        extra = list(ctx.args)
        if data is not None:
            data, extra = _override_taken_as_config(data, extra)
            data = None if data is None else str(data)
        extra = _overrides(extra)
        if backtest is not None:
            from .pipeline.run import backtest_run

            res = backtest_run(run_dir, backtest, data, threads=threads, extra=extra)
        else:
            res = run_evaluate(run_dir, data, labels=labels, label=label, threads=threads, data_overrides=extra,
                               workers=workers)  # fmt: skip
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(output, json.dumps(res, indent=2))
    except _BAD_INPUT as err:
        _fail(err)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder written by `biolstm train`."),
    data: str = typer.Argument(..., help="Sequences, a table or a series in the format the run was trained on."),
    output: Path = typer.Option(..., "--output", "-o", help="TSV file to write (a folder: predictions.tsv in it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    threads: int = _THREADS,
    workers: int = typer.Option(
        None, "--workers", min=0, help="Processes that read and encode a sequence DATA file in batches (default: auto)."
    ),
) -> None:
    """Predict DATA with a trained run and write a TSV (ids and class probabilities, or forecasts).

    A sequence file is streamed: read, encoded and predicted in batches, with a progress bar;
    memory stays flat however many records it holds."""
    from .pipeline import predict as run_predict

    try:
        run_predict(run_dir, data, output, overwrite=overwrite, threads=threads, workers=workers)
    except _BAD_INPUT as err:
        _fail(err)


@app.command()
def variants(
    run_dir: Path = typer.Argument(..., help="A run folder of the sequence task (DNA)."),
    vcf: Path = typer.Option(..., "--vcf", help="VCF (plain or bgzip) of the SNVs and short indels to score."),
    genome: Path = typer.Option(..., "--genome", help="The indexed reference FASTA the VCF was called on."),
    output: Path = typer.Option(..., "--output", "-o", help="TSV file to write (a folder: variants.tsv in it)."),
    vcf_out: Path = typer.Option(None, "--vcf-out", help="Also write the scored VCF with the changes in INFO."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    threads: int = _THREADS,
) -> None:
    """Score every variant by the change in each output (alternative minus reference allele)."""
    from ._cpu import use_threads
    from .pipeline.variants import score_variants

    try:
        use_threads(threads)
        score_variants(run_dir, vcf, genome, output, vcf_out=vcf_out, overwrite=overwrite)
    except _BAD_INPUT as err:
        _fail(err)


@app.command()
def explain(
    run_dir: Path = typer.Argument(..., help="A run folder written by `biolstm train`."),
    data: str = typer.Argument(None, help="Data to explain (default: the run's test split)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: RUN_DIR/explain)."),
    examples: int = typer.Option(3, "--examples", min=1, help="Examples shown in gate heatmaps and logos."),
    limit: int = typer.Option(800, "--limit", min=1, help="Sequences used for statistics and motifs."),
    motifs: str = typer.Option(
        "cluster",
        "--motifs",
        help="DNA motif discovery: 'cluster' (strongest input x gradient windows, clustered) or 'modisco' "
        "(TF-MoDISco on integrated gradients against dinucleotide shuffles).",
    ),
    references: int = typer.Option(
        10, "--references", min=1, help="Dinucleotide shuffles per sequence for integrated gradients (DNA)."
    ),
    threads: int = _THREADS,
) -> None:
    """Gate statistics, attributions, motifs (MEME) and gradient flow of a trained run, as PNG/SVG."""
    from ._cpu import use_threads
    from .interpret.explain import explain_run

    try:
        use_threads(threads)
        folder = explain_run(run_dir, data, out=out, examples=examples, limit=limit, motifs=motifs,
                             references=references)  # fmt: skip
    except _BAD_INPUT as err:
        _fail(err)
    typer.echo(f"wrote figures and explain.json to {folder}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `biolstm train`."),
) -> None:
    """Write RUN_DIR/report.html: metrics, curves, gates, attributions, motifs, gradient flow (offline)."""
    from .report import build_report

    try:
        out = build_report(run_dir)
    except _BAD_INPUT as err:
        _fail(err)
    typer.echo(f"wrote {out}")


@app.command()
def demo(
    out: Path = typer.Option(
        None, "--out", "-o", help="Folder for the demo's run folders (default: runs/demo-<time>)."
    ),
    quick: bool = typer.Option(False, "--quick", help="A few epochs only (a smoke test, not the real numbers)."),
) -> None:
    """Train a conv+BiLSTM on Oct4 vs MafK peaks and an LSTM sunspot forecaster on bundled data,
    and print their metrics against the baselines."""
    from .demo import run_demo

    try:
        run_demo(out, quick=quick)
    except _BAD_INPUT as err:
        _fail(err)


@app.command("config")
def config_reference(
    task: str = typer.Argument(..., help="A task name, as the config's `task:` key (sequence, forecast, ...)."),
    section: str = typer.Option(None, "--section", help="Only this section: data, model or train."),
    markdown: bool = typer.Option(False, "--markdown", help="Markdown tables (as in docs/config.md) instead of text."),
) -> None:
    """Every config key of TASK: type, default and meaning (the reference in docs/config.md)."""
    from .pipeline.reference import reference_text

    try:
        typer.echo(reference_text(task, section, as_markdown=markdown))
    except _BAD_INPUT as err:
        _fail(err)


@app.command()
def init(
    task: str = typer.Argument(..., help="A task name, as the config's `task:` key (sequence, forecast, ...)."),
    output: str = typer.Option(None, "--output", "-o", help="YAML file or folder to write (default: TASK.yaml here)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write a starter config for TASK: required keys as placeholders, every other key commented
    out with its default and meaning."""
    from .pipeline.reference import write_starter

    try:
        path = write_starter(task, output, overwrite=overwrite)
    except _BAD_INPUT as err:
        _fail(err)
    typer.echo(f"wrote {path}")


def run(argv: list[str] | None = None) -> int:
    """The `biolstm` entry point: the app, with click's usage errors (an unknown option, a value
    out of range, a missing argument) as one ``error:`` line and exit code 1, like every other
    error, instead of a framed box and exit code 2."""
    import sys

    from typer._click import exceptions as ce

    try:
        code = app(argv, standalone_mode=False)
    except ce.NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help())
        code = 0
    except ce.UsageError as err:
        where = f"biolstm {err.ctx.info_name}: " if err.ctx is not None and err.ctx.parent is not None else ""
        typer.echo("error: " + where + " ".join(err.format_message().split()), err=True)
        code = 1
    except typer.Abort:  # end of input at a prompt
        typer.echo("error: input ended", err=True)
        code = 1
    if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130, silently
        typer.echo("error: interrupted", err=True)
    if argv is None:
        sys.exit(code if isinstance(code, int) else 0)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    run()
