"""Import your own model: an encoder and a decoder exported to ONNX become a vaeviz checkpoint.

`torch.onnx.export` writes a network as a graph of operators with its weights inside. `import_onnx`
reads two such graphs with the `onnx` package (protobuf parsing only: nothing in the files is executed,
no onnxruntime, no TorchScript, no pickle), follows each from its input to its outputs, and writes the
layers down in vaeviz's network language (`vaeviz.netspec`, the "graph" architecture) with the weights
as the model's tensors. It accepts the operators vaeviz's own networks are made of, in the forms both of
PyTorch's exporters write them (the TorchScript one, `dynamo=False`, and the torch.export one):

- Gemm, or MatMul followed by an Add of a bias -> linear; Conv -> conv2d; ConvTranspose -> conv_transpose2d;
- Relu, LeakyRelu, Sigmoid, Tanh; Mul, Add, Sub or Div by a scalar constant -> affine;
- Flatten and Reshape (to a constant shape that keeps the batch dimension) -> reshape; Identity;
- the constant bookkeeping around them (Constant nodes, Shape, Gather, Slice, Concat, Unsqueeze, Cast,
  integer arithmetic on sizes), which is evaluated here, with the batch size kept symbolic;
- at the end of a VAE's encoder, the split into μ and log σ² (a Split, or two Slices, of one tensor
  into halves; or two linear heads on the same features, which are merged into one layer).

The decoder's output must lie in [0, 1]: a final Sigmoid is stripped (vaeviz's decoders end in logits)
and a final (tanh(y) + 1) / 2, which is exactly sigmoid(2y), becomes the logits 2y. Anything else (another
operator, a dynamic size other than the batch, weights in an external file, a graph that branches) is a
`ValueError` naming what is not supported, and so is every disagreement between the two networks' shapes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .config import ModelConfig, shown
from .netspec import MAX_ACTIVATION, MAX_PARAMS, Layer, Network, Shape
from .models import Model, build_model

MAX_ONNX_BYTES = 64 * 1024 * 1024  # a network within netspec's weight budget fits in this
MAX_NODES = 20_000
KINDS = ("ae", "vae")
BATCH = int(np.iinfo(np.int64).min)  # the batch size, in the shape arithmetic an exporter writes
SUPPORTED = ("Gemm, MatMul (+ Add), Conv, ConvTranspose, Relu, LeakyRelu, Sigmoid, Tanh, Flatten, Reshape, "
             "Identity, Mul/Add/Sub/Div by a scalar, and a final Split or Slice into μ and log σ²")
_PARAMETRISED = ("linear", "conv2d", "conv_transpose2d")


class _Refused(ValueError):
    """The graph uses something the importer does not convert (the message says what)."""


@dataclass(frozen=True)
class _Step:
    """One layer and its weights: float32 arrays in PyTorch's layout (Linear (out, in), Conv (out, in, kh, kw),
    ConvTranspose (in, out, kh, kw))."""

    layer: Layer
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    in_shape: Shape = ()  # the shape per image it takes (set by `_then`)


@dataclass(frozen=True)
class _Act:
    """A computed tensor: the layers that made it from the graph's input, and its shape per image."""

    steps: tuple[_Step, ...]
    shape: Shape
    window: tuple[int, int] | None = None  # a slice [start, stop) of the features: μ or log σ²


@dataclass(frozen=True)
class Imported:
    """An imported model (kind ae or vae, architecture graph, in eval mode) and what the import did."""

    model: Model
    notes: tuple[str, ...]


# --- reading a file ---------------------------------------------------------------------------


def read_file(path: str | os.PathLike) -> bytes:
    """An .onnx file's bytes, refusing missing, odd or oversized files before reading them."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such ONNX file: {path}" if not path.exists() else f"not a file: {path}")
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise ValueError(f"{path.name} is {size / 2**20:,.0f} MB; an importable network is at most "
                         f"{MAX_ONNX_BYTES // 2**20} MB ({MAX_PARAMS:,} weights)")
    with open(path, "rb") as f:
        return f.read(MAX_ONNX_BYTES + 1)


def parse(data: bytes, label: str):
    """The ModelProto in `data`; ValueError (never a protobuf traceback) if it is not a readable ONNX model."""
    import onnx
    from google.protobuf.message import DecodeError

    if len(data) > MAX_ONNX_BYTES:
        raise ValueError(f"{label} is larger than {MAX_ONNX_BYTES // 2**20} MB")
    if not data:
        raise ValueError(f"{label} is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)  # protobuf only: no external files are opened, nothing is run
    except (DecodeError, RuntimeError, ValueError):
        raise ValueError(f"{label} is not an ONNX model (it could not be read: truncated, or another format)") from None
    if not model.HasField("graph") or not model.graph.node or model.ir_version <= 0:
        raise ValueError(f"{label} is not an ONNX model (no graph in it: truncated, or another format)")
    if len(model.graph.node) > MAX_NODES:
        raise ValueError(f"{label} has {len(model.graph.node):,} operators; the limit is {MAX_NODES:,}")
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise _Refused(f"{label} keeps its weights in an external file (e.g. {shown(external[0])}), which is not "
                       "supported: export with torch.onnx.export(..., external_data=False) so they are inside the .onnx")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx's ValidationError, or a C++ error for a damaged graph
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{label} is not a valid ONNX model: {shown(first, 200)}") from None
    return model


# --- following one graph ----------------------------------------------------------------------


def _dims(value_info) -> list[int | str | None]:
    """A graph input's or output's dimensions: a number, a name (dynamic) or None (unknown)."""
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


class _Graph:
    """Walks one graph's nodes in order, keeping constants as numpy arrays and tensors as `_Act`s."""

    def __init__(self, model, label: str) -> None:
        from onnx import helper, numpy_helper

        self.label, self.helper, self.numpy_helper = label, helper, numpy_helper
        graph = model.graph
        self.producer = f"{model.producer_name} {model.producer_version}".strip() or "an unnamed exporter"
        self.values: dict[str, np.ndarray | _Act] = {}
        for tensor in graph.initializer:
            self.values[tensor.name] = self._array(tensor, f"the weight {shown(tensor.name)}")
        if len(graph.sparse_initializer):
            raise _Refused(f"{label} has sparse weights, which are not supported")
        inputs = [i for i in graph.input if i.name not in self.values]  # older files list weights as inputs
        if len(inputs) != 1:
            raise _Refused(f"{label} has {len(inputs)} inputs; a network to import takes one tensor")
        graph_in = inputs[0]
        if graph_in.type.tensor_type.elem_type not in (1, 10, 11, 16):  # float, float16, double, bfloat16
            raise _Refused(f"{label}'s input {shown(graph_in.name)} is not a float tensor")
        dims = _dims(graph_in)
        if len(dims) < 2:
            raise _Refused(f"{label}'s input has shape {dims or '(unknown)'}; it must be (batch, ...) with a batch "
                           "dimension first")
        for i, d in enumerate(dims[1:], 1):
            if not isinstance(d, int) or d < 1:
                size = shown(str(d)) if d else "unknown"
                raise _Refused(f"{label}'s input has a dynamic size in dimension {i} ({size}), which is "
                               "not supported: export it with a fixed image (or code) size; only the batch, the "
                               "first dimension, may be dynamic")
        self.batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
        self.batch_note = (f"the batch dimension is fixed at {self.batch} in the file: fine, vaeviz runs any batch size"
                           if self.batch else "the batch dimension is dynamic: fine")
        self.in_shape: Shape = tuple(dims[1:])
        self.values[graph_in.name] = _Act((), self.in_shape)
        self.output_names = [o.name for o in graph.output]
        self.declared = {o.name: _dims(o) for o in graph.output}
        for node in graph.node:
            self._node(node)

    # --- plumbing ---

    def _array(self, tensor, what: str) -> np.ndarray:
        try:
            array = self.numpy_helper.to_array(tensor)
        except Exception:  # a damaged tensor: its bytes do not match its shape, an unknown type
            raise ValueError(f"{self.label}: {what} cannot be read (is the file truncated?)") from None
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
            if not np.isfinite(array).all():
                raise ValueError(f"{self.label}: {what} holds NaN or infinite values")
        elif array.dtype.kind in "iub":
            array = array.astype(np.int64)
        else:
            raise _Refused(f"{self.label}: {what} is a {array.dtype} tensor, which is not supported")
        return array

    def _refuse(self, node, why: str) -> _Refused:
        name = f" ({shown(node.name)})" if node.name else ""
        return _Refused(f"{self.label}: the {node.op_type} operator{name} {why}")

    def _node(self, node) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise _Refused(f"{self.label}: the operator {shown(node.domain)}:{shown(node.op_type)} (a custom or local "
                           f"function) is not supported; vaeviz imports {SUPPORTED}")
        ins: list[np.ndarray | _Act | None] = []
        for name in node.input:
            if name == "":
                ins.append(None)  # an optional input left out
            elif name in self.values:
                ins.append(self.values[name])
            else:
                raise ValueError(f"{self.label}: the {node.op_type} operator reads {shown(name)}, which nothing "
                                 "before it makes (is the file truncated?)")
        attrs = {a.name: self._attr(a) for a in node.attribute}
        acts = [v for v in ins if isinstance(v, _Act)]
        if node.op_type == "Constant":
            outs = [self._constant(node, attrs)]
        elif node.op_type == "Shape" and acts:
            outs = [self._shape_of(acts[0], attrs)]
        elif not acts:
            if node.op_type not in _FOLD:
                raise self._refuse(node, f"is not supported; vaeviz imports {SUPPORTED}")
            outs = self._run(_FOLD[node.op_type], node, ins, attrs)
            for out in outs:
                if out.size > MAX_PARAMS:
                    raise self._refuse(node, f"makes a constant of {out.size:,} numbers, too large")
        else:
            if len(acts) > 1:
                raise self._refuse(node, "combines two computed tensors (a skip connection, a concatenation?), which "
                                         "is not supported: vaeviz runs one chain of layers")
            if node.op_type not in _LAYERS:
                raise self._refuse(node, f"is not supported; vaeviz imports {SUPPORTED}")
            act = acts[0]
            if act.window is not None:
                raise self._refuse(node, "reads a slice of the features: only the encoder's final split into μ and "
                                         "log σ² may slice them")
            outs = self._run(_LAYERS[node.op_type], node, act, ins, attrs)
            for out in outs:
                if isinstance(out, _Act) and math.prod(out.shape) > MAX_ACTIVATION:
                    raise self._refuse(node, f"makes {math.prod(out.shape):,} numbers per image; the limit is "
                                             f"{MAX_ACTIVATION:,}")
        if len(outs) < len([o for o in node.output if o]):
            raise self._refuse(node, "has more outputs than vaeviz follows")
        for name, value in zip(node.output, outs):
            if name:
                self.values[name] = value

    def _run(self, handler: Callable, node, *args) -> list:
        """A handler's outputs; a malformed node (a missing input, an index out of range) is refused, not a crash."""
        try:
            return handler(self, node, *args)
        except _Refused:
            raise
        except (ValueError, IndexError, TypeError, KeyError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise self._refuse(node, f"cannot be read ({shown(str(exc) or type(exc).__name__, 120)})") from None

    def _attr(self, attr) -> Any:
        value = self.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if hasattr(value, "dims") and hasattr(value, "data_type"):  # a TensorProto
            return self._array(value, f"the attribute {shown(attr.name)}")
        return value

    def _constant(self, node, attrs: dict) -> np.ndarray:
        if "value" in attrs:
            return attrs["value"]
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in attrs:
                return np.asarray(attrs[key], dtype)
        raise self._refuse(node, f"holds a kind of constant that is not supported ({', '.join(attrs) or 'none'})")

    def _shape_of(self, act: _Act, attrs: dict) -> np.ndarray:
        full = np.array([BATCH, *act.shape], np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", len(full))
        return full[slice(start, end)]

    def _const(self, node, value: Any, what: str) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise self._refuse(node, f"needs its {what} to be a constant")
        return value

    def outputs(self) -> list[_Act]:
        outs = []
        for name in self.output_names:
            value = self.values.get(name)
            if not isinstance(value, _Act):
                raise _Refused(f"{self.label}: its output {shown(name)} does not depend on its input")
            declared = self.declared.get(name, [])[1:]
            shape = value.shape if value.window is None else (value.window[1] - value.window[0],)
            if len(declared) == len(shape) and any(isinstance(d, int) and d > 0 and d != s
                                                   for d, s in zip(declared, shape)):
                raise ValueError(f"{self.label}: the file says its output {shown(name)} has shape {declared} per "
                                 f"image, but its layers make {list(shape)}")
            outs.append(value)
        return outs


# --- constant folding (shape bookkeeping) -----------------------------------------------------


def _no_batch(g: _Graph, node, *arrays: np.ndarray) -> None:
    if any(a.dtype == np.int64 and (a == BATCH).any() for a in arrays):
        raise g._refuse(node, "computes with the batch size (x.size(0)), which is not supported: write "
                              "x.view(-1, ...) or x.flatten(1), or use nn.Flatten / nn.Unflatten")


def _arith(op: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def fold(g: _Graph, node, ins, attrs):
        a, b = ins[0], ins[1]
        _no_batch(g, node, a, b)
        return [np.asarray(op(a, b)).astype(np.result_type(a, b))]
    return fold


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "i" and b.dtype.kind == "i":  # ONNX integer division truncates towards 0
        if (b == 0).any():
            raise ValueError("a constant division by zero")
        return np.trunc(a / b).astype(np.int64)
    return a / b


def _mod(g: _Graph, node, ins, attrs):
    a, b = ins[0], ins[1]
    _no_batch(g, node, a, b)
    if (b == 0).any():
        raise g._refuse(node, "divides by zero")
    return [np.fmod(a, b) if attrs.get("fmod", 0) else np.mod(a, b)]


def _axes(g: _Graph, node, ins, attrs, index: int) -> list[int] | None:
    if len(ins) > index and ins[index] is not None:
        return [int(v) for v in g._const(node, ins[index], "axes").reshape(-1)]
    return list(attrs["axes"]) if "axes" in attrs else None


def _unsqueeze(g: _Graph, node, ins, attrs):
    x, axes = ins[0], _axes(g, node, ins, attrs, 1) or []
    rank = x.ndim + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = np.expand_dims(x, axis)
    return [x]


def _squeeze(g: _Graph, node, ins, attrs):
    axes = _axes(g, node, ins, attrs, 1)
    x = ins[0]
    return [np.squeeze(x, axis=tuple(a + x.ndim if a < 0 else a for a in axes)) if axes else np.squeeze(x)]


def _slice_args(g: _Graph, node, ins, attrs, rank: int) -> list[tuple[int, int, int, int]]:
    """(axis, start, end, step) per sliced axis, from inputs (opset 10+) or attributes (older)."""
    if len(ins) > 1:
        starts, ends = g._const(node, ins[1], "starts"), g._const(node, ins[2], "ends")
        axes = g._const(node, ins[3], "axes") if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
        steps = g._const(node, ins[4], "steps") if len(ins) > 4 and ins[4] is not None \
            else np.ones(len(starts), np.int64)
        if any(v.ndim != 1 or len(v) != len(starts) or v.dtype.kind != "i" for v in (starts, ends, axes, steps)):
            raise g._refuse(node, "has starts, ends, axes and steps that are not whole-number lists of one length")
    else:
        starts, ends = np.asarray(attrs.get("starts", [])), np.asarray(attrs.get("ends", []))
        axes = np.asarray(attrs.get("axes", range(len(starts))))
        steps = np.ones(len(starts), np.int64)
    _no_batch(g, node, np.asarray(starts, np.int64), np.asarray(ends, np.int64))
    return [(int(a) + rank if a < 0 else int(a), int(s), int(e), int(t)) for a, s, e, t in zip(axes, starts, ends, steps)]


def _bounds(start: int, end: int, step: int, dim: int) -> slice:
    """ONNX Slice's clamping, as a Python slice of a dimension of size `dim`."""
    if step == 0:
        raise ValueError("a slice with step 0")
    start, end = (start + dim if start < 0 else start), (end + dim if end < 0 else end)
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _slice(g: _Graph, node, ins, attrs):
    x = ins[0]
    index = [slice(None)] * x.ndim
    for axis, start, end, step in _slice_args(g, node, ins, attrs, x.ndim):
        index[axis] = _bounds(start, end, step, x.shape[axis])
    return [x[tuple(index)]]


def _reshape_const(g: _Graph, node, ins, attrs):
    x, target = ins[0], [int(v) for v in g._const(node, ins[1], "shape").reshape(-1)]
    _no_batch(g, node, np.asarray(target, np.int64))
    if not attrs.get("allowzero", 0):
        target = [x.shape[i] if v == 0 and i < x.ndim else v for i, v in enumerate(target)]
    return [x.reshape(target)]


def _constant_of_shape(g: _Graph, node, ins, attrs):
    shape = g._const(node, ins[0], "shape").reshape(-1)
    _no_batch(g, node, shape)
    if shape.size and (shape < 0).any() or math.prod(int(s) for s in shape) > MAX_PARAMS:
        raise g._refuse(node, "makes a constant that is too large")
    value = attrs.get("value", np.zeros(1, np.float32)).reshape(-1)
    return [np.full([int(s) for s in shape], value[0], value.dtype)]


def _cast(g: _Graph, node, ins, attrs):
    dtype = np.dtype(g.helper.tensor_dtype_to_np_dtype(attrs["to"]))
    x = ins[0]
    if dtype.kind == "f":
        _no_batch(g, node, x)
        return [x.astype(np.float32)]
    if dtype.kind in "iub":
        return [x.astype(np.int64)]
    raise g._refuse(node, f"casts to {dtype}, which is not supported")


def _split_sizes(g: _Graph, node, ins, attrs, dim: int) -> list[int]:
    if len(ins) > 1 and ins[1] is not None:
        sizes = [int(v) for v in g._const(node, ins[1], "split").reshape(-1)]
    elif "split" in attrs:
        sizes = list(attrs["split"])
    else:
        n = attrs.get("num_outputs", len(node.output))
        size = -(-dim // n)  # ONNX: equal parts, the last one smaller if it must be
        sizes = [min(size, dim - i * size) for i in range(n)]
    if sum(sizes) != dim or min(sizes) < 0:
        raise g._refuse(node, f"splits {dim} into {sizes}")
    return sizes


def _split_const(g: _Graph, node, ins, attrs):
    x, axis = ins[0], attrs.get("axis", 0)
    sizes = _split_sizes(g, node, ins, attrs, x.shape[axis])
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


_FOLD: dict[str, Callable] = {
    "Identity": lambda g, node, ins, attrs: [ins[0]],
    "Shape": lambda g, node, ins, attrs: [np.array(ins[0].shape, np.int64)[slice(attrs.get("start", 0),
                                                                                    attrs.get("end", ins[0].ndim))]],
    "Gather": lambda g, node, ins, attrs: [np.take(ins[0], ins[1], axis=attrs.get("axis", 0))],
    "Concat": lambda g, node, ins, attrs: [np.concatenate([v for v in ins if v is not None], axis=attrs["axis"])],
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Reshape": _reshape_const,
    "Transpose": lambda g, node, ins, attrs: [np.transpose(ins[0], attrs.get("perm"))],
    "Cast": _cast,
    "ConstantOfShape": _constant_of_shape,
    "Split": _split_const,
    "Add": _arith(np.add),
    "Sub": _arith(np.subtract),
    "Mul": _arith(np.multiply),
    "Div": _arith(_divide),
    "Mod": _mod,
    "Neg": lambda g, node, ins, attrs: (_no_batch(g, node, ins[0]), [np.negative(ins[0])])[1],
}


# --- layers -----------------------------------------------------------------------------------


def _then(act: _Act, step: _Step) -> _Act:
    return _Act((*act.steps, replace(step, in_shape=act.shape)), step.layer.output_shape(act.shape))


def _scalar(value: np.ndarray) -> float | None:
    return float(value.reshape(-1)[0]) if value.dtype.kind == "f" and value.size == 1 else None


def _affine(act: _Act, scale: float, shift: float) -> _Act:
    """act * scale + shift, merged with an affine layer just before it; dropped if it does nothing."""
    steps = act.steps
    if steps and steps[-1].layer.op == "affine":
        last = steps[-1].layer
        scale, shift, steps = scale * last.scale, scale * last.shift + shift, steps[:-1]
    if scale == 1.0 and shift == 0.0:
        return _Act(steps, act.shape)
    return _Act((*steps, _Step(Layer("affine", scale=scale, shift=shift), in_shape=act.shape)), act.shape)


def _gemm(g: _Graph, node, act: _Act, ins, attrs):
    if ins[0] is not act or len(act.shape) != 1 or attrs.get("transA", 0):
        raise g._refuse(node, "must take the (batch, features) tensor as its first input, untransposed")
    w = g._const(node, ins[1], "weight")
    if w.ndim != 2:
        raise g._refuse(node, f"has a weight of shape {list(w.shape)}, not a matrix")
    w = w if attrs.get("transB", 0) else w.T  # (out, in), as nn.Linear
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        w = (w * np.float32(alpha)).astype(np.float32)
    out = w.shape[0]
    bias = np.zeros(out, np.float32)
    if len(ins) > 2 and ins[2] is not None:
        c = g._const(node, ins[2], "bias")
        if c.size not in (1, out) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            raise g._refuse(node, f"adds a bias of shape {list(c.shape)}, not one of {out} numbers")
        bias = np.broadcast_to(c.reshape(-1), (out,)).astype(np.float32)
        if beta != 1.0:
            bias = (bias * np.float32(beta)).astype(np.float32)
    return [_linear(g, node, act, np.ascontiguousarray(w), bias.copy())]


def _linear(g: _Graph, node, act: _Act, w: np.ndarray, bias: np.ndarray) -> _Act:
    if act.shape != (w.shape[1],):
        raise g._refuse(node, f"takes {w.shape[1]} numbers per image but gets shape {list(act.shape)}")
    return _then(act, _Step(Layer("linear", w.shape[1], w.shape[0]), w, bias))


def _matmul(g: _Graph, node, act: _Act, ins, attrs):
    if ins[0] is not act or len(act.shape) != 1:
        raise g._refuse(node, "must multiply the (batch, features) tensor by a constant matrix on its right")
    w = g._const(node, ins[1], "weight")
    if w.ndim != 2:
        raise g._refuse(node, f"multiplies by a constant of shape {list(w.shape)}, not a matrix")
    return [_linear(g, node, act, np.ascontiguousarray(w.T), np.zeros(w.shape[1], np.float32))]


def _bias_of(act: _Act, c: np.ndarray) -> np.ndarray | None:
    """`c` as a bias of the layer that made `act` (per feature, or per channel of a convolution), or None."""
    if not act.steps or act.steps[-1].layer.op not in _PARAMETRISED or c.dtype.kind != "f":
        return None
    n = act.shape[0]
    wanted = [(n,), (1, n)] if len(act.shape) == 1 else [(n, 1, 1), (1, n, 1, 1)]
    return c.reshape(n) if tuple(c.shape) in wanted else None


def _add_sub(sign: float):
    def layer(g: _Graph, node, act: _Act, ins, attrs):
        act_first = ins[0] is act
        c = g._const(node, ins[1] if act_first else ins[0], "other operand")
        value = _scalar(c)
        if value is not None:  # act + c, act - c, c + act, c - act
            return [_affine(act, 1.0 if act_first or sign > 0 else -1.0, value * (sign if act_first else 1.0))]
        bias = _bias_of(act, c)
        if bias is None or (not act_first and sign < 0):
            raise g._refuse(node, f"combines the tensor with a constant of shape {list(c.shape)}; vaeviz takes a "
                                  "scalar, or a bias added straight after a linear or convolution layer")
        last = act.steps[-1]
        new_bias = (last.bias + np.float32(sign) * bias).astype(np.float32)
        return [_Act((*act.steps[:-1], replace(last, bias=new_bias)), act.shape)]
    return layer


def _mul_div(divide: bool):
    def layer(g: _Graph, node, act: _Act, ins, attrs):
        act_first = ins[0] is act
        c = g._const(node, ins[1] if act_first else ins[0], "other operand")
        value = _scalar(c)
        if value is None or (divide and not act_first) or (divide and value == 0.0):
            raise g._refuse(node, f"{'divides' if divide else 'multiplies'} by a constant of shape {list(c.shape)}"
                                  f"{' (or divides a constant by the tensor)' if divide else ''}; vaeviz takes "
                                  "a scalar, nonzero for a division")
        return [_affine(act, 1.0 / value if divide else value, 0.0)]
    return layer


def _element(op: str):
    def layer(g: _Graph, node, act: _Act, ins, attrs):
        if op == "leaky_relu":
            return [_then(act, _Step(Layer(op, slope=float(attrs.get("alpha", 0.01)))))]
        return [_then(act, _Step(Layer(op)))]
    return layer


def _reshape_layer(act: _Act, shape: Shape) -> _Act:
    """`act` reshaped per image; two reshapes in a row become one, and one that changes nothing none."""
    if act.steps and act.steps[-1].layer.op == "reshape":
        act = _Act(act.steps[:-1], act.steps[-1].in_shape)
    if tuple(shape) == act.shape:
        return act
    return _then(act, _Step(Layer("reshape", shape=tuple(shape))))


def _flatten(g: _Graph, node, act: _Act, ins, attrs):
    rank = 1 + len(act.shape)
    axis = attrs.get("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if axis != 1:
        raise g._refuse(node, f"flattens from axis {attrs.get('axis', 1)}; vaeviz keeps the batch, so only axis 1")
    return [_reshape_layer(act, (math.prod(act.shape),))]


def _reshape(g: _Graph, node, act: _Act, ins, attrs):
    if ins[0] is not act:
        raise g._refuse(node, "must reshape the computed tensor to a constant shape")
    target = [int(v) for v in g._const(node, ins[1], "shape").reshape(-1)]
    full = [BATCH, *act.shape]
    if not attrs.get("allowzero", 0):
        target = [full[i] if v == 0 and i < len(full) else v for i, v in enumerate(target)]
    if not target:
        raise g._refuse(node, "reshapes to a scalar")
    first, rest = target[0], target[1:]
    keeps_batch = first == BATCH or (g.batch is not None and first == g.batch) or (first == -1 and -1 not in rest)
    if not keeps_batch or BATCH in rest or not rest:
        raise g._refuse(node, f"reshapes across the batch dimension (to {['batch' if v == BATCH else v for v in target]}),"
                              " which is not supported: keep the batch first, e.g. x.view(-1, C, H, W)")
    size = math.prod(act.shape)
    if rest.count(-1) > 1 or any(v < -1 or v == 0 for v in rest):
        raise g._refuse(node, f"reshapes to {rest} per image")
    if -1 in rest:
        known = math.prod(v for v in rest if v != -1)
        if size % known:
            raise g._refuse(node, f"cannot reshape {size} numbers per image to {rest}")
        rest = [size // known if v == -1 else v for v in rest]
    if math.prod(rest) != size or len(rest) not in (1, 3):
        raise g._refuse(node, f"reshapes {list(act.shape)} per image to {rest}; vaeviz reshapes to (N,) or (C, H, W)")
    return [_reshape_layer(act, tuple(rest))]


def _conv_common(g: _Graph, node, attrs, w: np.ndarray) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    if w.ndim != 4:
        raise g._refuse(node, f"has a weight of shape {list(w.shape)}; vaeviz takes 2-D convolutions of images")
    if attrs.get("group", 1) != 1:
        raise g._refuse(node, f"uses groups={attrs['group']}, which is not supported (only groups=1)")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise g._refuse(node, f"uses dilation {list(attrs['dilations'])}, which is not supported (only 1)")
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise g._refuse(node, f"uses auto_pad={attrs['auto_pad']}; export with explicit padding")
    kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise g._refuse(node, f"says kernel {list(kernel)} but its weight is {list(w.shape[2:])}")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise g._refuse(node, f"pads {pads} unevenly, which is not supported (PyTorch pads both sides alike)")
    strides = tuple(attrs.get("strides", [1, 1]))
    return (int(kernel[0]), int(kernel[1])), (int(strides[0]), int(strides[1])), (int(pads[0]), int(pads[1]))


def _conv(transpose: bool):
    def layer(g: _Graph, node, act: _Act, ins, attrs):
        if ins[0] is not act or len(act.shape) != 3:
            raise g._refuse(node, f"must take a (batch, C, H, W) tensor, not shape {list(act.shape)} per image")
        w = g._const(node, ins[1], "weight")
        kernel, stride, padding = _conv_common(g, node, attrs, w)
        c_in, c_out = (w.shape[0], w.shape[1]) if transpose else (w.shape[1], w.shape[0])
        if act.shape[0] != c_in:
            raise g._refuse(node, f"takes {c_in} channels but gets {act.shape[0]}")
        bias = np.zeros(c_out, np.float32)
        if len(ins) > 2 and ins[2] is not None:
            bias = g._const(node, ins[2], "bias").reshape(-1).astype(np.float32)
            if bias.shape != (c_out,):
                raise g._refuse(node, f"has a bias of {bias.size} numbers for {c_out} channels")
        extra = {}
        if transpose:
            if "output_shape" in attrs:
                raise g._refuse(node, "sets output_shape, which is not supported: give output_padding instead")
            extra["output_padding"] = tuple(int(v) for v in attrs.get("output_padding", [0, 0]))
            if any(p >= s for p, s in zip(extra["output_padding"], stride)):
                raise g._refuse(node, "has an output_padding not smaller than its stride")
        op = "conv_transpose2d" if transpose else "conv2d"
        spec = Layer(op, int(c_in), int(c_out), kernel=kernel, stride=stride, padding=padding, **extra)
        try:
            return [_then(act, _Step(spec, np.ascontiguousarray(w), bias))]
        except ValueError as exc:
            raise g._refuse(node, str(exc)) from None
    return layer


def _feature_axis(g: _Graph, node, act: _Act, axis: int) -> None:
    if len(act.shape) != 1 or axis not in (1, -1):
        raise g._refuse(node, f"splits along axis {axis} of shape {['batch', *act.shape]}; vaeviz takes a split of "
                              "the features (axis 1 of a (batch, features) tensor) into μ and log σ²")


def _split(g: _Graph, node, act: _Act, ins, attrs):
    _feature_axis(g, node, act, attrs.get("axis", 0))
    sizes = _split_sizes(g, node, ins, attrs, act.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [_Act(act.steps, act.shape, (int(a), int(b))) for a, b in zip(starts[:-1], starts[1:])]


def _slice_act(g: _Graph, node, act: _Act, ins, attrs):
    window = (0, act.shape[0]) if len(act.shape) == 1 else None
    for axis, start, end, step in _slice_args(g, node, ins, attrs, 1 + len(act.shape)):
        if axis == 0 and start == 0 and step == 1 and (end >= 2**31 or end == BATCH or end == g.batch):
            continue  # the whole batch
        _feature_axis(g, node, act, axis)
        cut = _bounds(start, end, step, act.shape[0])
        if step != 1 or cut.stop <= cut.start:
            raise g._refuse(node, f"takes features {start}:{end}:{step}; vaeviz takes contiguous halves")
        window = (cut.start, cut.stop)
    if window is None:
        raise g._refuse(node, "slices a (C, H, W) tensor, which is not supported")
    return [_Act(act.steps, act.shape, window)]


_LAYERS: dict[str, Callable] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add_sub(1.0),
    "Sub": _add_sub(-1.0),
    "Mul": _mul_div(False),
    "Div": _mul_div(True),
    "Relu": _element("relu"),
    "LeakyRelu": _element("leaky_relu"),
    "Sigmoid": _element("sigmoid"),
    "Tanh": _element("tanh"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Conv": _conv(False),
    "ConvTranspose": _conv(True),
    "Identity": lambda g, node, act, ins, attrs: [act],
    "Split": _split,
    "Slice": _slice_act,
}


# --- from two graphs to one model -------------------------------------------------------------


def _tidy(in_shape: Shape, steps: list[_Step] | tuple[_Step, ...]) -> tuple[tuple[_Step, ...], Shape]:
    """The steps again from `in_shape`, reshapes in a row merged and those that change nothing dropped."""
    act = _Act((), tuple(in_shape))
    for step in steps:
        act = _reshape_layer(act, step.layer.shape) if step.layer.op == "reshape" else _then(act, step)
    return act.steps, act.shape


def _doubled(step: _Step) -> _Step:
    """A parametrised layer whose outputs are twice as large: exact in floating point (a power of 2)."""
    return replace(step, weight=step.weight * np.float32(2.0), bias=step.bias * np.float32(2.0))


def _decoder_body(g: _Graph) -> tuple[tuple[_Step, ...], Shape, str]:
    """The decoder's layers up to its logits (the output function stripped), the shape they make per image,
    and a note on the head. Reshapes commute with element-wise layers, so the trailing run of element-wise
    layers and reshapes is read as the element-wise layers, then one reshape."""
    outs = g.outputs()
    if len(outs) != 1 or outs[0].window is not None:
        raise _Refused(f"{g.label} has {len(outs)} outputs; a decoder gives one tensor, the image")
    steps = list(outs[0].steps)
    cut = len(steps)
    while cut > 0 and steps[cut - 1].layer.op not in _PARAMETRISED:
        cut -= 1
    body, tail = steps[:cut], steps[cut:]
    act = _Act((), g.in_shape)
    for step in body:
        act = _then(act, step) if step.layer.op != "reshape" else _reshape_layer(act, step.layer.shape)
    out_shape = outs[0].shape
    for step in tail:  # element-wise layers, affine ones merged; the reshapes are applied at the end
        if step.layer.op == "affine":
            act = _affine(act, step.layer.scale, step.layer.shift)
        elif step.layer.op != "reshape":
            act = _then(act, step)
    ops = [s.layer for s in act.steps]
    last = ops[-1] if ops else None
    if last is not None and last.op == "sigmoid":
        kept, note = act.steps[:-1], "its output function, a Sigmoid, was stripped: vaeviz's decoders give logits"
    elif (last is not None and last.op == "affine" and len(ops) > 1 and ops[-2].op == "tanh"
          and math.isclose(last.scale, 0.5, rel_tol=1e-6) and math.isclose(last.shift, 0.5, rel_tol=1e-6)):
        kept = list(act.steps[:-2])
        if kept and kept[-1].layer.op in _PARAMETRISED:
            kept[-1] = _doubled(kept[-1])
            kept = tuple(kept)
        else:
            kept = _affine(_Act(tuple(kept), act.shape), 2.0, 0.0).steps
        note = ("its output (tanh(y) + 1) / 2 is exactly sigmoid(2y): the decoder now gives the logits 2y "
                "(the weights of its last layer doubled, which loses no precision)")
    else:
        raise _Refused(f"{g.label} ends in {last.op if last else 'its input'}: a decoder must end in a Sigmoid, or in "
                       "(tanh(y) + 1) / 2, so that its output is pixel intensities in [0, 1]")
    return _tidy(g.in_shape, [*kept, _Step(Layer("reshape", shape=out_shape))])[0], out_shape, note


def _encoder_body(g: _Graph, kind: str) -> tuple[tuple[_Step, ...], int, str | None]:
    """The encoder's layers, the numbers it gives per image, and a note on how μ and log σ² come out."""
    outs = g.outputs()
    what = ("an AE's encoder gives one tensor, the code" if kind == "ae" else
            "a VAE's encoder gives one tensor (μ and log σ² side by side) or two (μ, then log σ²)")
    if not 1 <= len(outs) <= (1 if kind == "ae" else 2):
        hint = " (μ and log σ²? import it as kind vae)" if kind == "ae" and len(outs) == 2 else ""
        raise _Refused(f"{g.label} has {len(outs)} outputs: {what}{hint}")
    if len(outs) == 1:
        out = outs[0]
        if out.window is not None and out.window != (0, out.shape[0]):
            raise _Refused(f"{g.label}'s output is features {out.window[0]}:{out.window[1]} of its last layer: {what}")
        if len(out.shape) != 1:
            raise _Refused(f"{g.label}'s output has shape {list(out.shape)} per image; an encoder gives (batch, N)")
        return out.steps, out.shape[0], ("μ and log σ² are the two halves of its output" if kind == "vae" else None)
    mu, logvar = outs
    if mu.window is not None and logvar.window is not None and mu.steps is logvar.steps:
        width = mu.shape[0]
        if mu.window != (0, width // 2) or logvar.window != (width // 2, width) or width % 2:
            raise _Refused(f"{g.label} splits its {width} features into {list(mu.window)} and {list(logvar.window)}: "
                           f"μ must be the first half and log σ² the second")
        return mu.steps, width, "its final split into μ and log σ² was folded: vaeviz's VAE splits the output in halves"
    heads = (mu.window is None and logvar.window is None and mu.steps and logvar.steps
             and len(mu.steps) == len(logvar.steps) and all(a is b for a, b in zip(mu.steps[:-1], logvar.steps[:-1]))
             and mu.steps[-1].layer.op == logvar.steps[-1].layer.op == "linear"
             and mu.steps[-1].layer.size_out == logvar.steps[-1].layer.size_out)
    if not heads:
        raise _Refused(f"{g.label}'s two outputs are not μ and log σ² of the same features: {what}, made by a final "
                       "Split (or chunk) of one tensor, or by two linear layers of the same size on the same features")
    a, b = mu.steps[-1], logvar.steps[-1]
    merged = _Step(Layer("linear", a.layer.size_in, 2 * a.layer.size_out), np.concatenate([a.weight, b.weight]),
                   np.concatenate([a.bias, b.bias]), a.in_shape)
    return (*mu.steps[:-1], merged), 2 * a.layer.size_out, \
        "its two linear heads (μ and log σ²) were merged into one layer giving both, side by side"


def _image_shape_of(flat: int, dataset: str | None) -> tuple[int, int, int]:
    """The image shape of a network that takes and gives flat vectors: the data set's, else a guess."""
    if dataset is not None:
        from .data import dataset_spec

        return tuple(dataset_spec(dataset).image_shape)
    side = math.isqrt(flat)
    if side * side == flat:
        return (1, side, side)
    side = math.isqrt(flat // 3)
    if flat % 3 == 0 and side * side == flat // 3:
        return (3, side, side)
    raise ValueError(f"the networks take and give flat vectors of {flat} numbers, which is not a square grey or "
                     "RGB image: say the image shape (--image-shape C,H,W) or the data set (--dataset)")


def _fmt(shape: Shape) -> str:
    return "×".join(str(s) for s in shape)


def import_onnx(encoder: bytes, decoder: bytes, kind: str, *, dataset: str | None = None,
                likelihood: str = "bernoulli", sigma: float = 0.1, image_shape: tuple[int, int, int] | None = None,
                names: tuple[str, str] = ("the encoder", "the decoder")) -> Imported:
    """Read an encoder and a decoder (the bytes of two .onnx files) and make a vaeviz model of `kind`.

    The model's encode and decode compute what the two networks do (the decoder's output function aside,
    which becomes `decode`'s sigmoid); its metadata records the data set and where it came from. `dataset`
    is the data set its pages will encode (default mnist for 1×28×28 images, else required); `likelihood`
    and `sigma` are the decoder's p(x|z) for its losses, as for a trained model. Raises
    ValueError, with a sentence saying what is not supported or which sizes disagree.
    """
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {shown(kind)!r}")
    enc_name, dec_name = names
    enc = _Graph(parse(encoder, enc_name), enc_name)
    dec = _Graph(parse(decoder, dec_name), dec_name)
    dec_steps, dec_out, head_note = _decoder_body(dec)
    enc_steps, width, split_note = _encoder_body(enc, kind)
    latent = math.prod(dec.in_shape)
    if len(dec.in_shape) > 1:  # a DCGAN-style (batch, D, 1, 1) input: reshape the codes first
        if len(dec.in_shape) != 3:
            raise _Refused(f"{dec_name} takes shape {list(dec.in_shape)} per code; it must be (batch, D) or (batch, C, H, W)")
        dec_steps = (_Step(Layer("reshape", shape=dec.in_shape), in_shape=(latent,)), *dec_steps)
    need = latent if kind == "ae" else 2 * latent
    if width != need:
        hint = (" (it gives twice the code: is it a VAE? import it as kind vae)" if kind == "ae" and width == 2 * latent else
                " (is it an AE? import it as kind ae)" if kind == "vae" and width == latent else "")
        raise ValueError(f"{dec_name} takes codes of {latent} numbers and {enc_name} gives {width} per image: "
                         + (f"an AE's encoder must give {latent}" if kind == "ae" else
                            f"a VAE's encoder must give 2 × {latent} = {2 * latent} (μ and log σ²)") + hint)
    shapes = {name: s for name, s in ((enc_name, enc.in_shape), (dec_name, dec_out)) if len(s) == 3}
    if image_shape is not None:
        shape = tuple(image_shape)
    elif shapes:
        shape = next(iter(shapes.values()))
    else:
        shape = _image_shape_of(math.prod(enc.in_shape), dataset)
    for name, s in ((enc_name, enc.in_shape), (dec_name, dec_out)):
        if len(s) not in (1, 3):
            raise _Refused(f"{name} works on shape {list(s)} per image; vaeviz takes (C, H, W) or flat (C·H·W) images")
        if (len(s) == 3 and s != shape) or math.prod(s) != math.prod(shape):
            raise ValueError(f"{name} {'takes' if name == enc_name else 'makes'} images of {_fmt(s)} "
                             f"({math.prod(s)} numbers) but the images are {_fmt(shape)} ({math.prod(shape)})")
    dataset = _dataset_for(shape, dataset)
    enc_steps, _ = _tidy(shape, [_Step(Layer("reshape", shape=enc.in_shape)), *enc_steps])
    dec_steps, _ = _tidy((latent,), [*dec_steps, _Step(Layer("reshape", shape=shape))])
    network = Network(tuple(s.layer for s in enc_steps), tuple(s.layer for s in dec_steps))
    cfg = ModelConfig(arch="graph", latent_dim=latent, channels=shape[0], height=shape[1], width=shape[2],
                      likelihood=likelihood, sigma=sigma, network=network.to_text())
    model = build_model(kind, cfg)
    _load_weights(model.encoder, enc_steps)
    _load_weights(model.decoder, dec_steps)
    model.eval()
    source = f"ONNX: {shown(enc_name, 80)} + {shown(dec_name, 80)} ({shown(enc.producer, 60)})"
    model.meta = replace(model.meta, dataset=dataset, imported=source)
    notes = [f"{enc_name}: {enc.batch_note}", f"{dec_name}: {dec.batch_note}", f"{dec_name}: {head_note}"]
    if split_note:
        notes.append(f"{enc_name}: {split_note}")
    if len(enc.in_shape) == 1:
        notes.append(f"{enc_name} takes flat images: vaeviz flattens its {_fmt(shape)} images first")
    return Imported(model, tuple(notes))


def _dataset_for(shape: tuple[int, ...], dataset: str | None) -> str:
    from .data import dataset_spec

    if dataset is None:
        if tuple(shape) != (1, 28, 28):
            raise ValueError(f"its images are {_fmt(shape)}: say which data set its pages should encode (--dataset)")
        dataset = "mnist"
    spec_shape = tuple(dataset_spec(dataset).image_shape)
    if spec_shape != tuple(shape):
        raise ValueError(f"{shown(dataset)} images are {_fmt(spec_shape)}, but the networks' are {_fmt(shape)}")
    return dataset


def _load_weights(seq: nn.Sequential, steps: tuple[_Step, ...]) -> None:
    """Copy the steps' weights into the parametrised modules, in order, shape by shape."""
    modules = [m for m in seq if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    weighted = [s for s in steps if s.layer.op in _PARAMETRISED]
    if len(modules) != len(weighted):
        raise RuntimeError("the built network does not match its layers")  # a bug here, not a user's file
    with torch.no_grad():
        for module, step in zip(modules, weighted):
            for param, array in ((module.weight, step.weight), (module.bias, step.bias)):
                if tuple(param.shape) != array.shape:
                    raise RuntimeError(f"weight shape {array.shape} for a parameter of {tuple(param.shape)}")
                param.copy_(torch.from_numpy(np.ascontiguousarray(array, np.float32)))


def import_files(encoder: str | os.PathLike, decoder: str | os.PathLike, kind: str, **options: Any) -> Imported:
    """`import_onnx` on two files (each refused before reading if it is not a file or is too large)."""
    return import_onnx(read_file(encoder), read_file(decoder), kind,
                       names=(Path(encoder).name, Path(decoder).name), **options)
