"""vaeviz: the Streamlit entry point. Sets the page up, draws the shared sidebar, runs a page.

This file is read in two ways. `streamlit run app.py` finds `app` below, imports this module once
and serves it: its start-up hook imports PyTorch and the library in the background while the first
browser loads the page (see `vaeviz/ui/warmup.py`). Then each browser session runs this file as its
script, as `__main__`, which builds the navigation and runs the chosen page.
"""

import streamlit as st

if __name__ == "__main__":  # a session's script run
    from vaeviz.ui import present, urlstate
    from vaeviz.ui.mode import exploring
    from vaeviz.ui.sidebar import sidebar

    st.set_page_config(page_title="vaeviz: latent-space explorer", page_icon="🌀", layout="wide")

    PAGES = [
        st.Page("pages/lecture.py", title="Lecture", icon=":material/school:", default=True),
        st.Page("pages/explorer.py", title="Latent explorer", icon=":material/tune:"),
        st.Page("pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:"),
        st.Page("pages/interpolate.py", title="Interpolate", icon=":material/linear_scale:"),
        st.Page("pages/draw.py", title="Draw and encode", icon=":material/draw:"),
        st.Page("pages/trainer.py", title="Trainer", icon=":material/model_training:"),
        st.Page("pages/zoo.py", title="Model zoo", icon=":material/inventory_2:"),
    ]
    if exploring():  # VAEVIZ_MODE=explore: a public server or the lecture itself, nothing is trained here
        PAGES = [p for p in PAGES if p.title != "Trainer"]

    page = st.navigation(PAGES)
    st.session_state["vaeviz_selection"] = sidebar()
    present.apply()
    try:
        page.run()
    finally:  # also after st.stop(): the URL always holds the view
        urlstate.publish()
else:  # `streamlit run app.py` (or `uvicorn app:app`) serving the app
    import contextlib
    import threading

    def warm_up() -> None:
        from vaeviz.ui.warmup import warm_imports  # `import vaeviz` is the slow part: in the thread

        warm_imports()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        """Start the warm-up and serve at once: the server must not wait for it."""
        threading.Thread(target=warm_up, name="vaeviz-warmup", daemon=True).start()
        yield

    app = st.App("app.py", lifespan=lifespan)
