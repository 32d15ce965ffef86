"""Ready architectures built from biolstm.nn, each a torch.nn.Module with a config dataclass."""

from .classifier import SequenceClassifier, SequenceClassifierConfig

__all__ = ["SequenceClassifier", "SequenceClassifierConfig"]
