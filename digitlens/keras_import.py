"""Import a model saved by the seed's Keras train.py (`model.save('mymodel2.h5')`) as a digitlens model file.

The HDF5 file is read with h5py alone: its architecture is JSON (attribute ``model_config``) and its
weights are plain arrays under ``model_weights/<layer>/...``, so nothing in the file is executed and
neither Keras nor TensorFlow is needed. The architecture must be the seed's, layer for layer.

Two layout differences matter when the weights move to torch:
- Conv2D kernels are (kh, kw, cin, cout) in Keras and (cout, cin, kh, kw) in torch;
- Keras (channels_last) flattens the pooled (h, w, c) feature map in h, w, c order, torch's
  (c, h, w) map in c, h, w order, so the first Dense kernel's input rows must be permuted; a plain
  transpose gives a model that runs and is wrong.
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

from digitlens import modelfile
from digitlens.modelfile import DIGIT_CLASSES, ModelError

ARCH = "seed-keras"
INPUT_SHAPE = [None, 28, 28, 1]  # batch, height, width, channels (channels_last)

# The seed's network: (Keras class, config fields that must match). Dropout rates do not matter at
# inference and are only recorded; every other field that changes the arithmetic is checked here
# or in CONV_FIXED / POOL_FIXED / DENSE_FIXED.
SEED_LAYERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "activation": "relu"}),
    ("Conv2D", {"filters": 64, "kernel_size": [3, 3], "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": [2, 2]}),
    ("Dropout", {}),
    ("Flatten", {}),
    ("Dense", {"units": 128, "activation": "relu"}),
    ("Dropout", {}),
    ("Dense", {"units": 10, "activation": "softmax"}),
)
# Fields checked only when the file states them (older Keras versions omit some); None in the file = default.
CONV_FIXED = {"strides": [1, 1], "padding": "valid", "dilation_rate": [1, 1], "use_bias": True,
              "data_format": "channels_last", "groups": 1}
POOL_FIXED = {"padding": "valid", "data_format": "channels_last", "strides": [2, 2]}
FLATTEN_FIXED = {"data_format": "channels_last"}
DENSE_FIXED = {"use_bias": True}
IGNORED_LAYERS = ("InputLayer",)  # Sequential models saved by TF2 Keras list their input first


class KerasImportError(ModelError):
    """The .h5 file is not a Keras model of the seed's architecture, or cannot be read. The message names the file."""


@dataclass(frozen=True)
class KerasSeedModel:
    """The seed network's weights as Keras stores them, and what the file says about itself."""
    conv1: tuple[np.ndarray, np.ndarray]  # kernel (3, 3, 1, 32), bias (32,)
    conv2: tuple[np.ndarray, np.ndarray]  # kernel (3, 3, 32, 64), bias (64,)
    dense1: tuple[np.ndarray, np.ndarray]  # kernel (h*w*c, 128) rows in (h, w, c) order, bias (128,)
    dense2: tuple[np.ndarray, np.ndarray]  # kernel (128, 10), bias (10,)
    info: dict[str, Any]  # keras_version, backend, layer names, dropout rates, training_config


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _attr_list(attrs, name: str) -> list[str] | None:
    """A list-of-strings attribute; Keras splits long ones into name0, name1, ... chunks."""
    if name in attrs:
        return [_text(v) for v in np.atleast_1d(attrs[name])]
    chunks, k = [], 0
    while f"{name}{k}" in attrs:
        chunks += [_text(v) for v in np.atleast_1d(attrs[f"{name}{k}"])]
        k += 1
    return chunks if k else None


def _norm(value: Any) -> Any:
    """Config values as plain comparable Python: tuples to lists, activation dicts to their name."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict) and "class_name" in value and "config" in value:  # serialised activation object
        name = value["config"].get("name") if isinstance(value["config"], dict) else None
        return name or value["class_name"]
    return value


def _layers(model_config: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(model_config, dict):
        raise KerasImportError(f"{name}: model_config is not a JSON object")
    kind = model_config.get("class_name")
    if kind != "Sequential":
        raise KerasImportError(f"{name}: the model is a Keras {kind!r}; the seed's model is a Sequential")
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers")  # Keras <= 2.1 stores a bare list
    if not isinstance(layers, list):
        raise KerasImportError(f"{name}: model_config lists no layers")
    return layers


def check_architecture(model_config: Any, name: str) -> tuple[list[str], dict[str, Any]]:
    """Raise KerasImportError naming the first difference from the seed's network; return layer names and notes."""
    layers = _layers(model_config, name)
    input_shapes = []
    body = []
    for layer in layers:
        cls = layer.get("class_name") if isinstance(layer, dict) else None
        cfg = layer.get("config", {}) if isinstance(layer, dict) else {}
        for key in ("batch_input_shape", "batch_shape"):
            if isinstance(cfg, dict) and cfg.get(key) is not None:
                input_shapes.append(_norm(cfg[key]))
        if cls not in IGNORED_LAYERS:
            body.append((cls, cfg if isinstance(cfg, dict) else {}))
    found = " - ".join(str(c) for c, _ in body)
    expected = " - ".join(c for c, _ in SEED_LAYERS)
    if [c for c, _ in body] != [c for c, _ in SEED_LAYERS]:
        raise KerasImportError(f"{name}: not the seed's architecture: layers are {found}; expected {expected}")
    for shape in input_shapes:
        if shape != INPUT_SHAPE:
            raise KerasImportError(f"{name}: input shape {shape} is not the seed's {INPUT_SHAPE} (28x28x1, channels_last)")
    notes: dict[str, Any] = {"dropout_rates": []}
    names = []
    for index, ((cls, cfg), (_, want)) in enumerate(zip(body, SEED_LAYERS)):
        layer_name = str(cfg.get("name", f"layer {index}"))
        names.append(layer_name)
        fixed = {"Conv2D": CONV_FIXED, "MaxPooling2D": POOL_FIXED, "Flatten": FLATTEN_FIXED,
                 "Dense": DENSE_FIXED}.get(cls, {})
        for key, value in want.items():
            if _norm(cfg.get(key)) != value:
                raise KerasImportError(f"{name}: layer {index + 1} ({cls} {layer_name!r}) has {key}="
                                       f"{_norm(cfg.get(key))!r}; the seed's has {key}={value!r}")
        for key, value in fixed.items():
            got = _norm(cfg.get(key))
            if got is not None and got != value:
                raise KerasImportError(f"{name}: layer {index + 1} ({cls} {layer_name!r}) has {key}={got!r}; "
                                       f"only {key}={value!r} is supported")
        if cls == "Dropout":
            notes["dropout_rates"].append(cfg.get("rate"))
    return names, notes


def _layer_weights(group, layer: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of one layer, located by the layer group's weight_names attribute."""
    if layer not in group:
        raise KerasImportError(f"{name}: no weights for layer {layer!r} under model_weights/")
    g = group[layer]
    weight_names = _attr_list(g.attrs, "weight_names")
    if weight_names is None:  # fall back to every dataset under the layer group
        weight_names = []
        g.visit(lambda p: weight_names.append(p) if hasattr(g[p], "shape") else None)
    found: dict[str, np.ndarray] = {}
    for w in weight_names:
        leaf = w.rsplit("/", 1)[-1].split(":", 1)[0]
        if w not in g:
            raise KerasImportError(f"{name}: layer {layer!r} names weight {w!r}, which the file does not hold")
        if leaf in ("kernel", "bias"):
            found[leaf] = np.asarray(g[w][()])
    missing = [k for k in ("kernel", "bias") if k not in found]
    if missing:
        raise KerasImportError(f"{name}: layer {layer!r} lacks its {' and '.join(missing)} weights")
    for leaf, array in found.items():
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise KerasImportError(f"{name}: layer {layer!r} {leaf} is not finite floating point ({array.dtype})")
    return found["kernel"].astype(np.float32), found["bias"].astype(np.float32)


def read_keras_h5(h5_path: str | os.PathLike) -> KerasSeedModel:
    """Read and check a Keras 2 HDF5 model file of the seed's network. Pure h5py + numpy."""
    import h5py

    path = Path(h5_path)
    name = str(path)
    if not path.is_file():
        raise KerasImportError(f"{name}: no such file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as e:
        raise KerasImportError(f"{name}: cannot read ({e})") from e
    if not is_hdf5:
        raise KerasImportError(f"{name}: not an HDF5 file; expected a Keras model saved with model.save('....h5')")
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                hint = (" (it holds weights only, as model.save_weights writes; save the whole model with model.save)"
                        if "layer_names" in f.attrs or "model_weights" not in f else "")
                raise KerasImportError(f"{name}: no model_config attribute: not a Keras model file{hint}")
            try:
                model_config = json.loads(_text(f.attrs["model_config"]))
            except json.JSONDecodeError as e:
                raise KerasImportError(f"{name}: model_config is not valid JSON ({e})") from e
            layer_names, notes = check_architecture(model_config, name)
            if "model_weights" not in f:
                raise KerasImportError(f"{name}: no model_weights group: the file holds no weights")
            group = f["model_weights"]
            weighted = [n for n, (cls, _) in zip(layer_names, SEED_LAYERS) if cls in ("Conv2D", "Dense")]
            conv1, conv2, dense1, dense2 = (_layer_weights(group, n, name) for n in weighted)
            training_config = None
            if "training_config" in f.attrs:
                try:
                    training_config = json.loads(_text(f.attrs["training_config"]))
                except json.JSONDecodeError:
                    training_config = None
            info = {"keras_version": _text(f.attrs.get("keras_version", "unknown")),
                    "backend": _text(f.attrs.get("backend", "unknown")), "layers": layer_names,
                    "dropout_rates": notes["dropout_rates"], "training_config": training_config}
    except KerasImportError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise KerasImportError(f"{name}: cannot read the Keras model ({type(e).__name__}: {e})") from e
    return KerasSeedModel(conv1, conv2, dense1, dense2, info)


def _flatten_permutation(kernel: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Keras Dense kernel (h*w*c, out), rows in (h, w, c) order -> torch Linear weight (out, c*h*w)."""
    c, h, w = chw
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1).T


def to_seednet(keras: KerasSeedModel, name: str = "model"):
    """A nets.SeedNet (eval mode) holding the Keras weights; shapes checked against the torch modules."""
    import torch

    from digitlens import nets

    net = nets.SeedNet(len(DIGIT_CLASSES)).eval()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        chw = tuple(net.features(torch.zeros(1, 1, 28, 28)).shape[1:])
    pairs = [(convs[0], keras.conv1, "conv"), (convs[1], keras.conv2, "conv"),
             (linears[0], keras.dense1, "flatten-dense"), (linears[1], keras.dense2, "dense")]
    for module, (kernel, bias), kind in pairs:
        if kind == "conv":
            want = tuple(module.weight.shape[i] for i in (2, 3, 1, 0))  # (kh, kw, cin, cout)
            weight = kernel.transpose(3, 2, 0, 1) if kernel.shape == want else None
        else:
            want = tuple(module.weight.shape[::-1])  # (in, out)
            if kernel.shape != want:
                weight = None
            else:
                weight = _flatten_permutation(kernel, chw) if kind == "flatten-dense" else kernel.T
        if weight is None or bias.shape != tuple(module.bias.shape):
            raise KerasImportError(f"{name}: weight shapes {kernel.shape} and {bias.shape} do not fit the seed's "
                                   f"layer (kernel {want}, bias {tuple(module.bias.shape)})")
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            module.bias.copy_(torch.from_numpy(bias))
    return net


def measure(model_path: Path, mnist, batch: int = 2000) -> dict[str, Any]:
    """10-way MNIST test accuracy of a model file, through onnxruntime as deployed."""
    model = modelfile.load_model(model_path)
    x, y = np.asarray(mnist.x_test), np.asarray(mnist.y_test)
    pred = np.concatenate([model.logits(x[i:i + batch])[:, :10].argmax(1) for i in range(0, len(x), batch)])
    return {"mnist_test": round(float((pred == y).mean()), 5), "test_images": int(len(y))}


def import_keras(h5_path: str | os.PathLike, out_path: str | os.PathLike, mnist_sha256: str = "unknown",
                 mnist=None) -> Path:
    """Convert the seed's Keras .h5 model to a digitlens ONNX model file at out_path (written atomically).

    The ONNX model outputs logits (Keras' final softmax is dropped). mnist: a digitlens.data.Mnist
    (or anything with x_test, y_test) to measure the test accuracy recorded in the metadata; None
    records {"mnist_test": null}. mnist_sha256: hash of the data the Keras model was trained on, if known.
    """
    h5_path, out_path = Path(h5_path), Path(out_path)
    keras = read_keras_h5(h5_path)
    net = to_seednet(keras, str(h5_path))
    train_config = {"source": "keras", "keras_version": keras.info["keras_version"], "backend": keras.info["backend"],
                    "dropout_rates": keras.info["dropout_rates"], "training_config": keras.info["training_config"]}
    extra = {"imported_from": h5_path.name, "h5_sha256": hashlib.sha256(h5_path.read_bytes()).hexdigest(),
             "keras_layers": keras.info["layers"]}
    classes = list(DIGIT_CLASSES)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, suffix=".onnx.part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        props = modelfile.metadata_props(ARCH, classes, {"mnist_test": None}, train_config, mnist_sha256, extra)
        modelfile.export_onnx(net, tmp, props)
        if mnist is not None:
            accuracy = measure(tmp, mnist)
            props = modelfile.metadata_props(ARCH, classes, accuracy, train_config, mnist_sha256, extra)
            modelfile.write_atomic(tmp, modelfile.onnx_with_metadata(tmp.read_bytes(), props))
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out_path
