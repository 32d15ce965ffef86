"""Interpretation: gate statistics, attributions, in-silico mutagenesis and gradient flow."""

from .attributions import METHODS, Attribution, attribute, in_silico_mutagenesis, transparent
from .gates import (
    GateStatistics,
    TrackingCells,
    gate_statistics,
    hidden_trajectories,
    traces,
    tracking_cells,
)
from .gradient_flow import CELLS, GradientFlow, gradient_flow

__all__ = [
    "CELLS",
    "METHODS",
    "Attribution",
    "GateStatistics",
    "GradientFlow",
    "TrackingCells",
    "attribute",
    "gate_statistics",
    "gradient_flow",
    "hidden_trajectories",
    "in_silico_mutagenesis",
    "traces",
    "tracking_cells",
    "transparent",
]
