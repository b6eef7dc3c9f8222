"""Plotly figure builders: arrays in, `go.Figure` (or image bytes) out; no Streamlit, no torch.

- `maps`: latent maps (scatter by class), paths and points on them;
- `images`: mosaics of decoded images, data: URIs, PNG and GIF exports;
- `training`: loss curves, per-dimension KL bars, the rate-distortion plane;
- `palette`: the one set of colours every figure uses.
"""

from . import images, maps, palette, training

__all__ = ["images", "maps", "palette", "training"]
