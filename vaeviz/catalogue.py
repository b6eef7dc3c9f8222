"""The catalogue of models a browser session can use: `ModelRef`s and the session's own models.

Models come from four places: checkpoints shipped in `checkpoints/` ("shipped"), ones saved into
the user folder ("user"), ones trained in this browser session ("session") and uploaded ones
("upload"). A `ModelRef` names one of them with a key that is unique and stable while the model is.
`SessionModels` holds one session's in-memory models, bounded per source so that many uploads
cannot grow the server without limit: beyond `LIMITS[source]` it lets the oldest go (never the
ones it is told to keep, such as the selected model) and says which.

Plain Python: `vaeviz.ui` keeps one `SessionModels` per browser session in `st.session_state`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import store
from .meta import CheckpointInfo
from .models import Model

SOURCE_TITLES = {"shipped": "shipped", "user": "saved", "session": "trained here", "upload": "uploaded"}


@dataclass(frozen=True)
class ModelRef:
    """A pointer to one model the app knows."""

    key: str
    label: str
    source: str  # "shipped" | "user" | "session" | "upload"
    path: str | None = None
    kind: str = ""
    arch: str = ""
    latent_dim: int = 0
    dataset: str = ""
    mtime_ns: int = 0  # files only: which version of the file the key names

    @property
    def pair_signature(self) -> tuple:
        """What two models share to be compared side by side: data, architecture, latent size."""
        return (self.dataset, self.arch, self.latent_dim)

    @property
    def name(self) -> str:
        """The label without its source note: the checkpoint's file name, or the run's name."""
        return self.label.split(" (")[0]


def file_ref(info: CheckpointInfo, source: str, mtime_ns: int) -> ModelRef:
    """The reference to a checkpoint file, from its listing."""
    meta = info.meta
    label = info.name if source == "shipped" else f"{info.name} (saved)"
    return ModelRef(f"file:{info.path}:{mtime_ns}", label, source, info.path, meta.kind, meta.config.arch,
                    meta.config.latent_dim, meta.dataset or "", mtime_ns)


@dataclass
class SessionModels:
    """One session's in-memory models, oldest first, with what it has let go and registered."""

    LIMITS = {"upload": 8, "session": 32}  # an upload costs what its file does (up to 64 MB); a sweep makes 12

    entries: dict[str, tuple[ModelRef, Model]] = field(default_factory=dict)
    let_go: list[str] = field(default_factory=list)  # labels let go by the last `add`, for a note
    runs: dict[str, str] = field(default_factory=dict)  # training run id -> model key (registered once)
    uploads: dict[str, str] = field(default_factory=dict)  # upload digest -> model key

    def refs(self) -> list[ModelRef]:
        return [ref for ref, _ in self.entries.values()]

    def model(self, key: str) -> Model:
        return self.entries[key][1]

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def add(self, model: Model, label: str, source: str = "session", *, keep: set[str] = frozenset()) -> ModelRef:
        """Hold an in-memory model; beyond the source's limit the oldest not in `keep` are let go."""
        cfg = model.cfg
        ref = ModelRef(f"{source}:{uuid.uuid4().hex[:12]}", label, source, None, model.kind, cfg.arch,
                       cfg.latent_dim, model.meta.dataset or "")
        self.entries[ref.key] = (ref, model)
        self.let_go = self._enforce_limit(source, keep | {ref.key})
        return ref

    def _enforce_limit(self, source: str, keep: set[str]) -> list[str]:
        limit = self.LIMITS.get(source)
        mine = [k for k, (ref, _) in self.entries.items() if ref.source == source]  # dicts keep insertion order
        let_go: list[str] = []
        for key in mine:
            if limit is None or len(mine) - len(let_go) <= limit:
                break
            if key not in keep:
                let_go.append(self.entries[key][0].label)
                self.forget(key)
        return let_go

    def forget(self, key: str) -> None:
        """Drop a model and what was recorded about it (so uploading the same file again registers it)."""
        self.entries.pop(key, None)
        for table in (self.runs, self.uploads):
            for name in [n for n, k in table.items() if k == key]:
                del table[name]

    def register_run(self, run_id: str, model: Model, label: str, *, keep: set[str] = frozenset()) -> ModelRef | None:
        """Add a finished training run's model once; None if it was registered before."""
        if run_id in self.runs:
            return None
        ref = self.add(model, label, "session", keep=keep)
        self.runs[run_id] = ref.key
        return ref

    def promote(self, key: str, path: str | Path, refs: list[ModelRef]) -> ModelRef | None:
        """A session model was saved as `path`: forget the in-memory copy, return the file's ref.

        `refs` is the current listing (the saved file among them). None if the file is not listed
        (then the session copy stays, so nothing is lost).
        """
        file = next((r for r in refs if r.path == str(path)), None)
        if file is not None:
            runs = [run for run, k in self.runs.items() if k == key]
            self.forget(key)
            for run in runs:  # still registered (as the file now), so it is not added again
                self.runs[run] = file.key
        return file

    def run_key(self, run_id: str) -> str | None:
        """The key a training run's model has now (its session copy, or the file it was saved as)."""
        return self.runs.get(run_id)


def save_and_promote(catalogue: SessionModels, key: str | None, model: Model, name: str, *, owner: str | None,
                     listing: Callable[[], list[ModelRef]], folder: Path | None = None,
                     replace: bool = False) -> tuple[Path, ModelRef | None]:
    """The one save path: write `model` into the user folder as `name`, owned by `owner`, then
    promote it in the catalogue (the file replaces the session copy `key`, if any).

    Returns (path, the file's ref, or None if the listing does not show it yet). Raises as
    `store.save_model`: ValueError (bad name, over a quota), FileExistsError (taken), PermissionError
    (someone else's file to replace), OSError (cannot write).
    """
    path = store.save_model(model, name, folder, owner=owner, replace=replace)
    file = catalogue.promote(key, path, listing()) if key is not None else None
    return path, file
