"""A Keras-style API on biolstm: ``biolstm.keras.models`` and ``biolstm.keras.layers``."""

from . import callbacks, layers, models, optimizers, utils
from .models import Sequential, load_model

__all__ = ["Sequential", "callbacks", "layers", "load_model", "models", "optimizers", "utils"]
