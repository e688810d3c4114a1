"""Benchmark one training step of a network in the two memory layouts, side by side, in one process.

Training keeps its tensors in NHWC (torch.channels_last, see digitlens.train.LAYOUT). This measures why: the
same forward, loss, backward and optimiser step, NCHW against NHWC, with bf16 autocast (as training runs on a
CPU with AMX or AVX512-BF16) and in fp32. Rounds alternate between the variants, so a noisy neighbour slows
them alike; the figure is the median over rounds. Writes benchmarks/results/train-step-<arch>.json.

  python benchmarks/train_step.py                    # the lens net, batch 128 (training's own)
  python benchmarks/train_step.py --arch seed --rounds 9
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

from common import machine_info  # noqa: E402
from digitlens import nets  # noqa: E402
from digitlens.train import LAYOUT, TrainConfig, fast_layout, make_optimizer, train_step, use_bf16  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="lens")
    p.add_argument("--batch", type=int, help="default: the architecture's training batch")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per variant (default %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="steps per round (default %(default)s)")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    cfg = TrainConfig.recipe(args.arch)  # its optimiser, batch and label smoothing, as training uses them
    args.batch = args.batch or cfg.batch_size
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28)
    bf16_ok = use_bf16(cfg, torch.device("cpu"))
    variants = {}
    for layout in ("nchw", "nhwc"):
        for amp in (["bf16"] if bf16_ok else []) + ["fp32"]:
            model, spec = nets.build(args.arch)
            if layout == "nhwc":
                model.to(memory_format=LAYOUT)
            opt = make_optimizer(cfg, model)
            inp = fast_layout(x) if layout == "nhwc" else x
            variants[f"{layout}-{amp}"] = (model, opt, inp, amp == "bf16", [])
    y = torch.randint(0, len(spec.classes), (args.batch,))

    def step(model, opt, inp, bf16):
        train_step(model, opt, inp, y, cfg.label_smoothing, bf16)

    for model, opt, inp, bf16, _ in variants.values():  # warm-up: oneDNN picks and caches its kernels
        for _ in range(5):
            step(model, opt, inp, bf16)
    for r in range(args.rounds):
        for name, (model, opt, inp, bf16, times) in variants.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                step(model, opt, inp, bf16)
            times.append((time.perf_counter() - t) / args.steps * 1000)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[4][-1]:.1f} ms" for k, v in variants.items()),
              file=sys.stderr)
    ms = {k: round(statistics.median(v[4]), 2) for k, v in variants.items()}
    result = {"benchmark": "train_step", "command": "python benchmarks/train_step.py " + " ".join(sys.argv[1:]),
              "machine": machine_info(), "arch": args.arch, "batch": args.batch, "threads": torch.get_num_threads(),
              "rounds": args.rounds, "steps_per_round": args.steps, "median_ms_per_step": ms,
              "rounds_ms": {k: [round(t, 2) for t in v[4]] for k, v in variants.items()},
              "nhwc_speedup": {amp: round(ms[f"nchw-{amp}"] / ms[f"nhwc-{amp}"], 3)
                               for amp in ("bf16", "fp32") if f"nchw-{amp}" in ms}}
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"train-step-{args.arch}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in ms.items():
        print(f"{k:>10}: {v:7.1f} ms per step (median of {args.rounds})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
