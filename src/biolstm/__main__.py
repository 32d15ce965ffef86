"""``python -m biolstm``: the command-line interface (how ``biolstm train --nproc N`` starts its processes)."""

from .cli import run

run()
