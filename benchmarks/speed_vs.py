"""The reader's speed at HEAD against an earlier commit's, side by side in one process.

This machine is shared and its speed drifts between runs (the same network has classified 4,300 to 5,700
digits per second on one core on different days), so a speed figure from another day says little about a
change. This script checks out --base into a temporary git worktree, loads both readers (each with the
model shipped at its commit), and reads the same generated scenes with each in turn, alternating image by
image on one thread, so both see the same machine. Writes benchmarks/results/speed-vs-<base>.json.

    .venv/bin/python benchmarks/speed_vs.py --base c2ee522                 # 640x480 and 1280x720 scenes
    .venv/bin/python benchmarks/speed_vs.py --base c2ee522 --scenes 10    # quicker
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SIZES = ((640, 480), (1280, 720))


def load_reader(root: Path):
    """A Recognizer imported from the package at `root` (a fresh import each time, one thread)."""
    for name in [k for k in sys.modules if k == "digitlens" or k.startswith("digitlens.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        from digitlens.recognizer import ReaderConfig, Recognizer
        return Recognizer.load(None, ReaderConfig(intra_op_threads=1))
    finally:
        sys.path.remove(str(root))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the earlier commit to compare with")
    ap.add_argument("--scenes", type=int, default=20, help="scenes per kind and size (default 20)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7, help="scene seed (dev scenes of training digits)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    from scenes import KINDS, make_scene, scene_rng

    from digitlens.data import load_mnist
    base = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    mnist = load_mnist(mirrors=False)
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            readers = {base: load_reader(tree), head: load_reader(ROOT)}
            out = {}
            for w, h in SIZES:
                images = [make_scene(k, scene_rng(args.seed, k, i), split="train", mnist=mnist, size=(w, h))[0]
                          for k in KINDS for i in range(args.scenes)]
                ms: dict[str, list[float]] = {name: [] for name in readers}
                for _ in range(args.repeats):
                    for img in images:
                        for name, reader in readers.items():
                            t = time.perf_counter()
                            reader.read(img)
                            ms[name].append((time.perf_counter() - t) * 1000)
                med = {name: float(np.median(v)) for name, v in ms.items()}
                out[f"{w}x{h}"] = {"images": len(images), "reads_each": len(ms[head]),
                                   "median_ms": {k: round(v, 2) for k, v in med.items()},
                                   "head_over_base": round(med[head] / med[base], 3)}
                print(f"{w}x{h}: {base} {med[base]:.2f} ms, {head} {med[head]:.2f} ms (x{med[head] / med[base]:.3f})")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    result = {"benchmark": "speed-vs", "command": f"python benchmarks/speed_vs.py --base {args.base}"
              + (f" --scenes {args.scenes}" if args.scenes != 20 else ""), "machine": info, "base": base, "head": head,
              "scene_seed": args.seed, "threads": 1, "sizes": out,
              "note": "both readers alternate image by image in one process, each with the model shipped at its commit"}
    path = RESULTS / f"speed-vs-{args.base}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
