"""digitlens.modelfile: export agrees with torch, loading needs no torch, and unsafe or foreign files are refused."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from digitlens import __version__, modelfile, nets  # noqa: E402
from digitlens.modelfile import ModelError, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIGITS = [str(d) for d in range(10)]
TRAIN_CONFIG = {"arch": "lens", "epochs": 1, "seed": 0}


def props(class_list=None, **overrides) -> dict[str, str]:
    """Our metadata for class_list; overrides replace raw metadata values (strings, as stored)."""
    p = modelfile.metadata_props("lens", class_list or DIGITS + ["none"], {"mnist_test": 0.99}, TRAIN_CONFIG, "f" * 64,
                                 extra={"temperature": 1.5})
    for key, value in overrides.items():
        p[modelfile.PREFIX + key] = value
    return p


def random_lensnet(seed: int = 0) -> torch.nn.Module:
    """LensNet with random weights and random batch-norm statistics, so BN is not the identity."""
    torch.manual_seed(seed)
    net = nets.LensNet(11)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def crops(n: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):  # a random bright stroke-ish blob on black, plus noise
        r, c = rng.integers(6, 22, 2)
        x[i, r - 4:r + 4, c - 2:c + 2] = 255
        x[i] = np.maximum(x[i], rng.integers(0, 40, (28, 28)).astype(np.uint8))
    return x


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    net = random_lensnet()
    path = modelfile.export_onnx(net, d / "lens.onnx", props())
    x = crops()
    with torch.no_grad():
        expected = net(torch.from_numpy(x).float().div(255).unsqueeze(1)).numpy()
    return {"path": path, "bytes": path.read_bytes(), "crops": x, "expected": expected}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ---------------------------------------------------------------- export and load

def test_onnx_matches_torch_and_metadata_round_trips(exported):
    model = load_model(exported["path"])
    np.testing.assert_allclose(model.logits(exported["crops"]), exported["expected"], atol=1e-4, rtol=0)
    # float crops in 0..1 are the same images
    np.testing.assert_allclose(model.logits(exported["crops"].astype(np.float32) / 255), exported["expected"],
                               atol=1e-4, rtol=0)
    assert model.logits(np.zeros((0, 28, 28), np.uint8)).shape == (0, 11)
    assert model.classes == tuple(DIGITS + ["none"])
    assert model.metadata["arch"] == "lens"
    assert model.metadata["train_config"] == TRAIN_CONFIG
    assert model.metadata["mnist_test_accuracy"] == {"mnist_test": 0.99}
    assert model.metadata["version"] == __version__
    assert model.metadata["extra"] == {"temperature": 1.5}
    assert model.sha256 == hashlib.sha256(exported["bytes"]).hexdigest()
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        model.logits(np.zeros((2, 32, 32), np.uint8))


def test_seednet_exports_with_ten_classes(tmp_path):
    torch.manual_seed(1)
    net = nets.SeedNet(10).eval()
    path = modelfile.export_onnx(net, tmp_path / "seed.onnx", props(class_list=DIGITS))
    x = crops(8, seed=1)
    with torch.no_grad():
        expected = net(torch.from_numpy(x).float().div(255).unsqueeze(1)).numpy()
    model = load_model(path)
    assert model.classes == tuple(DIGITS)
    np.testing.assert_allclose(model.logits(x), expected, atol=1e-4, rtol=0)


def test_load_model_needs_neither_torch_nor_onnx(exported, tmp_path):
    np.save(tmp_path / "crops.npy", exported["crops"])
    code = f"""
import sys
sys.modules['torch'] = None  # any 'import torch' now raises ImportError
sys.modules['onnx'] = None
import numpy as np
from digitlens.modelfile import load_model
model = load_model({str(exported['path'])!r})
np.save({str(tmp_path / 'out.npy')!r}, model.logits(np.load({str(tmp_path / 'crops.npy')!r})))
loaded = [m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in ('torch', 'onnx')]
assert not loaded, loaded
print(model.metadata['arch'])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "lens"
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), exported["expected"], atol=1e-4, rtol=0)


# ---------------------------------------------------------------- tampering

@pytest.mark.parametrize("keep", [0, 10, 200, 0.5, -200, -1])
def test_truncated_file_is_refused(exported, tmp_path, keep):
    data = exported["bytes"]
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    path = write(tmp_path, "cut.onnx", data[:n])
    with pytest.raises(ModelError, match=r"cut\.onnx"):
        load_model(path)


def test_flipped_bytes_never_escape_as_other_errors_and_the_hash_catches_all(exported, tmp_path):
    """Any single flipped byte: load_model either refuses with ModelError or (a flip inside weight values,
    which stays valid ONNX) loads a model whose sha256 differs; with expected_sha256 every flip is refused."""
    data = exported["bytes"]
    good = hashlib.sha256(data).hexdigest()
    positions = sorted(set(np.linspace(0, len(data) - 1, 41).astype(int)) | {0, 1, 2, 3, len(data) - 1})
    refused = 0
    for pos in positions:
        tampered = bytearray(data)
        tampered[pos] ^= 0xFF
        path = write(tmp_path, "flip.onnx", bytes(tampered))
        try:
            model = load_model(path)
        except ModelError:
            refused += 1
        else:
            assert model.sha256 != good
        with pytest.raises(ModelError, match="SHA-256 mismatch"):
            load_model(path, expected_sha256=good)
    assert refused >= 3  # the structural flips (first bytes, the tail with the metadata) are caught on their own


def test_flipped_header_and_renamed_metadata_are_refused(exported, tmp_path):
    data = bytearray(exported["bytes"])
    data[0] ^= 0xFF
    with pytest.raises(ModelError, match=r"flip\.onnx"):
        load_model(write(tmp_path, "flip.onnx", bytes(data)))
    data = bytearray(exported["bytes"])
    at = bytes(data).index(b"digitlens.classes")
    data[at + len("digitlens.")] = ord("C")  # digitlens.Classes: the required key is gone
    with pytest.raises(ModelError, match=r"metadata missing: classes"):
        load_model(write(tmp_path, "renamed.onnx", bytes(data)))


def test_metadata_that_is_not_utf8_is_a_model_error(exported, tmp_path):
    """A flipped byte inside a metadata string makes it invalid UTF-8: that must be refused, not crash."""
    data = bytearray(exported["bytes"])
    key = bytes(data).index(b"digitlens.arch")
    value = bytes(data).index(b"lens", key + len("digitlens.arch"))
    data[value + 1] ^= 0xFF  # 'e' -> 0x9a, not valid UTF-8
    with pytest.raises(ModelError, match=r"utf8\.onnx"):
        load_model(write(tmp_path, "utf8.onnx", bytes(data)))


def test_expected_sha256(exported):
    good = hashlib.sha256(exported["bytes"]).hexdigest()
    assert load_model(exported["path"], expected_sha256=good).sha256 == good
    with pytest.raises(ModelError, match=f"SHA-256 mismatch: expected {'0' * 64}, got {good}"):
        load_model(exported["path"], expected_sha256="0" * 64)


# ---------------------------------------------------------------- external data

def test_external_data_is_refused(exported, tmp_path):
    model = onnx.load_from_string(exported["bytes"])
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").stat().st_size > 100_000  # the weights really moved out
    with pytest.raises(ModelError, match=r"ext\.onnx: a tensor refers to external data"):
        load_model(path)


def _constant_model(external: bool, tmp_path: Path) -> Path:
    """Flatten -> MatMul with a weight held by a Constant node's attribute (not an initializer)."""
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=weight),
         helper.make_node("Flatten", ["crops"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "constant", [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model = onnx.load_from_string(modelfile.onnx_with_metadata(model.SerializeToString(), props(class_list=DIGITS)))
    path = tmp_path / ("const-ext.onnx" if external else "const.onnx")
    if external:
        onnx.external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True,
                                                                 location="const.bin", size_threshold=0,
                                                                 convert_attribute=True)
    onnx.save_model(model, str(path))
    return path


def test_external_data_in_a_node_attribute_is_refused(tmp_path):
    assert load_model(_constant_model(False, tmp_path)).logits(crops(2)).shape == (2, 10)  # control: loads
    path = _constant_model(True, tmp_path)
    assert (tmp_path / "const.bin").exists()
    with pytest.raises(ModelError, match="external data"):
        load_model(path)


# ---------------------------------------------------------------- metadata

def test_onnx_without_our_metadata_is_refused(exported, tmp_path):
    bare = modelfile.onnx_with_metadata(exported["bytes"], {})
    with pytest.raises(ModelError, match=r"bare\.onnx: not a digitlens model file \(metadata missing: format, arch, "
                                         r"classes.*digitlens import-keras"):
        load_model(write(tmp_path, "bare.onnx", bare))


@pytest.mark.parametrize("classes", [
    ["a", "b"], DIGITS[:9], DIGITS[::-1], DIGITS + ["none", "other"], "0123456789",
], ids=["letters", "nine", "reversed", "twelve", "string"])
def test_bad_classes_are_refused(exported, tmp_path, classes):
    data = modelfile.onnx_with_metadata(exported["bytes"], props(classes=json.dumps(classes)))
    with pytest.raises(ModelError, match=r"classes\.onnx: classes must be the ten digits"):
        load_model(write(tmp_path, "classes.onnx", data))


@pytest.mark.parametrize("overrides, message", [
    ({"format": "digitlens-model/99"}, "unknown model format"),
    ({"classes": "[not json"}, "metadata 'classes' is not valid JSON"),
    ({"input": json.dumps({"shape": [None, 3, 32, 32], "ink": "white-on-black"})}, "unsupported input specification"),
    ({"input": json.dumps({**modelfile.default_input_spec(), "ink": "black-on-white"})}, "unsupported input"),
])
def test_bad_metadata_is_refused(exported, tmp_path, overrides, message):
    data = modelfile.onnx_with_metadata(exported["bytes"], props(**overrides))
    with pytest.raises(ModelError, match=message):
        load_model(write(tmp_path, "meta.onnx", data))


def test_files_that_are_not_models_are_refused(tmp_path):
    with pytest.raises(ModelError, match=r"missing\.onnx: cannot read"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match=r"png\.onnx"):
        load_model(write(tmp_path, "png.onnx", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4))
    with pytest.raises(ModelError, match=r"empty\.onnx"):
        load_model(write(tmp_path, "empty.onnx", b""))
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate(modelfile.MAX_MODEL_BYTES + 1)  # sparse: no 64 MB written
    with pytest.raises(ModelError, match="too large"):
        load_model(big)
