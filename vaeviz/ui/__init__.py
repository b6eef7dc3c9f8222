"""The Streamlit side of vaeviz: the only part of the library that imports streamlit.

- `cache`: which models exist, cached loading, test data, encodings and maps;
- `sidebar`: the shared model picker (`selected`, `require_model`);
- `identity`: who this browser (or signed-in user) is; `training`: the job board and this session's jobs;
- `flash`: one-shot messages; `inputs`: draw or upload a picture; `live`: the in-browser decoder;
- `views`: page pieces shared by several pages; `warmup`: imports done while the first browser loads.

Pages call into these and into the pure-PyTorch library, and stay thin.
"""
