"""digitlens.evaluate against ground truth built into the model and the data.

The model is a linear layer whose logit j is A * (pixel (0, j) / 255), so each crafted test image
decides the model's logits exactly: the confusion matrix, precision/recall, reject wins, confidence
and calibration error follow by hand from the construction.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from digitlens import evaluate as ev  # noqa: E402
from digitlens import modelfile  # noqa: E402

A = 4.0  # logit of a full-intensity pixel
ONE_THREAD = ev.EvalConfig(threads=1)  # tests share the CPU: no onnxruntime spin-waiting threads
ROOT = Path(__file__).resolve().parents[1]


class PixelNet(torch.nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.linear = torch.nn.Linear(28 * 28, classes, bias=False)
        with torch.no_grad():
            self.linear.weight.zero_()
            for j in range(classes):
                self.linear.weight[j, j] = A  # pixel (0, j) drives logit j

    def forward(self, x):
        return self.linear(x.flatten(1))


def export(path: Path, classes: list[str], temperature: float | None = None) -> Path:
    extra = {"temperature": temperature} if temperature is not None else None
    props = modelfile.metadata_props("pixel", classes, {"mnist_test": 0.96}, {"test": True}, "unknown", extra=extra)
    return modelfile.export_onnx(PixelNet(len(classes)), path, props)


def crafted_data():
    """100 images, 10 per digit; 3 threes read as 5, one 9 read as 4, two 7s (read right) where 'none' wins."""
    labels = np.repeat(np.arange(10), 10).astype(np.uint8)
    images = np.zeros((100, 28, 28), np.uint8)
    pred = labels.astype(int).copy()
    pred[30:33] = 5
    pred[90] = 4
    images[np.arange(100), 0, pred] = 255
    reject_rows = [70, 71]
    images[reject_rows, 0, 7] = 128
    images[reject_rows, 0, 10] = 255
    return SimpleNamespace(x_test=images, y_test=labels, source="crafted"), pred, reject_rows


DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"reject": export(d / "reject" / "model.onnx", DIGITS + ["none"]),
            "ten": export(d / "ten" / "model.onnx", DIGITS),
            "calibrated": export(d / "calibrated" / "model.onnx", DIGITS + ["none"], temperature=2.0)}


def test_metrics_match_the_construction(models, tmp_path):
    data, pred, reject_rows = crafted_data()
    report = ev.evaluate(models["reject"], data, tmp_path / "out")
    assert report["accuracy"] == pytest.approx(0.96)
    assert report["errors"] == 4
    cm = np.array(report["confusion"])
    expected = np.diag([10] * 10)
    expected[3, 3], expected[3, 5] = 7, 3
    expected[9, 9], expected[9, 4] = 9, 1
    assert (cm == expected).all()
    rows = {r["digit"]: r for r in report["per_class"]}
    assert rows["5"]["precision"] == pytest.approx(10 / 13) and rows["5"]["recall"] == 1.0
    assert rows["3"]["precision"] == 1.0 and rows["3"]["recall"] == pytest.approx(0.7)
    assert rows["4"]["precision"] == pytest.approx(10 / 11) and rows["9"]["recall"] == pytest.approx(0.9)
    assert rows["3"]["f1"] == pytest.approx(2 * 0.7 / 1.7)
    assert all(r["support"] == 10 for r in report["per_class"])
    # the reject class wins on exactly the two crafted 7s, whose 10-way answer is still right
    assert report["reject"]["wins"] == 2 and report["reject"]["wins_on_correct_digits"] == 2
    assert report["reject"]["rate"] == pytest.approx(0.02)
    # confidence: ordinary images give e^A / (e^A + 10); the two reject images give their 7 a small share
    c = math.exp(A) / (math.exp(A) + 10)
    a7 = A * 128 / 255
    c7 = math.exp(a7) / (math.exp(A) + math.exp(a7) + 9)
    conf = report["confidence"]
    assert conf["temperature"] == 1.0
    assert conf["mean"] == pytest.approx((98 * c + 2 * c7) / 100, abs=1e-5)
    assert conf["ece"] == pytest.approx(0.98 * abs(94 / 98 - c) + 0.02 * abs(1 - c7), abs=1e-5)
    assert conf["mean_wrong"] == pytest.approx(c, abs=1e-5)
    # the misclassified list: four mistakes, true and predicted labels as constructed
    mis = report["misclassified"]
    assert mis["count"] == 4
    assert sorted((m["true"], m["pred"]) for m in mis["shown"]) == [(3, 5), (3, 5), (3, 5), (9, 4)]
    assert sorted(m["index"] for m in mis["shown"]) == [30, 31, 32, 90]
    # report.json is what evaluate returned
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["accuracy"] == report["accuracy"] and saved["confusion"] == report["confusion"]


def test_ten_class_model_has_no_reject_section_and_temperature_is_used(models, tmp_path):
    data, _, _ = crafted_data()
    ten = ev.evaluate(models["ten"], data, tmp_path / "ten")
    assert ten["reject"] is None
    assert ten["accuracy"] == pytest.approx(0.96)
    cal = ev.evaluate(models["calibrated"], data, tmp_path / "cal")
    t = 2.0
    c = math.exp(A / t) / (math.exp(A / t) + 10)
    a7 = A * 128 / 255
    c7 = math.exp(a7 / t) / (math.exp(A / t) + math.exp(a7 / t) + 9)
    assert cal["confidence"]["temperature"] == t
    assert cal["confidence"]["mean"] == pytest.approx((98 * c + 2 * c7) / 100, abs=1e-5)
    raw = math.exp(A) / (math.exp(A) + 10)
    assert cal["confidence"]["uncalibrated"]["mean"] == pytest.approx((98 * raw + 2 * (math.exp(a7) / (math.exp(A) + math.exp(a7) + 9))) / 100, abs=1e-5)


def _png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable image"
    return img


def test_plots_written_and_curves_from_the_log_beside_the_model(models, tmp_path):
    data, _, _ = crafted_data()
    log = Path(models["reject"]).parent / "log.jsonl"
    entries = [{"kind": "probe", "epoch": 0, "step": 10, "train_seconds": 5.0, "test_acc": 0.95},
               {"kind": "epoch", "epoch": 1, "step": 20, "train_seconds": 10.0, "loss": 0.5, "train_acc": 0.9,
                "val_acc": 0.97, "test_acc": 0.975, "lr": 0.1},
               {"kind": "epoch", "epoch": 2, "step": 40, "train_seconds": 20.0, "loss": 0.2, "train_acc": 0.97,
                "val_acc": 0.992, "test_acc": 0.993, "lr": 0.0}]
    log.write_text("\n".join(json.dumps(e) for e in entries) + "\nnot json\n")
    try:
        report = ev.evaluate(models["reject"], data, tmp_path / "out")
    finally:
        log.unlink()
    out = tmp_path / "out"
    for name in ("confusion.png", "misclassified.png", "curves.png"):
        img = _png(out / name)
        assert img.shape[0] > 200 and img.shape[1] > 200 and img.std() > 5, name
    assert report["curves"]["epochs"] == 2 and report["curves"]["entries"] == 3
    assert report["files"]["curves"] == str(out / "curves.png")


def test_curves_skipped_without_a_log_and_taken_from_an_explicit_path(models, tmp_path):
    data, _, _ = crafted_data()
    report = ev.evaluate(models["ten"], data, tmp_path / "none")
    assert report["files"]["curves"] is None and "no training log" in report["curves"]["skipped"]
    assert not (tmp_path / "none" / "curves.png").exists()
    log = tmp_path / "elsewhere.jsonl"
    log.write_text(json.dumps({"kind": "epoch", "epoch": 1, "step": 5, "train_seconds": 3.0, "loss": 0.3,
                               "train_acc": 0.9, "val_acc": 0.95, "test_acc": 0.96, "lr": 0.1}) + "\n")
    report = ev.evaluate(models["ten"], data, tmp_path / "given", log_path=log)
    assert report["curves"]["epochs"] == 1
    _png(tmp_path / "given" / "curves.png")


def test_no_mistakes_still_draws_the_grid(models, tmp_path):
    labels = np.arange(10).astype(np.uint8)
    images = np.zeros((10, 28, 28), np.uint8)
    images[np.arange(10), 0, labels] = 255
    report = ev.evaluate(models["ten"], SimpleNamespace(x_test=images, y_test=labels), tmp_path)
    assert report["accuracy"] == 1.0 and report["misclassified"]["count"] == 0
    _png(tmp_path / "misclassified.png")


def test_format_report_lists_accuracy_and_every_digit(models, tmp_path):
    data, _, _ = crafted_data()
    text = ev.format_report(ev.evaluate(models["reject"], data, tmp_path))
    assert "96.00%" in text and "4 errors" in text
    assert "'none' wins on 2" in text
    lines = text.splitlines()
    row3 = next(line for line in lines if line.split()[:1] == ["3"])
    assert row3.split()[1:3] == ["100.00%", "70.00%"]  # precision, recall of digit 3
    row5 = next(line for line in lines if line.split()[:1] == ["5"])
    assert row5.split()[1:3] == ["76.92%", "100.00%"]


def test_calibration_error_of_known_bins():
    conf = np.array([0.95] * 10 + [0.55] * 10)
    correct = np.array([True] * 9 + [False] + [True] * 5 + [False] * 5)
    ece, bins = ev.calibration(conf, correct, 10)
    assert ece == pytest.approx(0.5 * abs(0.9 - 0.95) + 0.5 * abs(0.5 - 0.55))
    assert [b["count"] for b in bins] == [10, 10]


def test_bad_model_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    data, _, _ = crafted_data()
    with pytest.raises(modelfile.ModelError, match="bad.onnx"):
        ev.evaluate(bad, data, tmp_path / "out")


def test_evaluate_runs_without_torch(models, tmp_path):
    data, _, _ = crafted_data()
    np.savez(tmp_path / "data.npz", x=data.x_test, y=data.y_test)
    code = f"""
import sys, json
sys.modules['torch'] = None
import numpy as np
from types import SimpleNamespace
from digitlens import evaluate
d = np.load({str(tmp_path / 'data.npz')!r})
r = evaluate.evaluate({str(models['reject'])!r}, SimpleNamespace(x_test=d['x'], y_test=d['y']), {str(tmp_path / 'out')!r})
assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules if sys.modules[m] is not None)
print(json.dumps(r['accuracy']))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == pytest.approx(0.96)


SHIPPED = ROOT / "digitlens" / "models" / "lens.onnx"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="the shipped model is not there yet")
def test_shipped_model_accuracy_matches_its_metadata(tmp_path):
    from digitlens.data import DataError, load_mnist

    try:
        mnist = load_mnist(mirrors=False)
    except DataError as e:
        pytest.skip(f"MNIST not available offline: {e}")
    report = ev.evaluate(SHIPPED, mnist, tmp_path, config=ONE_THREAD)
    claimed = report["model"]["metadata_accuracy"]["mnist_test"]
    assert report["data"]["images"] == 10000
    assert abs(report["accuracy"] - claimed) <= 0.0005  # ONNX vs torch: at most a few borderline digits differ
    assert sum(r["support"] for r in report["per_class"]) == 10000
