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
from .motifs import Motif, best_match, find_motifs, logo, position_scores, write_meme

__all__ = [
    "CELLS",
    "METHODS",
    "Attribution",
    "GateStatistics",
    "GradientFlow",
    "Motif",
    "TrackingCells",
    "attribute",
    "best_match",
    "find_motifs",
    "gate_statistics",
    "gradient_flow",
    "hidden_trajectories",
    "in_silico_mutagenesis",
    "logo",
    "position_scores",
    "traces",
    "tracking_cells",
    "transparent",
    "write_meme",
]
