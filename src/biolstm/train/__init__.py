"""The one training loop (Trainer), its configuration, its callbacks and safe checkpoints."""

from .callbacks import (
    Callback,
    Checkpointer,
    CSVLogger,
    EarlyStopping,
    GradNormLogger,
    LambdaCallback,
    ReduceLROnPlateau,
    RestoreBest,
)
from .checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .trainer import LOSSES, OPTIMIZERS, History, NonFiniteError, Trainer, TrainerConfig, seed_everything

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "Checkpointer",
    "EarlyStopping",
    "GradNormLogger",
    "History",
    "LambdaCallback",
    "NonFiniteError",
    "ReduceLROnPlateau",
    "RestoreBest",
    "Trainer",
    "TrainerConfig",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
]
