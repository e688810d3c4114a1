"""digitlens.train, nets, augment: a quick real training run, resume, checkpoints, export, the seed's network.

Runs use a few thousand MNIST training images, one thread and no bf16 (bit-reproducible), and the
first 2,000 test images for the per-epoch probes (core_mnist_fast) so they stay quick.
"""
from __future__ import annotations

import inspect
import json
import os
import pickle
from dataclasses import asdict, replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from digitlens import __version__, augment, modelfile, nets  # noqa: E402
from digitlens.data import Mnist  # noqa: E402
from digitlens.train import TrainConfig, load_checkpoint, train  # noqa: E402

# The quick setting: lens, two epochs on 3,000 training images, batch 32 (more steps than the recipe's
# 128), short warm-up. Measured here (seed 0, 1 thread): held-out 0.960, first 2,000 test images 0.9455;
# one epoch instead reaches only ~0.89, an untrained network ~0.10.
QUICK = dict(epochs=2, limit=3000, batch_size=32, warmup_epochs=0.2, eval_per_epoch_early=0, amp="off", threads=1,
             seed=0)
QUICK_FLOOR = 0.92  # accuracy the quick run must reach on held-out training images and on test images
TINY = dict(limit=600, eval_per_epoch_early=0, amp="off", threads=1, seed=3)  # resume checks: weights, not accuracy


def onnx_logits(path, images: np.ndarray) -> np.ndarray:
    return modelfile.load_model(path, threads=1).logits(images)


def torch_model(arch: str, state: dict) -> torch.nn.Module:
    model, _ = nets.build(arch)
    model.load_state_dict(state)
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def _keep_torch_threads():
    """train(threads=1) sets torch's process-wide thread count; give later test modules their cores back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist_200(core_mnist_fast):
    """Only 200 test images: the resume and seed checks compare weights, so test probes just cost time."""
    m = core_mnist_fast
    return Mnist(m.x_train, m.y_train, m.x_test[:200], m.y_test[:200], m.source, m.path)


@pytest.fixture(scope="module")
def quick_run(core_mnist_fast, tmp_path_factory):
    cfg = TrainConfig.recipe("lens", **QUICK)
    out = tmp_path_factory.mktemp("quick")
    result = train(core_mnist_fast, cfg, out)
    return cfg, result, out


# ---------------------------------------------------------------- a quick real run

def test_quick_run_writes_its_files(quick_run):
    cfg, result, out = quick_run
    for name in ("model.onnx", "checkpoint.pt", "log.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    assert result.model_path == out / "model.onnx"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["arch"] == "lens" and summary["config"] == asdict(cfg)
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["epoch"]) for e in entries] == [("epoch", 1), ("epoch", 2)]
    assert not list(out.glob("*.part")), "atomic writes leave no temporary files"


def test_quick_run_accuracy_on_held_out_images(quick_run, core_mnist_fast):
    """Measured by us on the exported file, on images the run never trained on."""
    cfg, result, out = quick_run
    logits = onnx_logits(out / "model.onnx", core_mnist_fast.x_test)
    test_acc = float((logits[:, :10].argmax(1) == core_mnist_fast.y_test).mean())
    assert test_acc >= QUICK_FLOOR, test_acc
    assert result.summary["held_out_accuracy"] >= QUICK_FLOOR
    # The summary's own test figure is the same measurement.
    assert result.summary["mnist_test_accuracy"] == pytest.approx(test_acc, abs=1e-3)  # ties may differ in 1e-6


def test_onnx_agrees_with_torch_and_holds_the_averaged_weights(quick_run, core_mnist_fast):
    cfg, result, out = quick_run
    ckpt = load_checkpoint(out / "checkpoint.pt")
    averaged = torch_model("lens", ckpt["ema"])  # the exported model is the weight average
    images = core_mnist_fast.x_test[:256]
    with torch.no_grad():
        expected = averaged(torch.from_numpy(images).unsqueeze(1).float() / 255).numpy()
    got = onnx_logits(out / "model.onnx", images)
    assert got.shape == (256, 11)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_model_metadata(quick_run, core_mnist_fast):
    cfg, result, out = quick_run
    meta = modelfile.load_model(out / "model.onnx").metadata
    assert meta["arch"] == "lens"
    assert meta["classes"] == [str(d) for d in range(10)] + ["none"]
    assert meta["version"] == __version__
    assert meta["data_sha256"] == core_mnist_fast.sha256
    assert meta["train_config"] == asdict(cfg)
    acc = meta["mnist_test_accuracy"]
    assert acc["mnist_test"] == pytest.approx(result.summary["mnist_test_accuracy"], abs=1e-5)
    assert acc["test_images"] == len(core_mnist_fast.y_test)
    assert meta["input"]["shape"] == [None, 1, 28, 28] and meta["input"]["ink"] == "white-on-black"
    assert meta["extra"]["temperature"] == pytest.approx(result.summary["temperature"])


def test_checkpoint_loads_with_weights_only(quick_run):
    cfg, _, out = quick_run
    payload = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["format"] == "digitlens-checkpoint/1"
    assert payload["config"] == asdict(cfg)
    assert payload["state"]["epoch"] == 2
    model, _ = nets.build("lens")
    model.load_state_dict(payload["model"])  # every tensor present, right shapes


class _Exploit:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_tampered_checkpoint_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "digitlens-checkpoint/1", "model": _Exploit(f"echo pwned > {marker}")}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)
    assert not marker.exists()


def test_resume_with_other_settings_refused(quick_run, core_mnist_fast):
    cfg, _, out = quick_run
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="other settings"):
        train(core_mnist_fast, replace(cfg, epochs=3, lr=cfg.lr * 2), out, resume=True)
    with pytest.raises(ValueError, match="other settings"):
        train(core_mnist_fast, replace(cfg, epochs=3, limit=cfg.limit + 1), out, resume=True)
    with pytest.raises(ValueError, match="other settings"):
        train(core_mnist_fast, TrainConfig.recipe("seed", **{**QUICK, "epochs": 3}), out, resume=True)
    assert (out / "checkpoint.pt").read_bytes() == before, "a refused resume leaves the checkpoint alone"


def test_not_a_checkpoint_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a digitlens training checkpoint"):
        load_checkpoint(path)


# ---------------------------------------------------------------- resume equals an uninterrupted run

class _Interrupt(Exception):
    pass


def _stop_at(epoch_to_stop: int):
    def on_epoch_start(epoch, steps):
        if epoch == epoch_to_stop:
            raise _Interrupt()
    return on_epoch_start


def _assert_same_run(a, b):
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert ca["state"]["epoch"] == cb["state"]["epoch"] and ca["state"]["step"] == cb["state"]["step"]
    for part in ("model", "ema"):
        if ca[part] is None:
            assert cb[part] is None
            continue
        assert ca[part].keys() == cb[part].keys()
        for k in ca[part]:
            np.testing.assert_allclose(ca[part][k].double().numpy(), cb[part][k].double().numpy(), atol=1e-6, rtol=0,
                                       err_msg=f"{part}.{k}")
    la = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    strip = lambda e: {k: v for k, v in e.items() if k != "train_seconds"}  # noqa: E731
    assert [strip(e) for e in la] == [strip(e) for e in lb]


def test_resume_after_interruption_equals_uninterrupted(mnist_200, tmp_path):
    """lens (one-cycle schedule over the planned epochs, weight averaging, synthetic crops): stopped
    after epoch 1 of 2 and resumed, it ends exactly where a straight run ends."""
    cfg = TrainConfig.recipe("lens", epochs=2, **TINY)
    # Same global RNG state before each run: isolates resume from the unseeded weight initialisation
    # (test_same_seed_gives_the_same_model checks that one).
    torch.manual_seed(1)
    straight = train(mnist_200, cfg, tmp_path / "straight")
    torch.manual_seed(1)
    with pytest.raises(_Interrupt):
        train(mnist_200, cfg, tmp_path / "resumed", on_epoch_start=_stop_at(1))
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["state"]["epoch"] == 1
    resumed = train(mnist_200, cfg, tmp_path / "resumed", resume=True)
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")
    images = mnist_200.x_test[:200]
    np.testing.assert_allclose(onnx_logits(resumed.model_path, images), onnx_logits(straight.model_path, images),
                               atol=1e-6, rtol=0)
    assert resumed.summary["mnist_test_accuracy"] == straight.summary["mnist_test_accuracy"]


def test_seed_one_epoch_then_resume_to_two_equals_two(mnist_200, tmp_path):
    """The seed's recipe (flat Adadelta): 1 epoch, then --resume with --epochs 2, equals 2 epochs straight."""
    two = TrainConfig.recipe("seed", epochs=2, **TINY)
    torch.manual_seed(1)  # as above: resume alone, not initialisation
    straight = train(mnist_200, two, tmp_path / "straight")
    torch.manual_seed(1)
    train(mnist_200, replace(two, epochs=1), tmp_path / "resumed")
    resumed = train(mnist_200, two, tmp_path / "resumed", resume=True)
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")
    images = mnist_200.x_test[:200]
    np.testing.assert_allclose(onnx_logits(resumed.model_path, images), onnx_logits(straight.model_path, images),
                               atol=1e-6, rtol=0)


def test_same_seed_gives_the_same_model(mnist_200, tmp_path):
    """--seed alone fixes the result, whatever the process did before (two runs in one process here;
    in a fresh process, whatever the caller drew from torch's RNG first)."""
    cfg = TrainConfig.recipe("seed", epochs=1, **TINY)
    torch.manual_seed(11)
    train(mnist_200, cfg, tmp_path / "a")
    torch.manual_seed(22)
    train(mnist_200, cfg, tmp_path / "b")
    _assert_same_run(tmp_path / "a", tmp_path / "b")


# ---------------------------------------------------------------- --target-acc

def test_target_acc_stops_early_on_held_out_not_test(mnist_200, tmp_path):
    """With the test labels scrambled, test accuracy is ~10%: stopping must still happen, on held-out images."""
    m = mnist_200
    scrambled = Mnist(m.x_train, m.y_train, m.x_test, (m.y_test + 1) % 10, m.source, m.path)
    # The seed's network on 1,000 images, batch 32: held-out ~0.73 after one epoch (measured), so it stops there.
    cfg = TrainConfig.recipe("seed", epochs=3, limit=1000, batch_size=32, target_acc=0.5, eval_per_epoch_early=0,
                             amp="off", threads=1)
    result = train(scrambled, cfg, tmp_path)
    assert result.summary["stopped_early"] is True
    assert result.summary["epochs"] == 1
    assert result.summary["held_out_accuracy"] >= 0.5
    assert result.summary["mnist_test_accuracy"] < 0.3
    epochs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(epochs) == result.summary["epochs"]


# ---------------------------------------------------------------- settings

def test_unknown_settings_fail_loudly():
    with pytest.raises(ValueError, match="epocs"):
        TrainConfig.recipe("lens", epocs=3)
    with pytest.raises(ValueError, match="resnet"):
        TrainConfig.recipe("resnet")
    with pytest.raises(ValueError, match="unknown architecture"):
        nets.build("resnet")
    with pytest.raises(ValueError, match="adam"):
        from digitlens.train import make_optimizer
        make_optimizer(TrainConfig(optimizer="adam"), nets.build("seed")[0])


def test_unknown_amp_mode_fails_loudly():
    """amp accepts "auto", "bf16" or "off"; a typo must not silently mean "auto"."""
    with pytest.raises(ValueError, match="fp16"):
        TrainConfig.recipe("lens", amp="fp16")


def test_seed_recipe_is_the_seeds():
    cfg = TrainConfig.recipe("seed")
    assert (cfg.arch, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("seed", "adadelta", 1.0, 128, 12)
    assert not cfg.augment and cfg.label_smoothing == 0 and cfg.ema_decay == 0
    assert TrainConfig.recipe("seed", epochs=3).epochs == 3


# ---------------------------------------------------------------- the seed's network

def test_seed_net_is_the_seeds_keras_network():
    model, spec = nets.build("seed")
    assert spec.classes == tuple(str(d) for d in range(10))
    layers = [m for m in model.modules() if not list(m.children())]
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Dropout", "Flatten", "Linear", "ReLU",
                     "Dropout", "Linear"]
    c1, c2, pool, d1, lin1, d2, lin2 = (layers[i] for i in (0, 2, 4, 5, 7, 9, 10))
    assert (c1.in_channels, c1.out_channels, c1.kernel_size, c1.stride, c1.padding) == (1, 32, (3, 3), (1, 1), (0, 0))
    assert (c2.in_channels, c2.out_channels, c2.kernel_size, c2.padding) == (32, 64, (3, 3), (0, 0))
    assert pool.kernel_size == 2 and d1.p == 0.25 and d2.p == 0.5
    assert (lin1.in_features, lin1.out_features) == (64 * 12 * 12, 128) == (9216, 128)
    assert (lin2.in_features, lin2.out_features) == (128, 10)
    assert sum(p.numel() for p in model.parameters()) == 1_199_882  # Keras' model.summary() of the seed
    assert "9216" not in inspect.getsource(nets), "the flatten size is derived, not typed in"
    x = torch.rand(3, 1, 28, 28)
    out = model.eval()(x)
    assert out.shape == (3, 10)
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1)), "the network returns logits, not probabilities"


def test_lens_net_shapes():
    model, spec = nets.build("lens")
    assert spec.classes[-1] == nets.REJECT and len(spec.classes) == 11
    assert model.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 11)


# ---------------------------------------------------------------- augment

def _batch(core_mnist, n=32):
    return torch.from_numpy(core_mnist.x_train[:n]).unsqueeze(1).float() / 255


def test_augment_shapes_range_and_reproducible(core_mnist):
    x = _batch(core_mnist)
    cfg = augment.AugmentConfig()
    a = augment.augment(x, cfg, torch.Generator().manual_seed(1))
    b = augment.augment(x, cfg, torch.Generator().manual_seed(1))
    c = augment.augment(x, cfg, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)
    assert (a.flatten(1).max(1).values > 0.3).all(), "no digit is pushed out of the field"
    assert torch.equal(x, _batch(core_mnist)), "the input batch is not modified"


NO_CHANGE = augment.AugmentConfig(rotate_deg=0.0, scale=(1.0, 1.0), shear=0.0, translate_px=0.0, elastic_alpha=0.0,
                                  elastic_p=0.0, stroke_p=0.0, blur_p=0.0, binarize_p=0.0, erase_p=0.0,
                                  gain=(1.0, 1.0))


def test_geometric_identity_when_ranges_are_zero(core_mnist):
    x = _batch(core_mnist)
    out = augment.geometric(x, NO_CHANGE, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(augment.stroke_width(x, NO_CHANGE, torch.Generator().manual_seed(0)), x)


def test_augment_identity_when_everything_is_zero(core_mnist):
    """All probabilities and ranges zero: the batch comes back unchanged (up to interpolation rounding)."""
    x = _batch(core_mnist)
    out = augment.augment(x, NO_CHANGE, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)


def test_augment_moves_ink_by_the_configured_amount(core_mnist):
    """Translation alone: each digit's centre of mass moves by at most translate_px."""
    x = _batch(core_mnist)
    only_shift = replace(NO_CHANGE, translate_px=2.0)
    out = augment.geometric(x, only_shift, torch.Generator().manual_seed(0))
    grid = torch.arange(28, dtype=torch.float32)

    def com(t):
        w = t[:, 0]
        return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2))[:, None]

    moved = (com(out) - com(x)).abs()
    assert float(moved.max()) <= 2.0 + 0.3
    assert float(moved.mean()) > 0.5


def test_calm_epochs_are_the_last_ones_and_milder(core_mnist):
    from digitlens.train import is_calm
    cfg = TrainConfig.recipe("lens", epochs=10, calm_epochs=3)
    assert [e for e in range(10) if is_calm(cfg, e)] == [7, 8, 9]
    assert not any(is_calm(TrainConfig.recipe("seed"), e) for e in range(12))
    full = augment.AugmentConfig()
    mild = augment.calm(full)
    assert mild.rotate_deg < full.rotate_deg and mild.shear < full.shear and mild.elastic_p < full.elastic_p
    assert full.scale[0] < mild.scale[0] < 1 < mild.scale[1] < full.scale[1]
    x = _batch(core_mnist)
    moved = [float((augment.augment(x, c, torch.Generator().manual_seed(1)) - x).abs().mean()) for c in (full, mild)]
    assert moved[1] < moved[0]  # the same draws, smaller changes
