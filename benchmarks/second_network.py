"""Would a second network help the reader? Read its own crops with the shipped network and a candidate, apart and
together, and count the mistakes.

The reader's misreads in numbers are mostly unsure (on development scenes, about half of the wrong digits are
read under 0.9), so a second opinion on unsure crops looks like a cheap gain: a second network reads only the
crops the first reads under a bar, and the reading is the mean of the two. This script measures that before any
reader code is written. It cuts development scenes (MNIST *training* digits, never the benchmark's seed 2026)
with the reader's own first stages (Recognizer.candidate_crops), labels each crop as benchmarks/finetune.py does
(a digit, "not a digit", or left out: pieces and pairs), and reads every labelled crop with both networks:

  whole  the first look's crop of each region (what the reader reads first)
  parts  the parts of its cuts into touching digits

For each, the digits read as another class and the not-digits read as a digit, by the first network, the second,
and their mean where the first is under each bar; and, for whole crops, what the reader's own bar
(ClassifyConfig.min_confidence) keeps: digits right, wrong, missed, and not-digits taken for digits.

    .venv/bin/python benchmarks/second_network.py --second runs/lensB-ft/model.onnx --out second-network.json

What it found is in benchmarks/results/second-network-rejected.json (a 12-epoch network of another seed,
fine-tuned on the current reader's crops): no gain on whole crops, so no second network was added.
"""
from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dev_ab import BENCHMARK_SEED  # noqa: E402

BARS = (0.9, 0.95, 0.99)
_worker: dict[str, Any] = {}


def _init(second: str) -> None:
    import cv2

    from digitlens import Recognizer
    from digitlens.data import load_mnist
    from digitlens.recognizer import ReaderConfig

    cv2.setNumThreads(1)
    _worker["first"] = Recognizer.load(config=ReaderConfig(intra_op_threads=1))
    _worker["second"] = Recognizer.load(second, ReaderConfig(intra_op_threads=1))
    _worker["mnist"] = load_mnist(mirrors=False)


def _scene(job: tuple[str, int, int]) -> list[tuple[int, bool, list[float], list[float]]]:
    """(label, whole, first's probabilities, second's) per labelled crop of one development scene."""
    import scenes
    from finetune import HarvestConfig, labelled_rows

    kind, seed, index = job
    first, second = _worker["first"], _worker["second"]
    image, truth = scenes.make_scene(kind, scenes.scene_rng(seed, kind, index), split="train", mnist=_worker["mnist"])
    _, scale, crops, options = first.candidate_crops(image)
    kept = labelled_rows(options, scale, truth["digits"], HarvestConfig())
    if not kept:
        return []
    batch = np.stack([crops[row] for row, _, _ in kept])
    return [(label, whole, a.tolist(), b.tolist())
            for (_, label, whole), a, b in zip(kept, first.classify(batch), second.classify(batch))]


def mistakes(p: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """Digits read as another class (argmax over all classes) and not-digits (label 10) read as a digit."""
    pred = p.argmax(axis=1)
    digit, none = labels < 10, labels == 10
    return {"digits": int(digit.sum()), "digits_wrong": int((pred[digit] != labels[digit]).sum()),
            "not_digits": int(none.sum()), "not_digits_read_as_digit": int((pred[none] != 10).sum())}


def at_bar(p: np.ndarray, labels: np.ndarray, bar: float) -> dict[str, int]:
    """What a bar on the digit's probability keeps: digits right, wrong and missed, not-digits taken for digits."""
    kept = p[:, :10].max(axis=1) >= bar
    pred = p[:, :10].argmax(axis=1)
    digit, none = labels < 10, labels == 10
    return {"right": int((kept & digit & (pred == labels)).sum()), "wrong": int((kept & digit & (pred != labels)).sum()),
            "missed": int((~kept & digit).sum()), "not_digits_kept": int((kept & none).sum())}


def summarise(rows: list[tuple[int, bool, list[float], list[float]]], min_confidence: float) -> dict[str, Any]:
    labels = np.array([r[0] for r in rows], np.int64)
    whole = np.array([r[1] for r in rows], bool)
    p1 = np.array([r[2] for r in rows], np.float32)
    p2 = np.array([r[3] for r in rows], np.float32)
    out: dict[str, Any] = {}
    for name, m in (("whole", whole), ("parts", ~whole)):
        group: dict[str, Any] = {"first": mistakes(p1[m], labels[m]), "second": mistakes(p2[m], labels[m])}
        for bar in BARS:
            unsure = p1[m].max(axis=1) < bar
            mean = p1[m].copy()
            mean[unsure] = 0.5 * (mean[unsure] + p2[m][unsure])
            group[f"mean_under_{bar}"] = {**mistakes(mean, labels[m]), "share_read_twice": round(float(unsure.mean()), 4)}
        out[name] = group
    unsure = p1.max(axis=1) < max(BARS)
    mean = p1.copy()
    mean[unsure] = 0.5 * (mean[unsure] + p2[unsure])
    out["whole_at_reader_bar"] = {"bar": min_confidence, "first": at_bar(p1[whole], labels[whole], min_confidence),
                                  f"mean_under_{max(BARS)}": at_bar(mean[whole], labels[whole], min_confidence)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--second", type=Path, required=True, help="the candidate second network (a model file)")
    p.add_argument("--seeds", default="7,9", help="development scene seeds (never 2026)")
    p.add_argument("--kinds", default="numbers,single,empty")
    p.add_argument("--n", type=int, default=200, help="scenes per kind and seed")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="results JSON (default: print only)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if BENCHMARK_SEED in seeds:
        raise SystemExit(f"seed {BENCHMARK_SEED} is the reading benchmark's: development seeds only")
    if not args.second.is_file():
        raise SystemExit(f"{args.second}: no such model file")

    from tqdm import tqdm

    from common import machine_info
    from digitlens import Recognizer
    from digitlens.recognizer import ReaderConfig

    first = Recognizer.load(config=ReaderConfig(intra_op_threads=1))
    second = Recognizer.load(args.second, ReaderConfig(intra_op_threads=1))  # checked here, before the pool
    jobs = [(k, s, i) for k in args.kinds.split(",") for s in seeds for i in range(args.n)]
    with Pool(args.processes, _init, (str(args.second),)) as pool:
        rows = [r for out in tqdm(pool.imap_unordered(_scene, jobs, chunksize=4), total=len(jobs), unit="scene")
                for r in out]
    result = {"benchmark": "second-network", "command": "python benchmarks/second_network.py " + " ".join(sys.argv[1:]),
              "machine": machine_info(), "seeds": seeds, "kinds": args.kinds.split(","), "scenes_per_kind": args.n,
              "first": {"path": first.model.path, "sha256": first.model.sha256,
                        "mnist_test_accuracy": first.metadata.get("mnist_test_accuracy")},
              "second": {"path": str(args.second), "sha256": second.model.sha256,
                         "mnist_test_accuracy": second.metadata.get("mnist_test_accuracy")},
              "crops": len(rows), **summarise(rows, first.config.classify.min_confidence)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
