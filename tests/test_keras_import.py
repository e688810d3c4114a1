"""digitlens.keras_import against a NumPy reference of the Keras network.

The test writes .h5 files in the Keras 2 HDF5 layout itself (h5py only: no Keras here), with random
weights, converts them, and checks that our ONNX model's logits equal a channels_last NumPy forward
pass of the Keras network. The flatten check is sensitive: a conversion that skips the (h, w, c) ->
(c, h, w) permutation of the first Dense kernel gives different logits, and the test shows it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("torch")

from digitlens import modelfile  # noqa: E402
from digitlens.keras_import import KerasImportError, import_keras  # noqa: E402

# ---------------------------------------------------------------- writing Keras files

STYLES = {
    # TF 2.x tf.keras: InputLayer first, layer names conv2d, conv2d_1, ...
    "tf2": {"keras_version": "2.4.0", "input_layer": True, "bare_list": False,
            "names": ["conv2d", "conv2d_1", "max_pooling2d", "dropout", "flatten", "dense", "dropout_1", "dense_1"]},
    # standalone Keras 2.1: the Sequential config is a bare list, input shape on the first Conv2D, names *_1
    "keras21": {"keras_version": "2.1.6", "input_layer": False, "bare_list": True,
                "names": ["conv2d_1", "conv2d_2", "max_pooling2d_1", "dropout_1", "flatten_1", "dense_1",
                          "dropout_2", "dense_2"]},
}


def layer_configs(names: list[str], input_layer: bool) -> list[dict]:
    init = {"kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None, "trainable": True, "dtype": "float32"}
    conv = {"strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1],
            "groups": 1, "use_bias": True, **init}
    c1, c2, pool, drop1, flat, d1, drop2, d2 = names
    layers = [
        {"class_name": "Conv2D", "config": {"name": c1, "batch_input_shape": [None, 28, 28, 1], "filters": 32,
                                            "kernel_size": [3, 3], "activation": "relu", **conv}},
        {"class_name": "Conv2D", "config": {"name": c2, "filters": 64, "kernel_size": [3, 3], "activation": "relu",
                                            **conv}},
        {"class_name": "MaxPooling2D", "config": {"name": pool, "trainable": True, "dtype": "float32",
                                                  "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
                                                  "data_format": "channels_last"}},
        {"class_name": "Dropout", "config": {"name": drop1, "trainable": True, "dtype": "float32", "rate": 0.25,
                                             "noise_shape": None, "seed": None}},
        {"class_name": "Flatten", "config": {"name": flat, "trainable": True, "dtype": "float32",
                                             "data_format": "channels_last"}},
        {"class_name": "Dense", "config": {"name": d1, "units": 128, "activation": "relu", "use_bias": True, **init}},
        {"class_name": "Dropout", "config": {"name": drop2, "trainable": True, "dtype": "float32", "rate": 0.5,
                                             "noise_shape": None, "seed": None}},
        {"class_name": "Dense", "config": {"name": d2, "units": 10, "activation": "softmax", "use_bias": True,
                                           **init}},
    ]
    if input_layer:
        layers.insert(0, {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1],
                                                                 "dtype": "float32", "sparse": False,
                                                                 "ragged": False, "name": c1 + "_input"}})
    return layers


def random_weights(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Glorot-uniform kernels and small random biases, in Keras' shapes."""
    rng = np.random.default_rng(seed)

    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    def bias(n):
        return rng.normal(0, 0.05, n).astype(np.float32)

    return {"conv1": (glorot((3, 3, 1, 32), 9, 9 * 32), bias(32)),
            "conv2": (glorot((3, 3, 32, 64), 9 * 32, 9 * 64), bias(64)),
            "dense1": (glorot((12 * 12 * 64, 128), 12 * 12 * 64, 128), bias(128)),
            "dense2": (glorot((128, 10), 128, 10), bias(10))}


def write_keras_h5(path: Path, weights: dict, style: str = "tf2", mutate=None, weights_only: bool = False) -> Path:
    """An .h5 file laid out as Keras 2's model.save writes it. mutate(layers) may edit the config first."""
    s = STYLES[style]
    names = s["names"]
    layers = layer_configs(names, s["input_layer"])
    if mutate:
        mutate(layers)
    config = layers if s["bare_list"] else {"name": "sequential", "layers": layers}
    weighted = {names[0]: weights["conv1"], names[1]: weights["conv2"], names[5]: weights["dense1"],
                names[7]: weights["dense2"]}
    with h5py.File(path, "w") as f:
        target = f
        if not weights_only:
            f.attrs["keras_version"] = s["keras_version"].encode()
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": config}).encode()
            f.attrs["training_config"] = json.dumps({
                "loss": "categorical_crossentropy", "metrics": ["accuracy"],
                "optimizer_config": {"class_name": "Adadelta",
                                     "config": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-07}}}).encode()
            target = f.create_group("model_weights")
        target.attrs["layer_names"] = np.array([n.encode() for n in names])
        target.attrs["backend"] = b"tensorflow"
        target.attrs["keras_version"] = s["keras_version"].encode()
        for name in names:
            g = target.create_group(name)
            if name in weighted:
                kernel, bias = weighted[name]
                g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
                g.create_dataset(f"{name}/kernel:0", data=kernel)
                g.create_dataset(f"{name}/bias:0", data=bias)
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
        if not weights_only:
            f.create_group("optimizer_weights")
    return path


# ---------------------------------------------------------------- the NumPy reference (channels_last, as Keras)

def conv2d_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x (N, H, W, C), kernel (kh, kw, C, O): Keras Conv2D, padding valid, stride 1 (cross-correlation)."""
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H', W', C, kh, kw)
    return np.einsum("nijcab,abco->nijo", windows, kernel, optimize=True) + bias


def keras_forward(images: np.ndarray, w: dict, flatten_order: str = "hwc") -> np.ndarray:
    """Logits of the seed's Keras network (its softmax left out) for (N, 28, 28) images in [0, 1]."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    a = images.astype(np.float64)[..., None]
    a = relu(conv2d_valid(a, *w["conv1"]))
    a = relu(conv2d_valid(a, *w["conv2"]))
    n, h, wd, c = a.shape
    a = a[:, :h // 2 * 2, :wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))  # MaxPooling2D 2x2
    if flatten_order == "chw":  # what a careless conversion computes
        a = a.transpose(0, 3, 1, 2)
    a = a.reshape(n, -1)  # Flatten: channels_last order (h, w, c)
    a = relu(a @ w["dense1"][0] + w["dense1"][1])
    return a @ w["dense2"][0] + w["dense2"][1]


def mnist_like(n: int = 8, seed: int = 0) -> np.ndarray:
    """White digits on black, drawn with OpenCV, blurred, placed off-centre: asymmetric in h and w."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        img = np.zeros((28, 28), np.uint8)
        cv2.putText(img, str(i % 10), (int(rng.integers(3, 9)), int(rng.integers(20, 25))),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
        out[i] = cv2.GaussianBlur(img, (3, 3), 0.7)
    return out


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("style", sorted(STYLES))
def test_converted_model_matches_the_keras_reference(tmp_path, style):
    weights = random_weights(seed=1 if style == "tf2" else 2)
    h5 = write_keras_h5(tmp_path / "mymodel2.h5", weights, style)
    out = import_keras(h5, tmp_path / "seed.onnx")
    model = modelfile.load_model(out)
    crops = mnist_like(8)
    ours = model.logits(crops)
    reference = keras_forward(crops / 255.0, weights)
    assert ours.shape == (8, 10)
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
    assert np.abs(reference).max() > 0.1  # the comparison is not between near-zero numbers
    # a conversion that flattens in torch's (c, h, w) order without permuting would be caught
    wrong = keras_forward(crops / 255.0, weights, flatten_order="chw")
    assert np.abs(ours - wrong).max() > 1e-2
    # metadata: our file, the seed's classes, accuracy not measured
    assert model.metadata["arch"] == "seed-keras"
    assert model.classes == tuple(str(d) for d in range(10))
    assert model.metadata["mnist_test_accuracy"] == {"mnist_test": None}
    assert model.metadata["extra"]["imported_from"] == "mymodel2.h5"
    assert model.metadata["train_config"]["keras_version"] == STYLES[style]["keras_version"]
    assert model.metadata["train_config"]["dropout_rates"] == [0.25, 0.5]


def test_accuracy_is_measured_when_digits_are_given(tmp_path):
    weights = random_weights(seed=3)
    h5 = write_keras_h5(tmp_path / "m.h5", weights)
    crops = mnist_like(20, seed=5)
    predicted = keras_forward(crops / 255.0, weights).argmax(1)
    labels = predicted.copy()
    labels[:5] = (labels[:5] + 1) % 10  # five deliberate misses: 75%
    out = import_keras(h5, tmp_path / "sub" / "m.onnx", mnist_sha256="abc",
                       mnist=SimpleNamespace(x_test=crops, y_test=labels.astype(np.uint8)))
    meta = modelfile.load_model(out).metadata
    assert meta["mnist_test_accuracy"] == {"mnist_test": 0.75, "test_images": 20}
    assert meta["data_sha256"] == "abc"
    assert [p.name for p in out.parent.iterdir()] == ["m.onnx"]  # no temporary file left behind


def _set(index: int, **changes):
    def mutate(layers):
        body = [layer for layer in layers if layer["class_name"] != "InputLayer"]
        body[index]["config"].update(changes)
    return mutate


def _insert_batchnorm(layers):
    layers.insert(len(layers) - 3, {"class_name": "BatchNormalization", "config": {"name": "batch_normalization"}})


def _input_shape(layers):
    for layer in layers:
        layer["config"].pop("batch_input_shape", None)
    layers[0]["config"]["batch_input_shape"] = [None, 32, 32, 3]


@pytest.mark.parametrize("mutate, message", [
    (_set(0, filters=16), r"layer 1 \(Conv2D 'conv2d'\) has filters=16; the seed's has filters=32"),
    (_set(1, kernel_size=[5, 5]), r"kernel_size=\[5, 5\]"),
    (_set(5, activation="tanh"), r"Dense 'dense'\) has activation='tanh'"),
    (_set(7, units=11), r"units=11"),
    (_set(0, padding="same"), r"padding='same'; only padding='valid'"),
    (_set(0, data_format="channels_first"), r"data_format='channels_first'"),
    (_insert_batchnorm, r"not the seed's architecture: layers are .*BatchNormalization"),
    (_input_shape, r"input shape \[None, 32, 32, 3\]"),
], ids=["filters", "kernel", "activation", "units", "padding", "channels_first", "extra-layer", "input-shape"])
def test_wrong_architecture_is_refused_naming_file_and_mismatch(tmp_path, mutate, message):
    h5 = write_keras_h5(tmp_path / "other.h5", random_weights(4), mutate=mutate)
    with pytest.raises(KerasImportError, match=message) as info:
        import_keras(h5, tmp_path / "x.onnx")
    assert str(h5) in str(info.value)
    assert not (tmp_path / "x.onnx").exists()


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    weights = random_weights(5)
    weights["conv1"] = (weights["conv1"][0][..., :16], weights["conv1"][1][:16])
    h5 = write_keras_h5(tmp_path / "bad.h5", weights)
    with pytest.raises(KerasImportError, match=r"bad\.h5: weight shapes \(3, 3, 1, 16\)"):
        import_keras(h5, tmp_path / "x.onnx")


def test_non_hdf5_and_weights_only_files_are_refused(tmp_path):
    text = tmp_path / "mymodel2.h5"
    text.write_bytes(b"PK\x03\x04 this is a zip, not HDF5" + bytes(600))
    with pytest.raises(KerasImportError, match=r"mymodel2\.h5: not an HDF5 file"):
        import_keras(text, tmp_path / "x.onnx")
    with pytest.raises(KerasImportError, match="no such file"):
        import_keras(tmp_path / "missing.h5", tmp_path / "x.onnx")
    weights_only = write_keras_h5(tmp_path / "w.h5", random_weights(6), weights_only=True)
    with pytest.raises(KerasImportError, match=r"w\.h5: no model_config .*weights only"):
        import_keras(weights_only, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_nan_weights_are_refused(tmp_path):
    weights = copy.deepcopy(random_weights(7))
    weights["dense2"][0][0, 0] = np.nan
    h5 = write_keras_h5(tmp_path / "nan.h5", weights)
    with pytest.raises(KerasImportError, match="not finite"):
        import_keras(h5, tmp_path / "x.onnx")


SHIPPED_SEED = Path(__file__).resolve().parents[1] / "digitlens" / "models" / "seed.onnx"


@pytest.mark.skipif(not SHIPPED_SEED.is_file(), reason="the shipped seed model is not there yet")
def test_trained_seed_weights_survive_keras_layout(tmp_path):
    """The shipped seed network, written in Keras' layout, read back: the same logits, and real digits read.

    The chain is checked at each link, so a permutation bug cannot cancel against the test's own inverse:
    shipped ONNX == NumPy Keras reference on the Keras-layout weights == our import of the .h5 file.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(SHIPPED_SEED)).graph.initializer}
    try:
        c1, c2 = init["features.0.weight"], init["features.2.weight"]
        d1, d2 = init["classifier.1.weight"], init["classifier.4.weight"]
        b = [init[k] for k in ("features.0.bias", "features.2.bias", "classifier.1.bias", "classifier.4.bias")]
    except KeyError as e:
        pytest.skip(f"seed.onnx initializers are named differently ({e})")
    c = c2.shape[0]  # SeedNet's pooled feature map is (c, h, w) with h == w
    h = w = int(round(np.sqrt(d1.shape[1] // c)))
    keras_weights = {
        "conv1": (c1.transpose(2, 3, 1, 0), b[0]), "conv2": (c2.transpose(2, 3, 1, 0), b[1]),
        # torch columns (c, h, w) -> Keras rows (h, w, c)
        "dense1": (d1.T.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1), b[2]),
        "dense2": (d2.T, b[3])}
    try:
        from digitlens.data import DataError, load_mnist
        m = load_mnist(mirrors=False)
        digits, labels = m.x_test[:100], m.y_test[:100]
    except (ImportError, DataError):
        digits, labels = mnist_like(30), None
    shipped = modelfile.load_model(SHIPPED_SEED, threads=1).logits(digits)
    reference = keras_forward(digits / 255.0, keras_weights)
    np.testing.assert_allclose(reference, shipped, atol=1e-3, rtol=0)
    out = import_keras(write_keras_h5(tmp_path / "trained.h5", keras_weights), tmp_path / "trained.onnx")
    ours = modelfile.load_model(out, threads=1).logits(digits)
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)
    if labels is not None:
        assert (ours.argmax(1) == labels).mean() >= 0.97  # a trained network reads MNIST test digits
