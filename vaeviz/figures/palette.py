"""The one palette: a class has the same colour on every map, chart and live pad."""

from __future__ import annotations

# Tableau 10, by label index (the live decoder's pad draws with the same list).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
TRAIN_COLOUR = "#1f77b4"  # training curves
TEST_COLOUR = "#ff7f0e"  # test-set points and curves
ACTIVE_COLOUR = "#2ca02c"  # an active latent unit
INACTIVE_COLOUR = "#b0b0b0"  # a collapsed one; also data drawn behind other marks
AE_COLOUR = "#d62728"  # a deterministic model's path or marker, on charts that compare two models
VAE_COLOUR = "#1f77b4"  # a probabilistic model's
FONT = dict(size=15)


def label_colour(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]
