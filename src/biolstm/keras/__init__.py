"""A Keras-style API on biolstm: ``biolstm.keras.models`` and ``biolstm.keras.layers``."""

from . import callbacks, layers, models, optimizers, utils
from .functional import Input
from .models import Model, Sequential, load_model

__all__ = ["Input", "Model", "Sequential", "callbacks", "layers", "load_model", "models", "optimizers", "utils"]
