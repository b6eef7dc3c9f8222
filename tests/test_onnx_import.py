"""Importing a person's own encoder and decoder from ONNX (vaeviz.onnx_import, `vaeviz import-onnx`).

The networks are made and exported here, with both of PyTorch's exporters, in shapes and layers vaeviz
never made (tests/support/onnx_models.py); the imported model must encode and decode as the original
modules do (within 1e-5), through a saved checkpoint too, and in the browser's format. What it cannot
convert (another operator, a dynamic image size, external weights, a branching graph, an output outside
[0, 1], sizes that disagree) and files that are not ONNX at all are refused with one readable message.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from vaeviz import ModelConfig, load_checkpoint, save_checkpoint, webdecoder
from vaeviz.__main__ import main
from vaeviz.checkpoint import SHIPPED_DIR, checkpoint_bytes
from vaeviz.netspec import MAX_PARAMS
from vaeviz.onnx_import import import_onnx

from .support.onnx_models import (EXPORTERS, TOLERANCE, ConvEncoder, ConvTanhDecoder, MixedDecoder, MlpDecoder,
                                  MlpEncoder, export, exported_pair, max_differences, seeded)

ROOT = SHIPPED_DIR.parent


def _ops(data: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(data).graph.node]


def _spec_difference(model) -> float:
    spec = webdecoder.decoder_spec(model)
    z = 2 * np.random.default_rng(3).standard_normal((32, model.cfg.latent_dim)).astype(np.float32)
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(z)).numpy()
    return float(np.abs(webdecoder.forward(spec, z) - expected).max())


# --- what converts, and computes what the original does ---------------------------------------


@pytest.mark.parametrize("dynamic_batch", [False, True], ids=["fixed-batch", "dynamic-batch"])
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_mlp_vae_with_leaky_relu_and_chunk(tmp_path, exporter, dynamic_batch):
    encoder, decoder = seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 1)
    enc, dec = exported_pair(encoder, decoder, tmp_path, exporter, dynamic_batch=dynamic_batch)
    # What .chunk(2, dim=1) exports to: two Slices (TorchScript) or one Split (torch.export); both are read.
    assert ("Split" if exporter == "dynamo" else "Slice") in _ops(enc)
    imported = import_onnx(enc, dec, "vae", names=("enc.onnx", "dec.onnx"))
    model = imported.model
    assert (model.kind, model.cfg.arch, model.cfg.latent_dim, model.cfg.image_shape) == ("vae", "graph", 8, (1, 28, 28))
    assert any(("dynamic" if dynamic_batch else "fixed at 2") in note for note in imported.notes)
    codes, images = max_differences(model, encoder, decoder, 8)
    print(f"mlp vae, {exporter}, {'dynamic' if dynamic_batch else 'fixed'} batch: codes {codes:.1e}, images {images:.1e}")
    assert codes <= TOLERANCE and images <= TOLERANCE

    path = save_checkpoint(model, tmp_path / "mine.safetensors")  # the checkpoint loads back as any other
    loaded = load_checkpoint(path)
    assert loaded.meta.dataset == "mnist" and "ONNX: enc.onnx + dec.onnx" in loaded.meta.imported
    assert loaded.cfg == model.cfg
    assert max(max_differences(loaded, encoder, decoder, 8)) <= TOLERANCE


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_conv_vae_with_two_heads_and_a_tanh_decoder(tmp_path, exporter):
    encoder, decoder = seeded(ConvEncoder(), 5), seeded(ConvTanhDecoder(), 6)
    enc, dec = exported_pair(encoder, decoder, tmp_path, exporter)
    assert _ops(dec).count("ConvTranspose") == 3 and "Tanh" in _ops(dec)
    imported = import_onnx(enc, dec, "vae")
    model = imported.model
    codes, images = max_differences(model, encoder, decoder, 6)
    print(f"conv vae (tanh head), {exporter}: codes {codes:.1e}, images {images:.1e}")
    assert codes <= TOLERANCE and images <= TOLERANCE
    layers = json.loads(model.cfg.network)
    assert [layer["op"] for layer in layers["decoder"]].count("conv_transpose2d") == 3
    assert layers["decoder"][-1]["op"] == "conv_transpose2d"  # (tanh + 1) / 2 became the logits 2y
    assert any("merged" in note for note in imported.notes) and any("sigmoid(2y)" in note for note in imported.notes)


def test_hand_written_ops_and_flat_images(tmp_path):
    """MatMul + Add, scalar Mul/Sub at the input, flat (B, 784) inputs and outputs, 0.5 * tanh + 0.5."""

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.b = nn.Parameter(torch.randn(784, 5) / 28), nn.Parameter(torch.randn(5))

        def forward(self, x):
            return torch.relu((x * 2 - 1) @ self.w + self.b)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.b = nn.Parameter(torch.randn(5, 784)), nn.Parameter(torch.randn(784))

        def forward(self, z):
            return 0.5 * torch.tanh(z @ self.w + self.b) + 0.5

    encoder, decoder = Encoder().eval(), Decoder().eval()
    enc = export(encoder, torch.rand(2, 784), tmp_path / "enc.onnx", "legacy")
    dec = export(decoder, torch.randn(2, 5), tmp_path / "dec.onnx", "legacy")
    assert "MatMul" in _ops(enc) and "Gemm" not in _ops(enc)
    model = import_onnx(enc, dec, "ae").model
    assert model.cfg.image_shape == (1, 28, 28)  # 784 flat numbers: MNIST's shape
    x, z = torch.rand(8, 1, 28, 28), torch.randn(8, 5)
    with torch.no_grad():
        assert float((model.encode(x)[0] - encoder(x.flatten(1))).abs().max()) <= TOLERANCE
        assert float((model.decode(z).flatten(1) - decoder(z)).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_imported_decoder_runs_in_the_browser_format(tmp_path, exporter):
    for enc_net, dec_net in ((MlpEncoder(), MlpDecoder()), (ConvEncoder(), ConvTanhDecoder()), (ConvEncoder(), MixedDecoder())):
        model = import_onnx(*exported_pair(seeded(enc_net, 7), seeded(dec_net, 8), tmp_path, exporter), "vae").model
        diff = _spec_difference(model)
        print(f"{type(dec_net).__name__}, {exporter}: max |numpy spec - decode| = {diff:.1e}")
        assert diff <= TOLERANCE
    kinds = [layer["type"] for layer in webdecoder.decoder_spec(model)["layers"]]
    assert {"leaky_relu", "tanh", "affine", "conv_transpose2d"} <= set(kinds)


def test_an_ae_with_a_code_of_its_own_size(tmp_path):
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 40), nn.ReLU(), nn.Linear(40, 3)).eval()
    decoder = nn.Sequential(nn.Linear(3, 40), nn.ReLU(), nn.Linear(40, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
    enc, dec = exported_pair(encoder, decoder.eval(), tmp_path, "dynamo")
    model = import_onnx(enc, dec, "ae").model
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        code, logvar = model.encode(x)
        assert logvar is None and float((code - encoder(x)).abs().max()) <= TOLERANCE
        assert float((model.decode(code) - decoder(code)).abs().max()) <= TOLERANCE


def test_a_dcgan_style_decoder_and_a_conv2d_the_browser_does_not_run(tmp_path):
    """Codes as (B, D, 1, 1), and a Conv2d in the decoder: it imports and decodes as the original; the browser
    declines it with a reason (the pages then decode on the server)."""
    decoder = nn.Sequential(nn.ConvTranspose2d(6, 8, 7), nn.ReLU(), nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),
                            nn.ReLU(), nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), nn.ReLU(),
                            nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    decoder = seeded(decoder, 9)
    encoder = seeded(ConvEncoder(), 10)
    enc = export(encoder, torch.rand(2, 1, 28, 28), tmp_path / "enc.onnx", "dynamo")
    dec = export(decoder, torch.randn(2, 6, 1, 1), tmp_path / "dec.onnx", "dynamo")
    model = import_onnx(enc, dec, "vae").model
    assert model.cfg.latent_dim == 6
    z = torch.randn(5, 6)
    with torch.no_grad():
        assert float((model.decode(z) - decoder(z[:, :, None, None])).abs().max()) <= TOLERANCE
    spec, reason = webdecoder.runnable(model)
    assert spec is None and "Conv2d" in reason


# --- what is refused, and how -----------------------------------------------------------------


@pytest.mark.parametrize("layer, exporter, op", [
    (nn.GELU(), "legacy", "Gelu"),
    (nn.GELU(), "dynamo", "Gelu"),
    (nn.Softplus(), "dynamo", "Softplus"),
    (nn.BatchNorm1d(32), "legacy", "BatchNormalization"),  # torch.export folds it into the Gemm instead
])
def test_an_unsupported_operator_is_named(tmp_path, layer, exporter, op):
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), layer, nn.Linear(32, 8))
    _, dec = exported_pair(seeded(MlpEncoder(4), 0), seeded(MlpDecoder(4), 0), tmp_path, exporter)
    enc = export(encoder.eval(), torch.rand(2, 1, 28, 28), tmp_path / "bad.onnx", exporter)
    with pytest.raises(ValueError, match=f"the {op} operator .*is not supported") as err:
        import_onnx(enc, dec, "vae", names=("bad.onnx", "dec.onnx"))
    assert "bad.onnx" in str(err.value) and "\n" not in str(err.value)


def test_a_dynamic_image_size_is_refused_and_a_dynamic_batch_is_not(tmp_path):
    _, dec = exported_pair(seeded(MlpEncoder(4), 0), seeded(MlpDecoder(4), 0), tmp_path, "legacy")
    encoder = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 28 * 28, 8)).eval()
    axes = {"x": {0: "batch", 2: "height", 3: "width"}}
    enc = export(encoder, torch.rand(2, 1, 28, 28), tmp_path / "e.onnx", "legacy", input_names=["x"], dynamic_axes=axes)
    with pytest.raises(ValueError, match=r"dynamic size in dimension 2 \(height\).*only the batch"):
        import_onnx(enc, dec, "vae")


def test_external_weights_are_refused(tmp_path):
    _, dec = exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 0), tmp_path, "legacy")
    enc = export(seeded(MlpEncoder(), 0), torch.rand(2, 1, 28, 28), tmp_path / "ext.onnx", "dynamo", external_data=True)
    assert (tmp_path / "ext.onnx.data").is_file()  # torch.export writes the weights beside the graph by default
    with pytest.raises(ValueError, match="external file.*external_data=False"):
        import_onnx(enc, dec, "vae")


@pytest.mark.parametrize("cut", ["empty", "junk", "a checkpoint", 0.5, 0.9, "all but 3 bytes"])
def test_malformed_or_truncated_files_are_refused(tmp_path, cut):
    enc, dec = exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 0), tmp_path, "legacy")
    bad = {"empty": b"", "junk": b"not an onnx file at all\n" * 40,
           "a checkpoint": (SHIPPED_DIR / "mnist-vae-mlp-16.safetensors").read_bytes()[:200_000],
           "all but 3 bytes": enc[:-3]}.get(cut) if isinstance(cut, str) else enc[: int(len(enc) * cut)]
    with pytest.raises(ValueError, match="enc.onnx (is empty|is not an ONNX model|is not a valid ONNX model|.*truncated)"):
        import_onnx(bad, dec, "vae", names=("enc.onnx", "dec.onnx"))


def test_sizes_that_disagree_say_which_numbers(tmp_path):
    enc8, dec8 = exported_pair(seeded(MlpEncoder(8), 0), seeded(MlpDecoder(8), 0), tmp_path, "legacy")
    (tmp_path / "five").mkdir()
    _, dec5 = exported_pair(seeded(MlpEncoder(5), 0), seeded(MlpDecoder(5), 0), tmp_path / "five", "legacy")
    with pytest.raises(ValueError, match=r"takes codes of 5 numbers and .* gives 16 .* 2 × 5 = 10"):
        import_onnx(enc8, dec5, "vae")
    with pytest.raises(ValueError, match="has 2 outputs: an AE's .*import it as kind vae"):
        import_onnx(enc8, dec8, "ae")
    one_output = export(seeded(MlpEncoder(8), 0).net, torch.rand(2, 1, 28, 28), tmp_path / "one.onnx", "legacy")
    with pytest.raises(ValueError, match="gives 16 per image: an AE's encoder must give 8 .*is it a VAE"):
        import_onnx(one_output, dec8, "ae")
    rgb = nn.Sequential(nn.Linear(8, 3 * 32 * 32), nn.Sigmoid(), nn.Unflatten(1, (3, 32, 32))).eval()
    dec_rgb = export(rgb, torch.randn(2, 8), tmp_path / "rgb.onnx", "legacy")
    with pytest.raises(ValueError, match=r"takes images of 1×28×28 \(784 numbers\) .* 3×32×32|makes images of 3×32×32"):
        import_onnx(enc8, dec_rgb, "vae")


@pytest.mark.parametrize("head", ["none", "relu", "tanh"])
def test_a_decoder_must_end_in_an_output_in_0_1(tmp_path, head):
    enc, _ = exported_pair(seeded(MlpEncoder(4), 0), seeded(MlpDecoder(4), 0), tmp_path, "legacy")
    ends = {"none": [], "relu": [nn.ReLU()], "tanh": [nn.Tanh()]}[head]  # tanh alone is in [-1, 1]
    dec = export(nn.Sequential(nn.Linear(4, 784), *ends).eval(), torch.randn(2, 4), tmp_path / "d.onnx", "legacy")
    with pytest.raises(ValueError, match=r"must end in a Sigmoid, or in \(tanh\(y\) \+ 1\) / 2"):
        import_onnx(enc, dec, "vae")


def test_a_branching_graph_is_refused(tmp_path):
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(784, 784), nn.Linear(784, 8)

        def forward(self, x):
            h = x.flatten(1)
            return self.b(h + torch.relu(self.a(h)))

    _, dec = exported_pair(seeded(MlpEncoder(4), 0), seeded(MlpDecoder(4), 0), tmp_path, "dynamo")
    enc = export(Skip(), torch.rand(2, 1, 28, 28), tmp_path / "skip.onnx", "dynamo")
    with pytest.raises(ValueError, match="combines two computed tensors"):
        import_onnx(enc, dec, "vae")


def test_damaged_graphs_are_refused_or_read_as_onnx_itself_runs_them(tmp_path):
    """120 seeded mutations of an exported encoder (operators swapped, inputs rewired or dropped, attributes
    changed): each is refused with a ValueError, or imports and encodes as onnx's own reference evaluator
    (a pure-NumPy interpreter of the graph, used here as the trusted reference) runs the damaged graph."""
    import copy
    import random

    from onnx.reference import ReferenceEvaluator

    enc, dec = exported_pair(seeded(MlpEncoder(4), 0), seeded(MlpDecoder(4), 1), tmp_path, "legacy")
    original = onnx.load_from_string(enc)
    ops = ["Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Reshape", "Flatten", "Slice", "Split", "Gather",
           "Concat", "Shape", "Unsqueeze", "Squeeze", "Cast", "Identity", "Conv", "Constant", "Mod", "Transpose"]
    rng, outcomes = random.Random(0), {"refused": 0, "agrees": 0}
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    for _ in range(120):
        graph = copy.deepcopy(original)
        nodes = graph.graph.node
        for _ in range(rng.randint(1, 3)):
            node = nodes[rng.randrange(len(nodes))]
            what = rng.random()
            if what < 0.4:
                node.op_type = rng.choice(ops)
            elif what < 0.6 and node.input:
                node.input[rng.randrange(len(node.input))] = rng.choice([o for n in nodes for o in n.output] + [""])
            elif what < 0.8 and len(node.input) > 1:
                del node.input[-1]
            else:
                for attr in node.attribute:
                    if attr.type == onnx.AttributeProto.INT:
                        attr.i = rng.choice([-3, -1, 0, 1, 2, 5, 2**40])
        try:
            model = import_onnx(graph.SerializeToString(), dec, "vae").model
        except ValueError:
            outcomes["refused"] += 1
            continue
        want = np.concatenate([np.asarray(r).reshape(3, -1)
                               for r in ReferenceEvaluator(graph).run(None, {graph.graph.input[0].name: x})], 1)
        with torch.no_grad():
            got = torch.cat(model.encode(torch.from_numpy(x)), 1).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() <= TOLERANCE
        outcomes["agrees"] += 1
    print(outcomes)
    assert outcomes["refused"] > 30 and outcomes["agrees"] > 10  # both kinds of damage were met


# --- the network in the config: checked before anything is built ------------------------------


def _network(decoder: list[dict], encoder: list[dict] | None = None) -> str:
    encoder = encoder or [{"op": "reshape", "shape": [4]}, {"op": "linear", "in": 4, "out": 2}]
    return json.dumps({"encoder": encoder, "decoder": decoder})


@pytest.mark.parametrize("decoder, message", [
    ([{"op": "linear", "in": 2, "out": 4}, {"op": "gelu"}, {"op": "reshape", "shape": [1, 2, 2]}], "unknown op 'gelu'"),
    ([{"op": "linear", "in": 2, "out": 60_000}, {"op": "linear", "in": 60_000, "out": 60_000}], "weights; the limit"),
    ([{"op": "linear", "in": 2, "out": 4, "bias": False}], "unexpected bias"),
    ([{"op": "linear", "in": 2, "out": 4.0}], "must be a whole number"),
    ([{"op": "linear", "in": 3, "out": 4}], "takes 3 numbers per image, not shape \\[2\\]"),
    ([{"op": "linear", "in": 2, "out": 8}, {"op": "reshape", "shape": [8, 1, 1]},
      {"op": "conv_transpose2d", "in": 8, "out": 1200, "kernel": [31, 31], "stride": [31, 31], "padding": [0, 0],
       "output_padding": [0, 0]}], "numbers per image"),
    ([{"op": "linear", "in": 2, "out": 5}], "decoder makes shape \\[5\\]"),
])
def test_a_hostile_network_is_refused_before_anything_is_built(decoder, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(arch="graph", latent_dim=2, channels=1, height=2, width=2, network=_network(decoder))


def test_a_network_belongs_to_the_graph_architecture_only():
    with pytest.raises(ValueError, match="only the graph architecture"):
        ModelConfig(arch="mlp", network=_network([]))
    with pytest.raises(ValueError, match="needs its network"):
        ModelConfig(arch="graph")
    assert "network" not in ModelConfig().to_dict()  # other checkpoints' headers are as before


@pytest.mark.parametrize("edit, message", [
    ((['"in":784,"out":512', '"in":784,"out":256'], ['"in":512,"out":16', '"in":256,"out":16']),
     "its tensors do not match its model config"),  # a coherent network, but not these weights
    ((['{"op":"relu"}', '{"op":"gelu"}'],), "invalid model config: .*unknown op 'gelu'"),
    ((['"in":784,"out":512', '"in":784,"out":60000'], ['"in":512,"out":16', '"in":60000,"out":16'],
      ['"in":8,"out":512', '"in":8,"out":60000'], ['"in":512,"out":784', '"in":60000,"out":784']),
     "weights; the limit is 16,000,000"),
])
def test_a_tampered_checkpoint_network_is_refused_on_load(tmp_path, edit, message):
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 16))
    decoder = nn.Sequential(nn.Linear(8, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())
    model = import_onnx(*exported_pair(encoder.eval(), decoder.eval(), tmp_path, "legacy"), "vae").model
    data = checkpoint_bytes(model)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    config = json.loads(header["__metadata__"]["config"])
    for old, new in edit:
        assert old in config["network"]
        config["network"] = config["network"].replace(old, new)
    header["__metadata__"]["config"] = json.dumps(config)
    raw = json.dumps(header).encode()
    with pytest.raises(ValueError, match=message):
        load_checkpoint(len(raw).to_bytes(8, "little") + raw + data[8 + n :])
    assert MAX_PARAMS * 4 <= 64 * 2**20  # any network within the budget fits in a checkpoint file


# --- the command line -------------------------------------------------------------------------


def test_cli_imports_measures_and_saves(tmp_path, data_root, capsys):
    enc, dec = exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 0), tmp_path, "dynamo")
    out = tmp_path / "mine.safetensors"
    code = main(["import-onnx", "--encoder", str(tmp_path / "enc-dynamo.onnx"), "--decoder",
                 str(tmp_path / "dec-dynamo.onnx"), "--kind", "vae", "--out", str(out), "--data-dir", str(data_root),
                 "--test-limit", "200"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.splitlines()[-1])
    assert (result["kind"], result["arch"], result["latent_dim"], result["dataset"]) == ("vae", "graph", 8, "mnist")
    assert result["test"]["n_images"] == 200 and math.isfinite(result["test"]["neg_elbo"])
    model = load_checkpoint(out)
    assert model.meta.metrics.n_images == 200 and model.meta.imported.startswith("ONNX: enc-dynamo.onnx")


@pytest.mark.parametrize("problem", ["truncated", "unsupported", "missing"])
def test_cli_refuses_with_one_line_and_no_traceback(tmp_path, problem):
    enc, dec = exported_pair(seeded(MlpEncoder(), 0), seeded(MlpDecoder(), 0), tmp_path, "legacy")
    bad = tmp_path / "bad.onnx"
    if problem == "truncated":
        bad.write_bytes(enc[: len(enc) // 3])
    elif problem == "unsupported":
        export(nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.GELU()).eval(), torch.rand(2, 1, 28, 28), bad, "legacy")
    proc = subprocess.run([sys.executable, "-m", "vaeviz", "import-onnx", "--encoder", str(bad), "--decoder",
                           str(tmp_path / "dec-legacy.onnx"), "--kind", "vae", "--out", str(tmp_path / "x.safetensors"),
                           "--no-eval"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert {"truncated": "not an ONNX model", "unsupported": "Gelu", "missing": "no such ONNX file"}[problem] in lines[0]
    assert not (tmp_path / "x.safetensors").exists()
