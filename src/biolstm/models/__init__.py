"""Ready architectures built from biolstm.nn, each a torch.nn.Module with a config dataclass."""

from .classifier import (
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceRegressor,
    SequenceRegressorConfig,
    reverse_complement,
)
from .forecaster import Forecaster, ForecasterConfig
from .tagger import SequenceTagger, SequenceTaggerConfig

__all__ = [
    "Forecaster",
    "ForecasterConfig",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "SequenceRegressor",
    "SequenceRegressorConfig",
    "SequenceTagger",
    "SequenceTaggerConfig",
    "reverse_complement",
]
