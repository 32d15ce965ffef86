"""Ready architectures built from biolstm.nn, each a torch.nn.Module with a config dataclass."""

from .classifier import (
    ClassifierEnsemble,
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceRegressor,
    SequenceRegressorConfig,
    reverse_complement,
)
from .forecaster import Forecaster, ForecasterConfig, ForecasterEnsemble, ForecasterEnsembleConfig
from .profile import ProfileModel, ProfileModelConfig
from .tagger import SequenceTagger, SequenceTaggerConfig

__all__ = [
    "ClassifierEnsemble",
    "Forecaster",
    "ForecasterConfig",
    "ForecasterEnsemble",
    "ForecasterEnsembleConfig",
    "ProfileModel",
    "ProfileModelConfig",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "SequenceRegressor",
    "SequenceRegressorConfig",
    "SequenceTagger",
    "SequenceTaggerConfig",
    "reverse_complement",
]
