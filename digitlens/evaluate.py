"""Evaluation on the MNIST test split: accuracy, per-class metrics, confusion, calibration, plots.

Runs on the deployable model file through onnxruntime (no torch), so it measures exactly what
`read`, `live` and `serve` will run. Accuracy is 10-way: a reject ("not a digit") class, if the
model has one, is ignored for the prediction and reported separately (how often it would win on
real digits). Confidence is the probability the model gives its predicted digit, softmax over all
its classes at the model's calibrated temperature (metadata extra.temperature, else 1), as the
recognizer reports it.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitlens.modelfile import DIGIT_CLASSES, ModelError, load_model

N_DIGITS = len(DIGIT_CLASSES)


@dataclass(frozen=True)
class EvalConfig:
    ece_bins: int = 15  # equal-width confidence bins for the expected calibration error (Guo et al. 2017)
    batch: int = 2000  # crops per onnxruntime call: amortises call overhead, ~6 MB of float32 input
    max_misclassified: int = 100  # digits drawn in misclassified.png, most confident mistakes first
    grid_columns: int = 10  # digits per row in misclassified.png
    dpi: int = 120  # resolution of every PNG
    threads: int = 0  # onnxruntime intra-op threads; 0 = all cores (1 keeps a shared, busy machine responsive)
    accuracy_levels: tuple[float, ...] = (0.99, 0.995, 0.997)  # reference lines on the curves (time-to-accuracy)
    min_error_percent: float = 0.01  # error-rate floor of the curves' log axis (a perfect score is drawn here)


# ---------------------------------------------------------------- metrics (pure numpy)

def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int = N_DIGITS) -> np.ndarray:
    """(n, n) int64 counts: rows are true labels, columns predictions."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def per_class_metrics(cm: np.ndarray) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined, as sklearn's zero_division=0)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    rows = []
    for k in range(len(cm)):
        precision = tp[k] / predicted[k] if predicted[k] else 0.0
        recall = tp[k] / support[k] if support[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"digit": DIGIT_CLASSES[k] if k < N_DIGITS else str(k), "precision": float(precision),
                     "recall": float(recall), "f1": float(f1), "support": int(support[k])})
    return rows


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int) -> tuple[float, list[dict[str, Any]]]:
    """Expected calibration error over equal-width bins, and the bins (for a reliability diagram)."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    n = len(confidence)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin k holds (edges[k], edges[k+1]]; confidence 0 goes to the first bin
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    table = []
    for k in range(bins):
        members = index == k
        count = int(members.sum())
        if not count:
            continue
        acc = float(correct[members].mean())
        conf = float(confidence[members].mean())
        ece += count / n * abs(acc - conf)
        table.append({"low": float(edges[k]), "high": float(edges[k + 1]), "count": count, "accuracy": acc,
                      "confidence": conf})
    return float(ece), table


def _model_temperature(metadata: dict[str, Any]) -> float:
    extra = metadata.get("extra")
    t = extra.get("temperature") if isinstance(extra, dict) else None
    try:
        t = float(t)
    except (TypeError, ValueError):
        return 1.0
    return t if math.isfinite(t) and t > 0 else 1.0


def predict(model, images: np.ndarray, batch: int) -> np.ndarray:
    chunks = [model.logits(images[i:i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, len(model.classes)), np.float32)


# ---------------------------------------------------------------- training log

def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a training log.jsonl; lines that are not JSON objects are skipped."""
    entries = []
    for line in Path(path).read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("kind") in ("probe", "epoch"):
            entries.append(entry)
    return entries


# ---------------------------------------------------------------- evaluation

def evaluate(model_path: str | Path, mnist, out_dir: str | Path, log_path: str | Path | None = None,
             config: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Measure the model on mnist.x_test / mnist.y_test; write report.json and the PNGs to out_dir; return the report.

    log_path: the training log.jsonl for curves.png (default: log.jsonl beside the model; skipped when absent).
    Raises ModelError for a model file that cannot be loaded.
    """
    t_start = time.perf_counter()
    model_path = Path(model_path)
    out_dir = Path(out_dir)
    model = load_model(model_path, threads=config.threads)
    images = np.asarray(mnist.x_test)
    labels = np.asarray(mnist.y_test).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"test images must be (N, 28, 28) with N labels; got {images.shape} and {labels.shape}")

    t0 = time.perf_counter()
    logits = predict(model, images, config.batch)
    inference_s = time.perf_counter() - t0
    if logits.shape != (len(images), len(model.classes)):
        raise ModelError(f"{model_path}: output shape {logits.shape} does not match its {len(model.classes)} classes")

    temperature = _model_temperature(model.metadata)
    probs = softmax(logits, temperature)
    pred = logits[:, :N_DIGITS].argmax(axis=1)
    confidence = probs[np.arange(len(pred)), pred]
    correct = pred == labels
    n = len(labels)
    accuracy = float(correct.mean()) if n else 0.0

    cm = confusion_matrix(labels, pred)
    per_class = per_class_metrics(cm)
    macro = {k: float(np.mean([row[k] for row in per_class])) for k in ("precision", "recall", "f1")}
    ece, bins = calibration(confidence, correct, config.ece_bins)
    conf_report: dict[str, Any] = {
        "definition": "probability of the predicted digit, softmax over all classes at the model's temperature",
        "temperature": temperature, "mean": float(confidence.mean()) if n else 0.0,
        "mean_correct": float(confidence[correct].mean()) if correct.any() else None,
        "mean_wrong": float(confidence[~correct].mean()) if (~correct).any() else None,
        "ece": ece, "bins": bins}
    if temperature != 1.0:
        raw = softmax(logits, 1.0)[np.arange(n), pred]
        conf_report["uncalibrated"] = {"mean": float(raw.mean()) if n else 0.0,
                                       "ece": calibration(raw, correct, config.ece_bins)[0]}

    reject = None
    if len(model.classes) > N_DIGITS:
        wins = logits.argmax(axis=1) == N_DIGITS
        reject = {"class": model.classes[N_DIGITS], "wins": int(wins.sum()), "rate": float(wins.mean()) if n else 0.0,
                  "wins_on_correct_digits": int((wins & correct).sum()),
                  "mean_probability": float(probs[:, N_DIGITS].mean()) if n else 0.0}

    wrong = np.flatnonzero(~correct)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]  # most confident mistakes first
    shown = wrong[:config.max_misclassified]
    examples = [{"index": int(i), "true": int(labels[i]), "pred": int(pred[i]), "confidence": float(confidence[i])}
                for i in shown]

    meta = model.metadata
    report: dict[str, Any] = {
        "model": {"path": str(model_path), "sha256": model.sha256, "arch": meta.get("arch"),
                  "classes": list(model.classes), "version": meta.get("version"),
                  "metadata_accuracy": meta.get("mnist_test_accuracy")},
        "data": {"split": "test", "images": int(n), "source": str(getattr(mnist, "source", "unknown"))},
        "accuracy": accuracy, "errors": int(n - correct.sum()),
        "per_class": per_class, "macro": macro,
        "confusion": cm.tolist(),
        "confidence": conf_report,
        "reject": reject,
        "misclassified": {"count": int(len(wrong)), "shown": examples},
        "inference": {"seconds": round(inference_s, 3), "digits_per_second": round(n / inference_s, 1) if inference_s else None,
                      "batch": config.batch, "threads": config.threads or "all cores"},
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | None] = {"report": str(out_dir / "report.json")}
    files["confusion"] = str(plot_confusion(cm, out_dir / "confusion.png", _title(report), config))
    files["misclassified"] = str(plot_misclassified(images[shown], labels[shown], pred[shown], confidence[shown],
                                                    len(wrong), n, out_dir / "misclassified.png", config))
    if log_path is not None:
        log = Path(log_path)
    else:  # a run folder has log.jsonl beside model.onnx; the shipped models have lens.log.jsonl beside lens.onnx
        named = model_path.with_suffix(".log.jsonl")
        log = named if named.is_file() else model_path.parent / "log.jsonl"
    curves: dict[str, Any]
    if not log.is_file():
        curves = {"skipped": f"no training log at {log}"}
        files["curves"] = None
    else:
        entries = read_log(log)
        if not entries:
            curves = {"skipped": f"{log} holds no probe or epoch entries"}
            files["curves"] = None
        else:
            files["curves"] = str(plot_curves(entries, out_dir / "curves.png", _title(report), config))
            epochs = [e for e in entries if e.get("kind") == "epoch"]
            curves = {"log": str(log), "entries": len(entries), "epochs": len(epochs),
                      "train_seconds": epochs[-1].get("train_seconds") if epochs else None}
    report["curves"] = curves
    report["files"] = files
    report["elapsed_s"] = round(time.perf_counter() - t_start, 3)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _title(report: dict[str, Any]) -> str:
    return f"{report['model']['arch']} ({Path(report['model']['path']).name})"


def format_report(report: dict[str, Any]) -> str:
    """A readable summary for the terminal: accuracy, confidence, reject class and per-class precision/recall."""
    n = report["data"]["images"]
    conf = report["confidence"]
    lines = [f"model     {report['model']['path']}  (arch {report['model']['arch']}, "
             f"{len(report['model']['classes'])} classes)",
             f"accuracy  {report['accuracy']:.2%} on {n} MNIST test digits ({report['errors']} errors, 10-way)",
             f"confidence  mean {conf['mean']:.4f}, expected calibration error {conf['ece']:.2%}"
             + (f" (temperature {conf['temperature']:.3g})" if conf["temperature"] != 1.0 else "")]
    if report["reject"] is not None:
        r = report["reject"]
        lines.append(f"reject class {r['class']!r} wins on {r['wins']} real digits ({r['rate']:.2%})")
    lines += ["", f"{'digit':>5}  {'precision':>9}  {'recall':>7}  {'F1':>7}  {'support':>7}"]
    for row in report["per_class"]:
        lines.append(f"{row['digit']:>5}  {row['precision']:>9.2%}  {row['recall']:>7.2%}  {row['f1']:>7.2%}  "
                     f"{row['support']:>7}")
    m = report["macro"]
    lines.append(f"{'macro':>5}  {m['precision']:>9.2%}  {m['recall']:>7.2%}  {m['f1']:>7.2%}  {n:>7}")
    return "\n".join(lines)


# ---------------------------------------------------------------- plots (matplotlib imported here only)

def _figure(width: float, height: float):
    """A figure with its own Agg canvas: no pyplot global state, safe in any thread or headless process."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(cm: np.ndarray, path: Path, title: str, config: EvalConfig = EvalConfig()) -> Path:
    """Annotated confusion matrix; colour on a log scale so single mistakes stand out beside ~1000 hits."""
    from matplotlib.colors import LogNorm

    n = int(cm.sum())
    errors = n - int(np.trace(cm))
    fig = _figure(7.2, 6.2)
    ax = fig.add_subplot()
    shown = np.ma.masked_equal(cm, 0)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, int(cm.max()))))
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("digits (log scale)")
    top = max(1, int(cm.max()))
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                dark = math.log(cm[i, j]) > 0.6 * math.log(top) if top > 1 else True
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8 if cm[i, j] < 1000 else 7,
                        color="white" if dark else ("#b00020" if i != j else "black"))
    ticks = range(cm.shape[0])
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.set_yticks(ticks, [str(k) for k in ticks])
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    accuracy = np.trace(cm) / n if n else 0.0
    ax.set_title(f"Confusion matrix, MNIST test: {title}\naccuracy {accuracy:.2%}, {errors} errors in {n} digits",
                 fontsize=10)
    fig.savefig(path, dpi=config.dpi)
    return path


def plot_misclassified(images: np.ndarray, true: np.ndarray, pred: np.ndarray, confidence: np.ndarray,
                       total_wrong: int, total: int, path: Path, config: EvalConfig = EvalConfig()) -> Path:
    """Grid of misclassified digits, each titled "true -> predicted (confidence)"."""
    k = len(images)
    cols = config.grid_columns
    rows = max(1, math.ceil(k / cols))
    fig = _figure(cols * 1.0 + 0.4, rows * 1.15 + 0.8)
    if k == 0:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no misclassified digits among {total}", ha="center", va="center", fontsize=12)
    for i in range(k):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{true[i]}\u2192{pred[i]} ({confidence[i]:.2f})", fontsize=7.5, pad=2,
                     color="#b00020" if confidence[i] >= 0.5 else "#444444")
    more = f", the {k} most confident shown" if k < total_wrong else ""
    fig.suptitle(f"Misclassified MNIST test digits: {total_wrong} of {total}{more}\ntrue\u2192predicted (confidence)",
                 fontsize=10)
    fig.savefig(path, dpi=config.dpi)
    return path


def plot_curves(entries: list[dict[str, Any]], path: Path, title: str, config: EvalConfig = EvalConfig()) -> Path:
    """Loss per epoch, and held-out/test accuracy against training seconds and epochs.

    Accuracy is drawn as error rate on a log axis labelled in accuracy, so 90% -> 99% -> 99.7% get
    equal room: the last tenths of a percent are where networks differ.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    epochs = [e for e in entries if e.get("kind") == "epoch"]
    tests = [e for e in entries if e.get("test_acc") is not None]  # probes and epochs, in log order

    def points(rows, x, y):
        pts = [(float(r[x]), float(r[y])) for r in rows if r.get(x) is not None and r.get(y) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    def error(accs):  # percent, floored so a perfect score stays on the log axis
        return [max(config.min_error_percent, 100 * (1 - a)) for a in accs]

    fig = _figure(13.5, 4.2)
    ax_loss, ax_time, ax_epoch = fig.subplots(1, 3)
    xs, ys = points(epochs, "epoch", "loss")
    ax_loss.plot(xs, ys, "o-", color="#444444", ms=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (augmented batches)")
    ax_loss.set_title("Training loss")
    if ys and min(ys) > 0 and max(ys) / min(ys) > 10:
        ax_loss.set_yscale("log")

    errors: list[float] = []
    xs, ys = points(tests, "train_seconds", "test_acc")
    ax_time.plot(xs, error(ys), ".-", color="#c0392b", label="test (MNIST test split)")
    errors += error(ys)
    xs, ys = points(epochs, "train_seconds", "val_acc")
    ax_time.plot(xs, error(ys), "o-", color="#2471a3", ms=3, label="held-out (part of the train split)")
    errors += error(ys)
    ax_time.set_xlabel("training seconds")
    ax_time.set_title("Accuracy against training time")

    for key, colour, label in (("train_acc", "#7f8c8d", "training batches (augmented)"),
                               ("val_acc", "#2471a3", "held-out"), ("test_acc", "#c0392b", "test")):
        xs, ys = points(epochs, "epoch", key)
        ax_epoch.plot(xs, error(ys), "o-", color=colour, ms=3, label=label)
        errors += error(ys)
    ax_epoch.set_xlabel("epoch")
    ax_epoch.set_title("Accuracy per epoch")

    ticks = sorted({90, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01}  # error %, shown as accuracy
                   | {round(100 * (1 - level), 6) for level in config.accuracy_levels}, reverse=True)
    for ax in (ax_time, ax_epoch):
        ax.set_ylabel("accuracy (log scale of the error)")
        if errors:
            ax.set_yscale("log")
            low, high = min(errors), max(errors)
            ax.set_ylim(min(high * 1.3, 100), low / 1.3)  # inverted: higher accuracy is up
            ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if low / 1.3 <= t <= min(high * 1.3, 100)]))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(FuncFormatter(lambda e, _: f"{100 - e:.4g}%"))
            for level in config.accuracy_levels:
                e = 100 * (1 - level)
                if low / 1.3 < e < high * 1.3:
                    ax.axhline(e, color="#999999", lw=0.7, ls="--")  # labelled by the tick of the same value
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
    for ax in (ax_loss, ax_epoch):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_loss, ax_time, ax_epoch):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Training curves: {title}", fontsize=11)
    fig.savefig(path, dpi=config.dpi)
    return path
