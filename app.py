"""vaeviz: the Streamlit entry point. Sets the page up, draws the shared sidebar, runs a page."""

import streamlit as st

from vaeviz.ui.sidebar import sidebar

st.set_page_config(page_title="vaeviz: latent-space explorer", page_icon="🌀", layout="wide")

PAGES = [
    st.Page("pages/explorer.py", title="Latent explorer", icon=":material/tune:", default=True),
    st.Page("pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:"),
    st.Page("pages/interpolate.py", title="Interpolate", icon=":material/linear_scale:"),
    st.Page("pages/draw.py", title="Draw and encode", icon=":material/draw:"),
    st.Page("pages/trainer.py", title="Trainer", icon=":material/model_training:"),
    st.Page("pages/zoo.py", title="Model zoo", icon=":material/inventory_2:"),
]

page = st.navigation(PAGES)
st.session_state["vaeviz_selection"] = sidebar()
page.run()
