"""The tasks a config file can name, one module each: what data they read, how they split it,
which model and loss they use, which baselines stand beside the model, and how they write
predictions. :mod:`.base` holds the Task protocol and what the tasks share."""

from .base import Prepared, Task
from .expression import ExpressionData, ExpressionTask
from .forecast import ForecastTask, SeriesData
from .multivariate import LongitudinalData, LongitudinalTask, MultivariateData, MultivariateTask
from .outcome import Outcome
from .panel import PanelData, PanelTask
from .positions import PositionsData, PositionsTask
from .profile import ProfileData, ProfileTask
from .sequence import SequenceData, SequenceTask
from .text import TextData, TextTask

TASKS: dict[str, type[Task]] = {
    t.name: t
    for t in (
        SequenceTask, MultivariateTask, ExpressionTask, TextTask, ForecastTask, LongitudinalTask, PanelTask,
        PositionsTask, ProfileTask,
    )
}

__all__ = [
    "TASKS",
    "ExpressionData",
    "ExpressionTask",
    "ForecastTask",
    "LongitudinalData",
    "LongitudinalTask",
    "MultivariateData",
    "MultivariateTask",
    "Outcome",
    "PanelData",
    "PanelTask",
    "PositionsData",
    "PositionsTask",
    "Prepared",
    "ProfileData",
    "ProfileTask",
    "SequenceData",
    "SequenceTask",
    "SeriesData",
    "Task",
    "TextData",
    "TextTask",
]
