"""Warm start: import the heavy modules while the first browser is still loading the page.

`streamlit run app.py` starts the web server at once, but the first script run only begins when a
browser has loaded Streamlit's frontend and connected. That run used to begin by importing PyTorch
(about 2 s on a laptop CPU), so the first page waited for it. The app's start-up hook (`lifespan`
in `app.py`) runs `warm_imports` in a background thread: it does those imports, and loads and runs
a shipped model once, while the browser is busy with the frontend. The first run then finds them done.
Then it computes the shipped models' t-SNE maps, one after another, into the server's shared task
pool (`VAEVIZ_WARM_TSNE=0` turns that off). Nothing here touches Streamlit's session state, so no
session can see another's state.
"""

from __future__ import annotations

import importlib
import logging
import os

# What the first page needs, heaviest first. Importing a module twice is free; importing it from two
# threads at once is safe (Python's import lock makes the second wait for the first).
MODULES = ("torch", "vaeviz", "vaeviz.ui.cache", "vaeviz.ui.sidebar", "vaeviz.figures",
           "vaeviz.ui.live", "plotly.graph_objects")

_log = logging.getLogger(__name__)


def warm_imports() -> None:
    """Import `MODULES` and run the first shipped model once (PyTorch's first call is the slowest)."""
    try:
        for name in MODULES:
            importlib.import_module(name)
        import torch

        from vaeviz.checkpoint import SHIPPED_DIR, find_checkpoints, load_checkpoint

        shipped = find_checkpoints([SHIPPED_DIR])
        if shipped:
            model = load_checkpoint(shipped[0])
            with torch.no_grad():
                model.decode(torch.zeros(1, model.cfg.latent_dim))
    except Exception:  # a warm-up must never stop the app; the first run will report any real error
        _log.warning("warm-up failed; the first page will load more slowly", exc_info=True)
    if os.environ.get("VAEVIZ_WARM_TSNE", "1").strip() != "0":
        try:
            from vaeviz.ui.cache import warm_tsne

            warm_tsne()  # the shipped models' t-SNE maps, once per server, one at a time
        except Exception:
            _log.warning("the t-SNE warm-up failed; maps are computed when first asked for", exc_info=True)
