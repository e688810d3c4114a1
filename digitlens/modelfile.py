"""The model file: one ONNX file with metadata. Export (torch, training side) and safe loading (no torch).

Loading never executes code from a file: ONNX is a protobuf of tensors and operators, read by
onnxruntime. We also refuse files whose tensors point at external data (a path on disk the file
could name), and files whose metadata is missing, unknown or inconsistent.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "digitlens-model/1"
PREFIX = "digitlens."
REQUIRED = ("format", "arch", "classes", "input", "mnist_test_accuracy", "train_config", "data_sha256", "version")
MAX_MODEL_BYTES = 64 << 20  # our networks are < 2 MB; anything this large is not ours
DIGIT_CLASSES = [str(d) for d in range(10)]


class ModelError(ValueError):
    """The model file is missing, unsafe, corrupted or not one of ours. The message names the file."""


# ---------------------------------------------------------------- protobuf walk (no onnx package at run time)

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ModelError("truncated protobuf varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ModelError("malformed protobuf varint")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message; value is bytes for length-delimited."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ModelError("truncated protobuf field")
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ModelError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


# ONNX schema, the parts that can hold tensors: ModelProto.graph=7, .functions=25; GraphProto.node=1,
# .initializer=5, .sparse_initializer=15; NodeProto.attribute=5; AttributeProto.t=5, .g=6, .tensors=10,
# .graphs=11, .sparse_tensor=22, .sparse_tensors=23; FunctionProto.node=7; SparseTensorProto.values=1,
# .indices=2; TensorProto.external_data=13, .data_location=14 (EXTERNAL = 1).
def _check_tensor(buf: bytes) -> None:
    for f, w, v in _fields(buf):
        if (f == 13 and w == 2) or (f == 14 and w == 0 and v == 1):
            raise ModelError("a tensor refers to external data; only self-contained ONNX files are accepted")


def _check_sparse(buf: bytes) -> None:
    for f, w, v in _fields(buf):
        if f in (1, 2) and w == 2:
            _check_tensor(v)


def _check_graph(buf: bytes) -> None:
    for f, w, v in _fields(buf):
        if w != 2:
            continue
        if f == 1:
            _check_node(v)
        elif f == 5:
            _check_tensor(v)
        elif f == 15:
            _check_sparse(v)


def _check_node(buf: bytes) -> None:
    for f, w, v in _fields(buf):
        if f == 5 and w == 2:
            for af, aw, av in _fields(v):
                if aw != 2:
                    continue
                if af in (5, 10):
                    _check_tensor(av)
                elif af in (6, 11):
                    _check_graph(av)
                elif af in (22, 23):
                    _check_sparse(av)


def check_self_contained(model_bytes: bytes) -> None:
    """Raise ModelError if any tensor of the ONNX model refers to external data."""
    for f, w, v in _fields(model_bytes):
        if f == 7 and w == 2:
            _check_graph(v)
        elif f == 25 and w == 2:
            for ff, fw, fv in _fields(v):
                if ff == 7 and fw == 2:
                    _check_node(fv)


# ---------------------------------------------------------------- loading

@dataclass(frozen=True)
class InputSpec:
    scale: float  # multiply uint8 pixels by this ...
    mean: float  # ... then subtract mean ...
    std: float  # ... and divide by std
    ink: str  # "white-on-black": MNIST's convention

    def prepare(self, crops: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 0..255 or float 0..1 -> (N, 1, 28, 28) float32 network input."""
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (28, 28):
            raise ValueError(f"crops must have shape (N, 28, 28), got {crops.shape}")
        x = crops.astype(np.float32)
        if crops.dtype != np.uint8:
            x = x * 255.0  # float crops are 0..1
        x = (x * self.scale - self.mean) / self.std
        return x[:, None]


@dataclass(frozen=True)
class LoadedModel:
    path: str
    sha256: str
    metadata: dict[str, Any]
    classes: tuple[str, ...]
    input: InputSpec
    session: Any  # onnxruntime.InferenceSession

    def logits(self, crops: np.ndarray) -> np.ndarray:
        x = self.input.prepare(crops)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.session.run(None, {self.session.get_inputs()[0].name: x})[0]


def parse_metadata(props: dict[str, str], name: str) -> dict[str, Any]:
    meta = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ModelError(f"{name}: not a digitlens model file (metadata missing: {', '.join(missing)}). "
                         "Train one with `digitlens train` or convert a Keras file with `digitlens import-keras`.")
    if meta["format"] != FORMAT:
        raise ModelError(f"{name}: unknown model format {meta['format']!r}; this digitlens reads {FORMAT!r}")
    out: dict[str, Any] = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v) if k in ("classes", "input", "train_config", "mnist_test_accuracy", "extra") else v
        except json.JSONDecodeError as e:
            raise ModelError(f"{name}: metadata {k!r} is not valid JSON ({e})") from e
    classes = out["classes"]
    if not isinstance(classes, list) or classes[:10] != DIGIT_CLASSES or len(classes) > 11:
        raise ModelError(f"{name}: classes must be the ten digits, optionally followed by one reject class; got {classes!r}")
    spec = out["input"]
    if not isinstance(spec, dict) or spec.get("shape") != [None, 1, 28, 28] or spec.get("ink") != "white-on-black":
        raise ModelError(f"{name}: unsupported input specification {spec!r}")
    return out


def load_model(path: str | os.PathLike, threads: int = 0, expected_sha256: str | None = None) -> LoadedModel:
    """Load and check a model file. threads: onnxruntime intra-op threads (0 = its default, all cores)."""
    import onnxruntime as ort

    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ModelError(f"{name}: cannot read model file ({e.strerror or e})") from e
    if size > MAX_MODEL_BYTES:
        raise ModelError(f"{name}: {size} bytes is too large for a digitlens model (limit {MAX_MODEL_BYTES})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise ModelError(f"{name}: SHA-256 mismatch: expected {expected_sha256}, got {digest}; the file was modified")
    try:
        check_self_contained(data)
    except ModelError as e:
        raise ModelError(f"{name}: {e}") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for any malformed file
        raise ModelError(f"{name}: not a valid ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    try:  # strings in the file that are not UTF-8 fail here, inside onnxruntime's bindings
        props = dict(session.get_modelmeta().custom_metadata_map)
        shape = session.get_inputs()[0].shape
    except (UnicodeDecodeError, RuntimeError) as e:
        raise ModelError(f"{name}: corrupted ONNX model ({type(e).__name__}: {e})") from e
    meta = parse_metadata(props, name)
    if len(shape) != 4 or list(shape[1:]) != [1, 28, 28]:
        raise ModelError(f"{name}: the network's input shape {shape} is not (N, 1, 28, 28)")
    spec = meta["input"]
    return LoadedModel(name, digest, meta, tuple(meta["classes"]),
                       InputSpec(float(spec["scale"]), float(spec["mean"]), float(spec["std"]), spec["ink"]), session)


# ---------------------------------------------------------------- export (training side: needs torch and onnx)

def default_input_spec() -> dict[str, Any]:
    return {"shape": [None, 1, 28, 28], "dtype": "float32", "scale": 1 / 255, "mean": 0.0, "std": 1.0,
            "ink": "white-on-black", "layout": "MNIST: digit fitted in 20x20, centred by mass in 28x28"}


def metadata_props(arch: str, classes: list[str], accuracy: dict[str, Any], train_config: dict[str, Any],
                   data_sha256: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
    from digitlens import __version__
    meta = {"format": FORMAT, "arch": arch, "classes": json.dumps(classes), "input": json.dumps(default_input_spec()),
            "mnist_test_accuracy": json.dumps(accuracy), "train_config": json.dumps(train_config, sort_keys=True),
            "data_sha256": data_sha256, "version": __version__}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    return {PREFIX + k: v for k, v in meta.items()}


def write_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def onnx_with_metadata(onnx_bytes: bytes, props: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    del model.metadata_props[:]
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    model.producer_name = "digitlens"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(model, path: Path, props: dict[str, str]) -> Path:
    """Export a torch module (eval mode, logits out) to a single self-contained ONNX file with metadata."""
    import io
    import warnings

    import torch

    model = model.eval().cpu().float()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buf, input_names=["crops"], output_names=["logits"],
                          dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    write_atomic(Path(path), onnx_with_metadata(buf.getvalue(), props))
    return Path(path)
