"""Benchmark the reader on single-digit images as people upload them, not as photos of pages.

MNIST test digits, each given to `Recognizer.read` four ways:
  mnist-28       the 28x28 MNIST image itself (white ink on black)
  x10            the same scaled up to 280x280 (white on black)
  x10-inverted   280x280, dark ink on white paper
  tight-crop     280x280 inverted, then cropped to the ink with a 4 px margin (ink against the edges)
A reading counts as right when it is exactly the digit. Also the classifier alone on the 28x28 images,
for reference. Writes benchmarks/results/crops-mnist.json.

    .venv/bin/python benchmarks/crops.py            # 1,000 test digits
    .venv/bin/python benchmarks/crops.py --n 200    # quicker
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WAYS = ("mnist-28", "x10", "x10-inverted", "tight-crop")


def variants(img28: np.ndarray) -> dict[str, np.ndarray]:
    big = cv2.resize(img28, (280, 280), interpolation=cv2.INTER_CUBIC)
    inverted = 255 - big
    ys, xs = np.nonzero(big > 60)
    tight = inverted[max(0, ys.min() - 4):ys.max() + 5, max(0, xs.min() - 4):xs.max() + 5]
    return {"mnist-28": img28, "x10": big, "x10-inverted": inverted, "tight-crop": tight}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="MNIST test digits (the first N; default 1000)")
    ap.add_argument("--out", type=Path, default=RESULTS / "crops-mnist.json")
    ap.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from digitlens import Recognizer
    from digitlens.data import load_mnist
    from digitlens.recognizer import ReaderConfig

    cv2.setNumThreads(1)
    info = machine_info()
    mnist = load_mnist()
    reader = Recognizer.load(args.model, ReaderConfig(intra_op_threads=1))
    right = {w: 0 for w in WAYS}
    empty = {w: 0 for w in WAYS}
    ms = {w: [] for w in WAYS}
    n = min(args.n, len(mnist.x_test))
    for i in tqdm(range(n), desc="digits", unit="digit"):
        label = str(int(mnist.y_test[i]))
        for way, image in variants(mnist.x_test[i]).items():
            t = time.perf_counter()
            text = reader.read(image).text
            ms[way].append((time.perf_counter() - t) * 1000)
            right[way] += text == label
            empty[way] += text == ""
    probs = reader.classify(mnist.x_test[:n])
    classifier = float(np.mean(probs[:, :10].argmax(1) == mnist.y_test[:n]))
    result = {
        "benchmark": "crops", "command": "python benchmarks/crops.py" + (f" --n {args.n}" if args.n != 1000 else "")
        + (f" --model {args.model}" if args.model else "")
        + (f" --out {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}" if args.out != RESULTS / "crops-mnist.json" else ""),
        "machine": info, "model": reader.metadata.get("sha256"), "digits": n,
        "read_exactly": {w: round(right[w] / n, 4) for w in WAYS},
        "read_nothing": {w: round(empty[w] / n, 4) for w in WAYS},
        "median_ms": {w: round(float(np.median(ms[w])), 2) for w in WAYS},
        "classifier_alone_28x28": round(classifier, 4),
        "note": "exact: the reading is the one digit; the classifier figure is the network on the same 28x28 "
                "images without detection (MNIST's own test accuracy on these digits)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for w in WAYS:
        print(f"{w:14s} read exactly {right[w] / n:6.1%}  nothing {empty[w] / n:6.1%}  median {np.median(ms[w]):5.1f} ms")
    print(f"classifier alone on the 28x28 images: {classifier:.1%}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
