"""Config file in, run folder out: the tasks behind ``biolstm train | evaluate | predict | demo``."""

from .run import evaluate, load_run, predict, train
from .tasks import TASKS

__all__ = ["TASKS", "evaluate", "load_run", "predict", "train"]
