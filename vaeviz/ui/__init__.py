"""The Streamlit side of vaeviz: cached model and data access, the shared sidebar, widgets.

This is the only part of the library that imports streamlit; pages call into it and into the
pure-PyTorch library, and stay thin.
"""
