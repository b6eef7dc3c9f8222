"""Hostile inputs for every entry point of vaeviz, made in memory, and the entry points that take them.

What a careless or malicious person could hand the app or the command line (issue 6): broken,
disguised and oversized pictures; pickles, junk and hand-made safetensors files posing as
checkpoints; NaN, infinite and negative parameters; file names that try to leave the user folder.
Each input says what it is and what should happen to it: `REFUSED` with a message containing given
words, or `HANDLED` (it works: an EXIF-rotated photo is turned upright, an animated GIF gives its
first frame). Everything is generated when asked for; nothing binary is stored in the repository.

The entry points (library calls, pages driven through Streamlit's AppTest, the CLI in this process
or as `python -m vaeviz`) all return an `Outcome`: refused with the message a person sees, handled,
or crashed, plus every file that appeared or changed in a `Sandbox` standing in for the user
folder, the temporary folder and the working directory. tests/test_hostile.py asserts on outcomes;
bench/hostile_report.py tabulates them for the README.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import traceback
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vaeviz import checkpoint
from vaeviz.checkpoint import FORMAT, SHIPPED_DIR

from .apptest import job_of, shown
from .files import WritesAFile as _WritesAFile
from .files import bomb_png, encoded, glyph, noisy_picture
from .files import safetensors_header as _header

ROOT = Path(__file__).resolve().parent.parent.parent
REFUSED, HANDLED, CRASHED = "refused", "handled", "crashed"
CANARY = "unpickled.txt"  # a pickle below would create this file if anything unpickled it
VALID_CHECKPOINT = SHIPPED_DIR / "mnist-ae-mlp-2.safetensors"  # real, small; hostile ones are edits of it
CLI_MEMORY_LIMIT = 3 * 2**30  # `python -m vaeviz` runs under this data limit: a memory bomb fails, not the machine


@dataclass(frozen=True)
class Hostile:
    """One hostile file: its bytes (made on demand), what it is, and what should happen to it."""

    name: str  # short id, for test ids
    what: str  # what it is, for a person (the report's first column)
    make: Callable[[Path], bytes]  # the bytes; gets the sandbox folder (where a canary would land)
    expect: str = REFUSED
    words: tuple[str, ...] = ()  # a refusal's message says each of these (case-insensitive)
    like: Callable[[], Image.Image] | None = None  # HANDLED pictures: the plain picture it should read as
    filename: str = "digit.png"  # the name it is uploaded under
    sparse_size: Callable[[], int] | None = None  # zero bytes this many: on disk a sparse file (no disk used)


@dataclass(frozen=True)
class BadParameter:
    """A parameter value given on the command line (`flag text`) or to a config (`field=value`)."""

    flag: str
    text: str
    words: tuple[str, ...]

    @property
    def field(self) -> str:
        return {"--latent-dim": "latent_dim"}.get(self.flag, self.flag[2:])

    @property
    def value(self) -> int | float:
        """What a page or a script would pass: an int where the text is one, else a float."""
        try:
            return int(self.text)
        except ValueError:
            return float(self.text)


@dataclass(frozen=True)
class Outcome:
    """What an entry point did with an input."""

    status: str  # REFUSED (with a message), HANDLED, or CRASHED (an exception reached the person)
    message: str  # what the person is shown; for a crash, the exception
    written: tuple[str, ...] = ()  # files that appeared or changed (relative to the sandbox)


# --- pictures -----------------------------------------------------------------------------------


def _png(image: Image.Image, **options) -> Callable[[Path], bytes]:
    return lambda _: encoded(image, "PNG", **options)


def _animated(format: str) -> Callable[[Path], bytes]:
    frames = [glyph("3", mode="RGB"), glyph("7", mode="RGB")]
    return lambda _: encoded(frames[0], format, save_all=True, append_images=frames[1:], duration=100, lossless=True)


def _exif_rotated(_: Path) -> bytes:
    """A '4' stored turned a quarter left, with the EXIF tag (6) saying to turn it right to view."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(glyph("4", mode="RGB").transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def _corrupt_exif(_: Path) -> bytes:
    """A JPEG of a '5' whose EXIF block is garbage: the picture itself is fine."""
    jpeg = encoded(glyph("5", mode="RGB"), "JPEG", quality=95)
    payload = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _truncated(format: str) -> Callable[[Path], bytes]:
    def make(_: Path) -> bytes:
        data = encoded(noisy_picture(), format)
        return data[: len(data) // 2]

    return make


def _sixteen_bit(_: Path) -> bytes:
    return encoded(Image.fromarray(np.asarray(glyph("3")).astype(np.uint16) * 257))


def _palette(transparent: bool) -> Callable[[Path], bytes]:
    def make(_: Path) -> bytes:
        picture = glyph("3", mode="RGB", ink=(20, 40, 160), paper=(250, 246, 220)).quantize(16)
        options = {"transparency": int(np.asarray(picture)[0, 0])} if transparent else {}
        return encoded(picture, "PNG", **options)

    return make


def images() -> list[Hostile]:
    """Uploads for the pages that take a picture of a digit."""
    three, four, five = (lambda: glyph("3")), (lambda: glyph("4")), (lambda: glyph("5"))
    blank = ("blank", "no digit")
    return [
        Hostile("empty", "zero bytes", lambda _: b"", words=("empty", "0 bytes")),
        Hostile("text", "a text file named .png", lambda _: b"shopping list: milk, eggs\n" * 40,
                words=("not an image",)),
        Hostile("truncated-png", "a PNG cut off halfway", _truncated("PNG"), words=("truncated",)),
        Hostile("truncated-jpeg", "a JPEG cut off halfway", _truncated("JPEG"), words=("truncated",),
                filename="digit.jpg"),
        Hostile("one-pixel", "a 1x1 image", _png(Image.new("L", (1, 1), 0)), words=blank),
        Hostile("bomb", "decompression bomb: 30000x30000 pixels in a few kB", lambda _: bomb_png(30_000),
                words=("too large", "900 million pixels")),
        Hostile("bomb-10k", "10000x10000 pixels in a few kB (under PIL's own limit)", lambda _: bomb_png(10_000),
                words=("too large", "10000x10000")),
        Hostile("tiff", "a TIFF (a format not on the list)", lambda _: encoded(glyph("5"), "TIFF"),
                words=("TIFF", "PNG, JPEG")),
        Hostile("16-bit", "a 16-bit greyscale PNG", _sixteen_bit, HANDLED, like=three),
        Hostile("palette", "a palette (indexed colour) PNG", _palette(False), HANDLED, like=three),
        Hostile("palette-transparent", "a palette PNG with a transparent colour", _palette(True), HANDLED, like=three),
        Hostile("cmyk", "a CMYK JPEG",
                lambda _: encoded(glyph("3", mode="RGB", ink=(20, 40, 160), paper=(250, 246, 220)).convert("CMYK"),
                                  "JPEG", quality=95), HANDLED, like=three, filename="digit.jpg"),
        Hostile("animated-gif", "an animated GIF ('3' then '7': the first frame counts)", _animated("GIF"), HANDLED,
                like=three, filename="digit.gif"),
        Hostile("animated-webp", "an animated WebP ('3' then '7')", _animated("WEBP"), HANDLED, like=three,
                filename="digit.webp"),
        Hostile("transparent", "a fully transparent PNG", _png(Image.new("RGBA", (280, 280), (0, 0, 0, 0))),
                words=blank),
        Hostile("white", "an all-white PNG", _png(Image.new("L", (300, 300), 255)), words=blank),
        Hostile("exif-rotate", "a JPEG whose EXIF says 'rotate 90°'", _exif_rotated, HANDLED, like=four,
                filename="digit.jpg"),
        Hostile("corrupt-exif", "a JPEG with a garbage EXIF block", _corrupt_exif, HANDLED, like=five,
                filename="digit.jpg"),
    ]


def good_image() -> bytes:
    """A plain upload that every picture entry point must accept (before and after hostile ones)."""
    return encoded(glyph("7"))


GOOD_PICTURE = Hostile("good", "a plain picture of a 7", lambda _: good_image(), HANDLED, like=lambda: glyph("7"))


# --- checkpoints --------------------------------------------------------------------------------


def _edited(tensors: Callable[[dict], object] | None = None, meta: Callable[[dict], object] | None = None):
    """The valid checkpoint rewritten by safetensors itself, with its tensors or metadata edited."""

    def make(_: Path) -> bytes:
        found = st_load(VALID_CHECKPOINT.read_bytes())
        with safe_open(str(VALID_CHECKPOINT), "pt") as f:
            metadata = f.metadata()
        if tensors is not None:
            tensors(found)
        if meta is not None:
            meta(metadata)
        return st_save(found, metadata=metadata)

    return make


def _reheadered(edit: Callable[[dict], object]) -> Callable[[Path], bytes]:
    """The valid checkpoint with its JSON header edited by hand (what safetensors would not write)."""

    def make(_: Path) -> bytes:
        data = VALID_CHECKPOINT.read_bytes()
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        edit(header)
        return _header({k: v for k, v in header.items() if k != "__metadata__"}, header["__metadata__"]) + data[8 + length :]

    return make


def _set(mapping: dict, key: str, value) -> None:
    mapping[key] = value


def _pickle(box: Path) -> bytes:
    return pickle.dumps({"state_dict": _WritesAFile(str(box / CANARY))})


def _torch_zip(box: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2), "x": _WritesAFile(str(box / CANARY))}, buffer)
    return buffer.getvalue()


def _memory_bomb(_: Path) -> bytes:
    """A header-only file whose (valid) config describes 2.2 billion weights: 8.7 GB if built."""
    config = {"channels": 4, "height": 256, "width": 256, "hidden": [4096, 4096], "latent_dim": 256}
    return _header({}, {"format": FORMAT, "kind": "vae", "config": json.dumps(config)})


def _too_large() -> int:
    return 2 * checkpoint.MAX_FILE_BYTES  # read when asked: a test may lower the limit


def checkpoints() -> list[Hostile]:
    """Files given where a checkpoint is expected: uploads, `eval`, a file in a listed folder."""
    def valid_config(**change) -> str:
        with safe_open(str(VALID_CHECKPOINT), "pt") as f:
            return json.dumps({**json.loads(f.metadata()["config"]), **change})

    not_ckpt = ("not a vaeviz checkpoint",)
    items = [
        Hostile("empty", "zero bytes", lambda _: b"", words=("only 0 bytes",)),
        Hostile("pickle", "a pickle renamed .safetensors that creates a file when unpickled",
                _pickle, words=("not a vaeviz checkpoint", "pickle")),
        Hostile("torch-zip", "a torch.save zip renamed .safetensors that creates a file when unpickled",
                _torch_zip, words=("not a vaeviz checkpoint", "torch.save")),
        Hostile("random", "4 kB of random bytes", lambda _: np.random.default_rng(6).bytes(4096), words=not_ckpt),
        Hostile("truncated", "a real checkpoint cut off halfway",
                lambda _: VALID_CHECKPOINT.read_bytes()[: VALID_CHECKPOINT.stat().st_size // 2], words=("truncated",)),
        Hostile("truncated-header", "a real checkpoint cut off in its header",
                lambda _: VALID_CHECKPOINT.read_bytes()[:40], words=("truncated",)),
        Hostile("missing-tensor", "valid safetensors, a tensor missing",
                _edited(tensors=lambda t: t.pop("encoder.1.weight")), words=("missing encoder.1.weight",)),
        Hostile("extra-tensor", "valid safetensors, an extra tensor",
                _edited(tensors=lambda t: _set(t, "backdoor", torch.zeros(3))), words=("unexpected backdoor",)),
        Hostile("misshaped", "valid safetensors, a tensor of the wrong shape",
                _edited(tensors=lambda t: _set(t, "encoder.1.weight", torch.zeros(3, 3))),
                words=("encoder.1.weight is (3, 3)",)),
        Hostile("nan-weights", "valid safetensors, NaN weights",
                _edited(tensors=lambda t: t["encoder.1.bias"].fill_(float("nan"))), words=("NaN",)),
        Hostile("meta-not-json", "metadata (config) that is not JSON",
                _edited(meta=lambda m: _set(m, "config", "{not json")), words=("config", "not valid JSON")),
        Hostile("unknown-kind", "metadata naming an unknown kind of model",
                _edited(meta=lambda m: _set(m, "kind", "gan")), words=("unknown model kind", "gan")),
        Hostile("not-vaeviz", "a safetensors file from another program (no vaeviz metadata)",
                _edited(meta=lambda m: m.clear()), words=("not a vaeviz checkpoint",)),
        Hostile("config-not-object", "metadata whose config is a JSON list",
                _edited(meta=lambda m: _set(m, "config", "[1, 2]")), words=("config", "not a JSON object")),
        Hostile("config-huge-number", "a config whose beta is a 400-digit number",
                _edited(meta=lambda m: _set(m, "config", valid_config(beta=10**400))), words=("beta", "1000")),
        Hostile("meta-not-text", "metadata whose kind is a list, not text",
                _reheadered(lambda h: _set(h["__metadata__"], "kind", ["ae"])), words=("kind", "not text")),
        Hostile("dtype-not-text", "a tensor whose dtype is a list",
                _reheadered(lambda h: _set(h["encoder.1.bias"], "dtype", ["F32"])), words=("not a float tensor",)),
        Hostile("header-claims-gigabytes", "a header that claims 5 GB",
                lambda _: struct.pack("<Q", 5 * 2**30) + VALID_CHECKPOINT.read_bytes()[8:], words=("claims",)),
        Hostile("header-not-json", "a header that is not JSON", lambda _: struct.pack("<Q", 8) + b"not json",
                words=("not valid JSON",)),
        Hostile("header-nested", "a header of JSON nested 100,000 deep",
                lambda _: struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000, words=("nested",)),
        Hostile("memory-bomb", "a file of a few hundred bytes whose config needs 2.2 billion weights (8.7 GB)", _memory_bomb,
                words=("do not match", "missing")),
        Hostile("too-large", "a file twice the 64 MB limit (real checkpoints are 1-2 MB)",
                lambda _: bytes(_too_large()), words=("far larger", "limit"), sparse_size=_too_large),
    ]
    return [replace(item, filename="model.safetensors") for item in items]


def good_checkpoint() -> bytes:
    return VALID_CHECKPOINT.read_bytes()


GOOD_CHECKPOINT = Hostile("good", "a real checkpoint", lambda _: good_checkpoint(), HANDLED,
                          filename="mnist-ae-mlp-2.safetensors")


def write_input(item: Hostile, folder: Path, box: Path) -> Path:
    """The hostile file on disk under its upload name (`.safetensors` for checkpoints)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / item.filename
    if item.sparse_size is not None:  # as large as that, without writing (or holding) its bytes
        with open(path, "wb") as f:
            f.truncate(item.sparse_size())
    else:
        path.write_bytes(item.make(box))
    return path


# --- parameters and names -----------------------------------------------------------------------

PARAMETERS = [
    BadParameter("--beta", "nan", ("beta", "finite")),
    BadParameter("--beta", "inf", ("beta", "finite")),
    BadParameter("--beta", "-inf", ("beta", "finite")),
    BadParameter("--beta", "-1", ("beta", "[0, 1000]")),
    BadParameter("--beta", "1e999", ("beta", "finite")),
    BadParameter("--beta", "1001", ("beta", "[0, 1000]")),
    BadParameter("--lr", "nan", ("learning rate", "finite")),
    BadParameter("--lr", "inf", ("learning rate", "finite")),
    BadParameter("--lr", "-0.001", ("learning rate", "(0, 10]")),
    BadParameter("--lr", "0", ("learning rate", "(0, 10]")),
    BadParameter("--latent-dim", "nan", ("latent", "nan")),
    BadParameter("--latent-dim", "inf", ("latent", "inf")),
    BadParameter("--latent-dim", "-1", ("latent size", "between 1 and 256")),
    BadParameter("--latent-dim", "0", ("latent size", "between 1 and 256")),
    BadParameter("--latent-dim", "257", ("latent size", "between 1 and 256")),
    BadParameter("--latent-dim", "100000", ("latent size", "between 1 and 256")),
]

SAVE_NAMES = [  # (name, what it tries): every one is refused, and nothing is written anywhere
    ("../escape", "climbs out of the user folder"),
    ("../../../../tmp/escape", "climbs to /tmp"),
    ("/etc/escape", "an absolute path"),
    ("..\\escape", "climbs out, Windows style"),
    ("C:\\Windows\\escape", "a Windows absolute path"),
    ("sub/dir", "a sub-folder"),
    ("", "empty"),
    ("   ", "only spaces"),
    ("x" * 300, "300 characters"),
    ("modèle", "a non-ASCII letter"),
    ("数字", "Chinese characters"),
    ("nul\x00byte", "a NUL byte"),
    ("line\nbreak", "a line break inside"),
    (".hidden", "a hidden file"),
    ("-rf", "starts with a dash"),
    ("CON", "a reserved device name on Windows"),
]


def out_paths(folder: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """Bad `train --out` values: (path, what it is, words of the message); each refused before training."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a-file").write_text("a file, not a folder")
    (folder / "a-folder.safetensors").mkdir(exist_ok=True)
    return [
        (str(folder / "model.txt"), "does not end in .safetensors", ("must end in .safetensors",)),
        ("", "empty", ("--out", "empty")),
        (str(folder / "a-folder.safetensors"), "an existing folder", ("is a folder",)),
        (str(folder / "a-file" / "model.safetensors"), "inside a file, not a folder", ("not a folder",)),
        ("/proc/vaeviz/model.safetensors", "a folder nobody can write", ("cannot",)),
    ]


# --- where writes would show -------------------------------------------------------------------


class Sandbox:
    """A scratch folder standing in for everything an entry point could write to.

    While `active()`, the user folder ($VAEVIZ_USER_DIR), the temporary folder ($TMPDIR and
    `tempfile`) and the working directory are inside it, so `run()` sees every file written there;
    the shipped checkpoints are watched too. Inputs that must be files go under `inputs/` first.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.user, self.temp, self.work, self.inputs = (self.root / n for n in ("user", "tmp", "work", "inputs"))
        for folder in (self.temp, self.work, self.inputs):
            folder.mkdir(parents=True, exist_ok=True)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every file and folder in the sandbox, and every shipped checkpoint: name -> (size, mtime)."""
        found = {str(p.relative_to(self.root)): p for p in self.root.rglob("*")}
        found.update({str(p): p for p in SHIPPED_DIR.glob("*.safetensors")})
        return {name: (0 if p.is_dir() else p.lstat().st_size, p.lstat().st_mtime_ns) for name, p in found.items()}

    def env(self) -> dict[str, str]:
        """The environment of a `python -m vaeviz` run in the sandbox."""
        return {**os.environ, "VAEVIZ_USER_DIR": str(self.user), "TMPDIR": str(self.temp), "OMP_NUM_THREADS": "1"}

    @contextmanager
    def active(self) -> Iterator[None]:
        saved_env = {k: os.environ.get(k) for k in ("VAEVIZ_USER_DIR", "TMPDIR")}
        saved_temp, saved_cwd = tempfile.tempdir, os.getcwd()
        os.environ.update(VAEVIZ_USER_DIR=str(self.user), TMPDIR=str(self.temp))
        tempfile.tempdir = str(self.temp)
        os.chdir(self.work)
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            tempfile.tempdir = saved_temp
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def run(self, entry: Callable[[], Outcome], *, here: bool = True) -> Outcome:
        """Run an entry point: an exception that escapes it is a crash; add what it wrote.

        `here=False` for an entry point that starts its own process in the sandbox: this process's
        working directory and environment are left alone, so several may run at once (threads).
        """
        before = self.snapshot()
        with self.active() if here else nullcontext():
            try:
                outcome = entry()
            except Exception as exc:  # what a person would see as a traceback
                outcome = Outcome(CRASHED, f"{type(exc).__name__}: {exc}"[:300])
        after = self.snapshot()
        written = tuple(sorted(k for k, v in after.items() if before.get(k) != v))
        return Outcome(outcome.status, outcome.message, written)


# --- the command line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    """How a command ended: its exit code and what it printed."""

    code: int
    stdout: str
    stderr: str


def cli_in_process(argv: list[str], box: Sandbox) -> Exit:
    """`python -m vaeviz ARGV` as `vaeviz.__main__.main` in this process (fast); a traceback if it raises."""
    from vaeviz.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's exits
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:
            traceback.print_exc()  # as the interpreter would
            code = 1
    return Exit(code, out.getvalue(), err.getvalue())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (CLI_MEMORY_LIMIT, CLI_MEMORY_LIMIT))


def cli_subprocess(argv: list[str], box: Sandbox) -> Exit:
    """`python -m vaeviz ARGV` as its own process, its working directory and TMPDIR in the sandbox."""
    res = subprocess.run([sys.executable, "-m", "vaeviz", *argv], cwd=box.work, env=box.env(), capture_output=True,
                         text=True, timeout=300, preexec_fn=_limit_memory)
    return Exit(res.returncode, res.stdout, res.stderr)


def command_outcome(done: Exit) -> Outcome:
    """Exit 0: handled. Otherwise refused if standard error is one `error:` line, else a crash."""
    lines = done.stderr.strip().splitlines()
    if done.code == 0:
        return Outcome(HANDLED, (done.stdout.strip().splitlines() or [""])[-1][:200])
    if len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in done.stderr:
        return Outcome(REFUSED, lines[0])
    return Outcome(CRASHED, f"exit {done.code}, {len(lines)} lines on stderr: " + " | ".join(lines[-2:])[:300])


def listing_outcome(done: Exit) -> Outcome:
    """`list FOLDER` with one file in it: exit 0, and the file listed or `skipped: why` on one line."""
    lines = done.stderr.strip().splitlines()
    if done.code == 0 and len(lines) == 1 and lines[0].startswith("skipped:"):
        return Outcome(REFUSED, lines[0])
    if done.code == 0 and not lines:
        return Outcome(HANDLED, "listed")
    return command_outcome(done) if done.code else Outcome(CRASHED, " | ".join(lines)[:300])


# --- pages (Streamlit's AppTest) ----------------------------------------------------------------


@dataclass
class Page:
    """One AppTest session of the whole app on one page, kept across inputs as a browser tab is."""

    page: str
    setup: Callable[["Page"], None] | None = None
    at: object = field(default=None, repr=False)

    def session(self):
        if self.at is None:
            from streamlit.testing.v1 import AppTest

            self.at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            self.at.run()
            self.at.switch_page(self.page)
            self.at.run()
            if self.setup is not None:
                self.setup(self)
        return self.at

    def upload(self, key: str, name: str, data: bytes, mime: str = "application/octet-stream"):
        at = self.session()
        at.file_uploader(key=key).set_value((name, data, mime)).run()
        return at


def page_outcome(at, done: Callable[[object], bool], success: str) -> Outcome:
    """Crashed if the page raised; refused with its first error; handled if `done`; else lost."""
    if at.exception:
        return Outcome(CRASHED, "; ".join(str(e.value) for e in at.exception)[:300])
    if at.error:
        return Outcome(REFUSED, shown(at.error[0].value))
    if done(at):
        return Outcome(HANDLED, success)
    return Outcome(CRASHED, "no message and no result: the input vanished")


def _reconstructions(at) -> int:
    return sum(c == "reconstruction" for img in at.get("image") for c in img.captions)


def _paths(at) -> int:
    """Interpolated paths shown: the distance chart holds one line per model (the strip is one image)."""
    import json

    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-interp_distance")]
    return sum(t.get("mode") == "lines+markers" for c in charts for t in c["data"])


def draw_page() -> Page:
    return Page("pages/draw.py", lambda p: p.at.segmented_control(key="draw::how").set_value("Upload").run())


def draw_upload(page: Page, name: str, data: bytes) -> Outcome:
    at = page.upload("draw::upload", name, data, "image/png")
    return page_outcome(at, lambda a: _reconstructions(a) == 2, "reconstructed by the AE and the VAE")


def _upload_both_ends(page: Page) -> None:
    page.at.segmented_control(key="interp_source").set_value("Upload").run()
    page.upload("interp_end::upload", "end.png", good_image(), "image/png")


def interpolate_page() -> Page:
    return Page("pages/interpolate.py", _upload_both_ends)


def interpolate_upload(page: Page, name: str, data: bytes) -> Outcome:
    at = page.upload("interp_start::upload", name, data, "image/png")
    return page_outcome(at, lambda a: _paths(a) == 2, "interpolated: the AE's and VAE's paths")


def sidebar_page() -> Page:
    return Page("pages/draw.py")  # a light page: the sidebar is the same on every page


def sidebar_upload(page: Page, name: str, data: bytes) -> Outcome:
    at = page.upload("sidebar_upload", name, data)
    if at.exception:
        return Outcome(CRASHED, "; ".join(str(e.value) for e in at.exception)[:300])
    refused = [shown(e.value) for e in at.error if shown(e.value).startswith("Not loaded: ")]
    if refused:
        return Outcome(REFUSED, refused[0])
    box = at.selectbox(key="model_key")
    label = f"{Path(name).stem} (uploaded)"
    if box.options[box.index] == label:  # the options are the labels shown
        return Outcome(HANDLED, f"selected in the sidebar as {label}")
    return Outcome(CRASHED, "no message and no model: the upload vanished")


def zoo_page() -> Page:
    return Page("pages/zoo.py")


def zoo_upload(page: Page, name: str, data: bytes) -> Outcome:
    # The zoo gives its uploader a new key after a saved upload (so the saved file lets go).
    key = next(u.key for u in page.session().file_uploader if u.key.startswith("zoo_upload_"))
    at = page.upload(key, name, data)
    label = f"{Path(name).stem} (uploaded)"
    return page_outcome(at, lambda a: label in list(a.dataframe[0].value["name"]), "listed in the zoo")


def zoo_save_box(page: Page):
    """The zoo's Save as box, which shows for an uploaded model (one is uploaded if none is)."""
    at = page.session()
    if not any(b.key == "zoo_save" for b in at.button):
        zoo_upload(page, "shared.safetensors", good_checkpoint())
    return at.text_input(key="zoo_save_name")


def zoo_save(page: Page, name: str) -> Outcome:
    """Save an uploaded model under `name` with the zoo's Save as box and button."""
    zoo_save_box(page).set_value(name)
    at = page.at
    at.button(key="zoo_save").click()
    at.run()
    saved = [p.name for p in Path(os.environ["VAEVIZ_USER_DIR"]).glob("*.safetensors")]
    return page_outcome(at, lambda a: bool(saved), f"saved as {saved}")


def trainer_page() -> Page:
    return Page("pages/trainer.py", lambda p: p.at.button_group(key="trainer_mode").set_value("β sweep").run())


def trainer_sweep(page: Page, betas: str) -> Outcome:
    """Start a β sweep over `betas` (the page's text box); a refused list starts nothing."""
    at = page.session()
    at.text_input(key="sweep_betas").set_value(betas)
    at.button(key="trainer_start").click()
    at.run()
    job = job_of(at)
    if job is not None:  # started: stop it at once, it is not what this is about
        job.stop()
        job.join(60)
    return page_outcome(at, lambda a: job is not None, "training started")


# --- entry points: each takes an input and a sandbox and gives an Outcome ------------------------

Entry = Callable[..., Outcome]
Runner = Callable[[list[str], Sandbox], Exit]


def upload_entry(page: Page, upload: Callable[[Page, str, bytes], Outcome]) -> Entry:
    """An entry point that uploads the input's bytes under its file name on a page."""

    def entry(item: Hostile, box: Sandbox) -> Outcome:
        data = item.make(box.root)
        page.session()  # started outside the sandbox: AppTest's own files are not the app's
        return box.run(lambda: upload(page, item.filename, data))

    entry.page = page  # a test may look at the page's widgets
    return entry


def _picture_in_library(item: Hostile, data: bytes) -> Outcome:
    from vaeviz.preprocess import BadImage, open_image, to_mnist

    try:
        digit = to_mnist(open_image(data))
    except BadImage as exc:
        return Outcome(REFUSED, str(exc))
    if item.like is None:
        return Outcome(HANDLED, "read as a digit")
    difference = float((digit - to_mnist(item.like())).abs().mean())
    if difference >= 0.03:  # what the preprocessing tests allow between two versions of one picture
        return Outcome(CRASHED, f"misread: mean difference {difference:.3f} from the plain picture")
    return Outcome(HANDLED, f"reads as the plain picture (mean difference {difference:.3f})")


def picture_entries() -> dict[str, Entry]:
    """Where a picture can be given: the library, and the two pages with an upload."""
    draw, interpolate = draw_page(), interpolate_page()

    def library(item: Hostile, box: Sandbox) -> Outcome:
        data = item.make(box.root)
        return box.run(lambda: _picture_in_library(item, data))

    return {
        "to_mnist(open_image(bytes))": library,
        "Draw and encode: upload": upload_entry(draw, draw_upload),
        "Interpolate: upload": upload_entry(interpolate, interpolate_upload),
    }


def _load(source) -> Outcome:
    try:
        model = checkpoint.load_checkpoint(source, name="upload.safetensors")
    except ValueError as exc:
        return Outcome(REFUSED, str(exc))
    return Outcome(HANDLED, f"loaded a {model.kind}")


def checkpoint_entries(cli: Runner = cli_in_process) -> dict[str, Entry]:
    """Where a checkpoint can be given: the loader, the CLI, the sidebar and the zoo."""
    sidebar, zoo = sidebar_page(), zoo_page()

    def from_bytes(item: Hostile, box: Sandbox) -> Outcome:
        data = item.make(box.root)
        return box.run(lambda: _load(data))

    def from_file(item: Hostile, box: Sandbox) -> Outcome:
        path = write_input(item, box.inputs / item.name, box.root)
        return box.run(lambda: _load(path))

    def evaluate(item: Hostile, box: Sandbox) -> Outcome:
        path = write_input(item, box.inputs / item.name, box.root)
        argv = ["eval", str(path), "--iw-k", "0", "--limit", "100"]  # (if it loads: on its data set's test images)
        return box.run(lambda: command_outcome(cli(argv, box)), here=cli is cli_in_process)

    def listing(item: Hostile, box: Sandbox) -> Outcome:
        folder = box.inputs / item.name
        write_input(item, folder, box.root)
        return box.run(lambda: listing_outcome(cli(["list", str(folder)], box)), here=cli is cli_in_process)

    return {
        "load_checkpoint(bytes)": from_bytes,
        "load_checkpoint(path)": from_file,
        "python -m vaeviz eval": evaluate,
        "python -m vaeviz list": listing,
        "sidebar: upload": upload_entry(sidebar, sidebar_upload),
        "Model zoo: upload": upload_entry(zoo, zoo_upload),
    }


def parameter_entries(cli: Runner = cli_in_process) -> dict[str, Entry]:
    """Where a β, learning rate or latent size can be given."""
    from vaeviz import ModelConfig, TrainConfig

    trainer = trainer_page()

    def config(item: BadParameter, box: Sandbox) -> Outcome:
        def build() -> Outcome:
            try:
                (TrainConfig if item.field == "lr" else ModelConfig)(**{item.field: item.value})
            except ValueError as exc:
                return Outcome(REFUSED, str(exc))
            return Outcome(HANDLED, "accepted")

        return box.run(build)

    def train(item: BadParameter, box: Sandbox) -> Outcome:
        argv = ["train", f"{item.flag}={item.text}", "--dataset", "digits", "--epochs", "1", "--quiet",
                "--out", str(box.inputs / "model.safetensors")]
        return box.run(lambda: command_outcome(cli(argv, box)), here=cli is cli_in_process)

    def sweep(item: BadParameter, box: Sandbox) -> Outcome | None:
        if item.flag != "--beta":
            return None  # the page's other settings are sliders over fixed values
        trainer.session()
        return box.run(lambda: trainer_sweep(trainer, f"1, {item.text}"))

    return {"ModelConfig / TrainConfig": config, "python -m vaeviz train": train, "Trainer: β sweep": sweep}


def name_entries() -> dict[str, Entry]:
    """Where a name to save a model under can be given (in the app; the CLI takes a path, below)."""
    from vaeviz import store

    zoo = zoo_page()

    def save_model(name: str, box: Sandbox) -> Outcome:
        model = checkpoint.load_checkpoint(VALID_CHECKPOINT)

        def save() -> Outcome:
            try:
                path = store.save_model(model, name)
            except (ValueError, FileExistsError) as exc:
                return Outcome(REFUSED, str(exc))
            return Outcome(HANDLED, f"saved as {path}")

        return box.run(save)

    def zoo_save_as(name: str, box: Sandbox) -> Outcome | None:
        if len(name) > zoo_save_box(zoo).proto.max_chars:
            return None  # the box itself keeps only its first max_chars characters
        return box.run(lambda: zoo_save(zoo, name))

    zoo_save_as.page = zoo
    return {"store.save_model": save_model, "Model zoo: Save as": zoo_save_as}


def out_entry(cli: Runner = cli_in_process) -> Entry:
    """`train --out PATH`: refused before any training, so nothing is wasted and nothing written."""

    def train(path: str, box: Sandbox) -> Outcome:
        argv = ["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", path]
        return box.run(lambda: command_outcome(cli(argv, box)), here=cli is cli_in_process)

    return train
