"""The one training loop (Trainer), its configuration, and safe checkpoints."""

from .checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .trainer import LOSSES, OPTIMIZERS, History, NonFiniteError, Trainer, TrainerConfig, seed_everything

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "CheckpointError",
    "History",
    "NonFiniteError",
    "Trainer",
    "TrainerConfig",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
]
