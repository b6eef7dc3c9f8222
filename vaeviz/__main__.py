"""The command line: `vaeviz train | eval | list | train-judge | import-onnx` (also `python -m vaeviz ...`).

Each command prints a human-readable account, then a JSON object as the last line of standard
output, so scripts can read the result with `json.loads(stdout.splitlines()[-1])`. Expected errors
(bad arguments, missing data, a bad checkpoint) print one line to standard error and exit with 2;
no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from . import __version__
from dataclasses import replace

from .checkpoint import checkpoint_summary, find_checkpoints, load_checkpoint, save_checkpoint, user_dir
from .config import ModelConfig, TrainConfig, conv_channels_for, shown
from .data import DATASETS, dataset_spec, dataset_stem, load_split
from .folders import FolderSet
from .jobs import MAX_SAVED_STEPS, thin
from .meta import Curves, Metrics, TrainingRun
from .metrics import evaluate, iw_nll
from .models import MODELS, build_model
from .train import fit, pick_device


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one readable line instead of usage + error
        self.exit(2, f"error: {message} (try --help)\n")


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def _count(text: str) -> int:
    """A whole number, 0 or more (argparse's own `int` would accept -5 and say 'invalid int' otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _dataset(text: str) -> str:
    """A data set's name, or folder:PATH (checked when the command runs, with --image-size and --channels)."""
    if text in DATASETS or text.startswith("folder:"):
        return text
    raise argparse.ArgumentTypeError(f"unknown data set {text!r}; expected one of {', '.join(sorted(DATASETS))}, "
                                     "or folder:PATH for a folder of pictures")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vaeviz", description="Train, evaluate and list vaeviz models.")
    parser.add_argument("--version", action="version", version=f"vaeviz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train a model and save it as a checkpoint")
    train.add_argument("--model", choices=sorted(MODELS), default="vae", help="kind of model")
    train.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    train.add_argument("--latent-dim", type=int, default=16)
    train.add_argument("--beta", type=_number, default=1.0, help="KL weight (VAE)")
    train.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=None,
                       help="decoder likelihood (default: the data set's natural one)")
    train.add_argument("--sigma", type=_number, default=None, help="gaussian likelihood: the decoder's std (default 0.1)")
    train.add_argument("--hidden", default=None, help="mlp widths, e.g. 256,128 (the default)")
    train.add_argument("--corruption", choices=["gaussian", "mask"], default="gaussian", help="dae: how inputs are corrupted")
    train.add_argument("--noise", type=_number, default=0.3, help="dae: noise std, or the fraction masked")
    train.add_argument("--sparsity", type=_number, default=0.0, help="sae: weight of the L1 penalty on the codes")
    train.add_argument("--contraction", type=_number, default=0.0, help="cae: weight of ||dz/dx||_F^2")
    train.add_argument("--bottom-dim", type=int, default=32, help="hvae: size of the lower latent layer z1")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=_number, default=1e-3)
    train.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    train.add_argument("--kl-warmup", type=_number, default=0.0,
                       help="epochs over which the KL weight ramps from 0 to beta (VAE; 0: off)")
    train.add_argument("--ema", type=_number, default=0.0,
                       help="keep a moving average of the weights with this decay (e.g. 0.999); 0: off")
    train.add_argument("--dataset", type=_dataset, default="mnist",
                       help=f"{', '.join(sorted(DATASETS))}, or folder:PATH (your own pictures)")
    train.add_argument("--image-size", type=_positive_int, default=None,
                       help="folder: resize pictures to this square side, 28 to 128 (default 28)")
    train.add_argument("--channels", type=int, choices=[1, 3], default=None,
                       help="folder: 1 for grey, 3 for colour (default 1)")
    train.add_argument("--split-seed", type=_count, default=None,
                       help="folder: the seed of the held-out test split (default 0)")
    train.add_argument("--data-dir", default=None, help="data folder (default $VAEVIZ_DATA_DIR or data/)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=_positive_int, default=None, help="use only the first N training images")
    train.add_argument("--test-limit", type=_positive_int, default=None, help="use only the first N test images")
    train.add_argument("--iw-k", type=_count, default=0, help="importance samples for -log p(x) (VAE; 0 skips)")
    train.add_argument("--out", default=None, help="checkpoint path (.safetensors)")
    train.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tuning)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    ev = sub.add_parser("eval", help="measure a checkpoint on its data set's test split")
    ev.add_argument("checkpoint")
    ev.add_argument("--dataset", type=_dataset, default=None, help="default: the one it was trained on")
    ev.add_argument("--data-dir", default=None)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--limit", type=_positive_int, default=None, help="use only the first N test images")
    ev.add_argument("--iw-k", type=_count, default=100, help="importance samples for -log p(x) (VAE; 0 skips)")
    ev.add_argument("--gap-images", type=_count, default=0,
                    help="measure the amortization gap on the first N test images (VAE; 0 skips)")
    ev.add_argument("--gap-steps", type=_positive_int, default=200, help="gradient steps per image for the gap")
    ev.add_argument("--seed", type=int, default=0)

    tj = sub.add_parser("train-judge", help="train the MNIST classifier the app uses to judge decoded images")
    tj.add_argument("--epochs", type=_positive_int, default=6)
    tj.add_argument("--data-dir", default=None)
    tj.add_argument("--seed", type=int, default=0)
    tj.add_argument("--out", default=None, help="default: checkpoints/judge/mnist-classifier.safetensors")

    ls = sub.add_parser("list", help="list the checkpoints the app knows")
    ls.add_argument("folders", nargs="*", help="folders to list (default: checkpoints/ and the user folder)")

    im = sub.add_parser("import-onnx", help="make a checkpoint from your own encoder and decoder exported to ONNX "
                                            "(docs/bring-your-own-model.md)")
    im.add_argument("--encoder", required=True, help="the encoder's .onnx: images -> code (AE) or mu, log sigma^2 (VAE)")
    im.add_argument("--decoder", required=True, help="the decoder's .onnx: codes -> images in [0, 1]")
    im.add_argument("--kind", choices=["ae", "vae"], required=True)
    im.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    im.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                    help="the data set its pages encode (default mnist for 1x28x28 images; required otherwise)")
    im.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli",
                    help="the decoder's p(x|z), for its losses (default bernoulli)")
    im.add_argument("--sigma", type=_number, default=None, help="gaussian likelihood: the decoder's std (default 0.1)")
    im.add_argument("--image-shape", default=None, help="C,H,W, when both networks take and give flat vectors")
    im.add_argument("--data-dir", default=None, help="data folder, for the test metrics")
    im.add_argument("--test-limit", type=_positive_int, default=None, help="measure on the first N test images only")
    im.add_argument("--no-eval", action="store_true", help="do not measure it on the data set's test split")
    return parser


def _test_metrics(model, images, iw_k: int, seed: int) -> Metrics:
    metrics = evaluate(model, images, seed=seed)
    if iw_k and model.probabilistic:
        metrics = replace(metrics, iw_nll=iw_nll(model, images, k=iw_k, seed=seed), iw_k=iw_k)
    return metrics


def _warm_start(model, path: str) -> list[dict]:
    """Start from a checkpoint's weights (same kind and architecture); returns its epoch records."""
    start = load_checkpoint(path)
    if start.kind != model.kind or start.cfg != model.cfg:
        raise ValueError(f"--init {path} is a {start.kind} with config {start.cfg}, not this model's")
    model.load_state_dict(start.state_dict())
    return list(start.meta.curves.epochs)


def _summary(metrics: Metrics) -> dict:
    """The metrics for the JSON line, without the per-dimension list."""
    return {k: v for k, v in metrics.to_dict().items() if k != "kl_per_dim"}


def _check_writable(out: Path) -> None:
    """Refuse an --out that could not be written: a folder, a path through a file, no write access.

    Access is tried, not inferred from permission bits (which say yes to root, even on /proc): an
    unnamed temporary file is opened in the nearest folder that exists, which on Linux (O_TMPFILE)
    never appears in the folder; elsewhere it is created and removed at once.
    """
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in .safetensors")
    folder = next(p for p in (out.parent.absolute(), *out.parent.absolute().parents) if p.exists())
    if not folder.is_dir():
        raise ValueError(f"--out {out} cannot be written: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out} cannot be written: no new file can be made in {folder} "
                         f"({exc.strerror or exc})") from None


def _widths(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be whole numbers separated by commas, got {shown(text)!r}") from None


def _training_data(args: argparse.Namespace):
    """The data set's spec, with a folder's pictures read (and its summary line printed) up front."""
    folder_options = {"size": args.image_size, "channels": args.channels, "seed": args.split_seed}
    if not args.dataset.startswith("folder:"):
        if any(v is not None for v in folder_options.values()):
            raise ValueError(f"--image-size, --channels and --split-seed are for folder: data sets; "
                             f"{args.dataset} images are {'x'.join(map(str, DATASETS[args.dataset].image_shape))}")
        return dataset_spec(args.dataset)
    spec = dataset_spec(args.dataset, **folder_options)
    data = FolderSet.parse(spec.name).read(None if args.quiet else _progress_line)
    print(data.summary, file=sys.stderr)
    return spec


def _progress_line(done: int, total: int) -> None:
    print(f"\rreading pictures: {done:,}/{total:,}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> dict:
    spec = _training_data(args)
    args.dataset = spec.name
    channels, height, width = spec.image_shape
    options = {k: v for k, v in (("sigma", args.sigma), ("hidden", _widths(args.hidden))) if v is not None}
    if args.arch == "conv" and height > 28:
        options["conv_channels"] = conv_channels_for(min(height, width))
    cfg = ModelConfig(
        arch=args.arch,
        latent_dim=args.latent_dim,
        channels=channels,
        height=height,
        width=width,
        beta=args.beta,
        likelihood=args.likelihood or MODELS[args.model].likelihood or spec.likelihood,
        corruption=args.corruption,
        noise=args.noise,
        sparsity=args.sparsity,
        contraction=args.contraction,
        bottom_dim=args.bottom_dim,
        **options,
    )
    tcfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
        kl_warmup=args.kl_warmup, ema=args.ema, seed=args.seed, device=args.device,
    )
    if args.out is not None and not args.out.strip():
        raise ValueError("--out is empty: give a file name ending in .safetensors")
    stem = dataset_stem(spec.name)
    out = Path(args.out) if args.out else user_dir() / f"{stem}-{args.model}-{args.arch}-{args.latent_dim}.safetensors"
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors: {out}")
    _check_writable(out)  # before the data is read and the training done, not after
    device = pick_device(args.device)
    train = load_split(args.dataset, "train", root=args.data_dir, device=device, limit=args.limit)
    test = load_split(args.dataset, "test", root=args.data_dir, device=device, limit=args.test_limit)
    model = build_model(args.model, cfg, seed=args.seed)
    earlier: list[dict] = []
    if args.init:
        earlier = _warm_start(model, args.init)
    print(f"training {args.model}/{args.arch} latent={args.latent_dim} beta={args.beta} on {args.dataset} "
          f"({len(train.images)} images) on {device}", file=sys.stderr)
    history = fit(model, train, tcfg, test=test, progress=not args.quiet)
    if history.diverged:
        print(f"warning: {history.diverged}", file=sys.stderr)
    metrics = _test_metrics(model, test.images, args.iw_k, args.seed)
    run = TrainingRun(tcfg, len(train.images), str(device), Path(args.init).name if args.init else None,
                      history.train_images_per_s, history.diverged, history.stopped)
    curves = Curves(tuple(thin(history.steps, MAX_SAVED_STEPS)),
                    tuple(earlier + [{**r, "epoch": r["epoch"] + len(earlier)} for r in history.epochs]))
    model.meta = model.meta.with_run(dataset=args.dataset, train=run, metrics=metrics, curves=curves)
    save_checkpoint(model, out)
    return {
        "checkpoint": str(out),
        "kind": args.model,
        "arch": args.arch,
        "latent_dim": args.latent_dim,
        "beta": model.meta.beta,
        "dataset": args.dataset,
        "epochs_done": len(history.epochs),
        "train_images_per_s": round(history.train_images_per_s, 1),
        "train_seconds": round(history.train_seconds, 2),
        "diverged": history.diverged,
        "test": _summary(metrics),
    }


def cmd_eval(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    model = load_checkpoint(args.checkpoint, device=device)
    dataset = args.dataset or model.meta.dataset
    if not dataset:
        raise ValueError("the checkpoint does not say its data set; pass --dataset")
    test = load_split(dataset, "test", root=args.data_dir, device=device, limit=args.limit)
    if tuple(test.images.shape[1:]) != model.cfg.image_shape:
        raise ValueError(f"{dataset} images are {tuple(test.images.shape[1:])}, the model expects {model.cfg.image_shape}")
    metrics = _test_metrics(model, test.images, args.iw_k, args.seed)
    if args.gap_images:
        from .inference import amortization_gap, supports

        if supports(model):
            gap = amortization_gap(model, test.images[: args.gap_images], steps=args.gap_steps)
            metrics = replace(metrics, extra={**metrics.extra, "amortization_gap": gap,
                                              "gap_images": min(args.gap_images, len(test.images))})
    m = model.meta
    print(f"{Path(args.checkpoint).name}: {m.kind}/{m.config.arch} latent={m.config.latent_dim} on {dataset} "
          f"({metrics.n_images} test images)", file=sys.stderr)
    return {
        "checkpoint": args.checkpoint,
        "kind": m.kind,
        "arch": m.config.arch,
        "latent_dim": m.config.latent_dim,
        "beta": m.beta,
        "dataset": dataset,
        "test": _summary(metrics),
        "kl_per_dim": list(metrics.kl_per_dim) if metrics.kl_per_dim is not None else None,
    }


def cmd_list(args: argparse.Namespace) -> dict:
    folders = [Path(f) for f in args.folders] if args.folders else None
    rows, problems = [], []
    for path in find_checkpoints(folders):
        try:
            info = checkpoint_summary(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        m = info.meta
        rows.append({
            "name": info.name, "path": info.path, "kind": m.kind, "arch": m.config.arch,
            "latent_dim": m.config.latent_dim, "beta": m.beta, "dataset": m.dataset,
            "neg_elbo": m.metrics.neg_elbo, "recon": m.metrics.recon, "kl": m.metrics.kl,
            "size_bytes": info.size_bytes,
        })
    for r in rows:
        elbo = f"{r['neg_elbo']:.2f}" if isinstance(r["neg_elbo"], (int, float)) else "-"
        print(f"{shown(r['name']):<28} {r['kind']:<4} {r['arch']:<5} z={r['latent_dim']:<4} "
              f"{shown(str(r['dataset'])):<14} -ELBO={elbo}")  # (name and data set come from the file)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    return {"checkpoints": rows, "skipped": problems}


def cmd_train_judge(args: argparse.Namespace) -> dict:
    from .judge import JUDGE_PATH, save_classifier, train_classifier

    out = Path(args.out) if args.out else JUDGE_PATH
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors: {out}")
    _check_writable(out)
    train = load_split("mnist", "train", root=args.data_dir)
    test = load_split("mnist", "test", root=args.data_dir)
    model, record = train_classifier(train, test, epochs=args.epochs, seed=args.seed,
                                     progress=lambda e, acc: print(f"epoch {e}: test accuracy {acc:.4f}", file=sys.stderr))
    save_classifier(model, out, {**record, "seed": args.seed})
    return {"checkpoint": str(out), **record}


def _image_shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--image-shape must be three positive whole numbers C,H,W, got {shown(text)!r}")
    return shape


def cmd_import_onnx(args: argparse.Namespace) -> dict:
    from .data import DataUnavailable
    from .onnx_import import import_files

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors: {out}")
    _check_writable(out)
    imported = import_files(args.encoder, args.decoder, args.kind, dataset=args.dataset, likelihood=args.likelihood,
                            sigma=0.1 if args.sigma is None else args.sigma, image_shape=_image_shape(args.image_shape))
    model = imported.model
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    metrics = None
    if not args.no_eval:
        try:
            test = load_split(model.meta.dataset, "test", root=args.data_dir, limit=args.test_limit)
        except DataUnavailable as exc:
            print(f"warning: not measured on the test split: {exc}", file=sys.stderr)
        else:
            metrics = _test_metrics(model, test.images, 0, 0)
            model.meta = replace(model.meta, metrics=metrics)
    save_checkpoint(model, out)
    cfg = model.cfg
    article = "an" if model.kind == "ae" else "a"
    print(f"imported {article} {model.kind.upper()} ({sum(p.numel() for p in model.parameters()):,} weights, latent "
          f"size {cfg.latent_dim}, images {cfg.channels}x{cfg.height}x{cfg.width}) into {out}", file=sys.stderr)
    return {
        "checkpoint": str(out),
        "kind": model.kind,
        "arch": cfg.arch,
        "latent_dim": cfg.latent_dim,
        "image_shape": list(cfg.image_shape),
        "dataset": model.meta.dataset,
        "params": sum(p.numel() for p in model.parameters()),
        "notes": list(imported.notes),
        "test": _summary(metrics) if metrics is not None else None,
    }


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "list": cmd_list, "train-judge": cmd_train_judge,
            "import-onnx": cmd_import_onnx}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = COMMANDS[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
