"""The `biolstm` command. Declarations only: each command calls one library function.

torch is imported inside commands, never at module level, so `biolstm --help` is instant.
"""

from __future__ import annotations

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
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """LSTM networks for biological sequences and time series."""


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="Fewer repeats and the smallest shape only."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Timed runs per case (median is reported)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch intra-op threads."),
) -> None:
    """Time biolstm's engines against torch.nn.LSTM and print the ratio table."""
    from .bench import run_engine_benchmark

    run_engine_benchmark(quick=quick, repeats=repeats, threads=threads)


if __name__ == "__main__":  # pragma: no cover
    app()
