"""Interpretation: gate statistics, attributions, in-silico mutagenesis, motifs and gradient flow
(through a trained model, and through untrained cells as an illustration)."""

from .attributions import METHODS, Attribution, attribute, in_silico_mutagenesis, transparent
from .gates import (
    GateStatistics,
    TrackingCells,
    gate_statistics,
    hidden_trajectories,
    traces,
    tracking_cells,
)
from .gradient_flow import CELLS, GradientFlow, ModelGradientFlow, gradient_flow, model_gradient_flow
from .motifs import Motif, best_match, filter_motifs, find_motifs, logo, position_scores, write_meme

__all__ = [
    "CELLS",
    "METHODS",
    "Attribution",
    "GateStatistics",
    "GradientFlow",
    "ModelGradientFlow",
    "Motif",
    "TrackingCells",
    "attribute",
    "best_match",
    "filter_motifs",
    "find_motifs",
    "gate_statistics",
    "gradient_flow",
    "hidden_trajectories",
    "in_silico_mutagenesis",
    "logo",
    "model_gradient_flow",
    "position_scores",
    "traces",
    "tracking_cells",
    "transparent",
    "write_meme",
]
