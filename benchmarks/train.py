"""Benchmark training: wall time, time-to-accuracy and final MNIST test accuracy, per architecture.

Runs the real `digitlens train` for each architecture in this process and writes
benchmarks/results/train-<arch>-<device>.json. Usage:

  python benchmarks/train.py --arch lens            # the default network (~21 min of training on 2 cores)
  python benchmarks/train.py --arch seed            # the seed's network
  python benchmarks/train.py --arch lens --ship     # also install the model as the shipped one
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitlens import cli_train  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="lens")
    p.add_argument("--out", type=Path, help="run folder (default runs/<arch>)")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--ship", action="store_true", help="copy the model and its card to digitlens/models/")
    p.add_argument("--ship-run", action="store_true",
                   help="do not train: ship the finished run in --out, described by its results JSON")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="more `digitlens train` options after --")
    args = p.parse_args()
    out = args.out or ROOT / "runs" / args.arch
    if args.ship_run:
        device = "gpu" if json.loads((out / "summary.json").read_text())["device"].startswith("cuda") else "cpu"
        ship(args.arch, out, json.loads((args.results / f"train-{args.arch}-{device}.json").read_text()))
        return 0
    extra = [a for a in args.extra if a != "--"]
    parser = argparse.ArgumentParser(prog="digitlens train")
    cli_train.add_train(parser)
    train_args = parser.parse_args(["--arch", args.arch, "--out", str(out), *extra])
    start = time.perf_counter()
    rc = cli_train.run_train(train_args)
    wall = time.perf_counter() - start
    if rc != 0:
        return rc
    summary = json.loads((out / "summary.json").read_text())
    device = "gpu" if "gpu" in summary["machine"] and summary["device"].startswith("cuda") else "cpu"
    result = {
        "benchmark": "train", "command": "python benchmarks/train.py " + " ".join(sys.argv[1:]),
        "machine": summary["machine"], "device": summary["device"], "threads": summary["threads"],
        "bf16": summary["bf16"], "arch": summary["arch"], "epochs": summary["epochs"],
        "parameters": summary["parameters"], "wall_seconds": round(wall, 1),
        "train_seconds": summary["train_seconds"],
        "time_to_accuracy_s": summary["time_to_accuracy_s"],
        "mnist_test_accuracy": summary["mnist_test_accuracy"], "held_out_accuracy": summary["held_out_accuracy"],
        "note": "train_seconds excludes the test-accuracy probes; wall_seconds includes them and the export",
        "config": summary["config"],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"train-{args.arch}-{device}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    if args.ship:
        ship(args.arch, out, result)
    return 0


def ship(arch: str, out: Path, result: dict) -> None:
    """Install a run's model as the shipped one, with its card (SHA-256 checked at load) and its training log."""
    from common import install_model

    card = {"model": f"{arch}.onnx", "made_by": result["command"], **{k: result[k] for k in (
        "arch", "epochs", "parameters", "train_seconds", "time_to_accuracy_s", "mnist_test_accuracy",
        "held_out_accuracy", "machine", "config")}}
    install_model(arch, out / "model.onnx", card, {f"{arch}.log.jsonl": out / "log.jsonl"})


if __name__ == "__main__":
    sys.exit(main())
