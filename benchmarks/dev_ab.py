"""A/B the reader's settings on development data, side by side in one process per worker.

Every setting of the reader is chosen on development data, never on the benchmarks' seed (2026) or on MNIST
*test* digits. This script makes that data and reads it with the reader as it is ("base") and with each
variant, a set of overridden settings, and prints per seed and kind how many images each reads exactly and
which images a variant reads differently. The dev figures in commit messages ("single +1/0/+1/0 on seeds
7-10") come from runs of it.

    python benchmarks/dev_ab.py --variant 'tall={"classify.sure_union_piece_height": 1.0}'
    python benchmarks/dev_ab.py --seeds 7,8 --shrink 0.45 --variant 'off={"classify.sure_unions": false}'
    python benchmarks/dev_ab.py --source other-hand --hand-digits font --seeds 8 --n 40 --variant ...
    python benchmarks/dev_ab.py --pool held-out --seeds 7 --kinds numbers      # no variant: the base alone

Sources:
  scenes      benchmarks/scenes.py's photos (--kinds single, numbers, empty), made of MNIST *training* digits:
              all 60,000 (--pool train) or only the 5,000 held out from the network's training (--pool held-out;
              train.split's permutation), which tells whether a figure leans on digits the network learned
  other-hand  benchmarks/other_hand.py's compositor (--categories), with MNIST *training* digits or Hershey fonts
              (--hand-digits train|font)
A variant is NAME={JSON}: keys are "detect.x", "normalise.x", "classify.x", "group.x", a field of ReaderConfig
itself ("rotate_min_deg"), or "model": the path of another model file to read with (a candidate network,
'ft={"model": "runs/lens-ft/model.onnx"}'). --out writes the counts and the changed images as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SECTIONS = ("detect", "normalise", "classify", "group")
MODEL_KEY = "model"  # a variant's key naming another model file
BENCHMARK_SEED = 2026  # the reading benchmarks' own seed: never development data


def reader_config(overrides: dict[str, Any]):
    """A one-thread ReaderConfig with `overrides` ({"classify.min_confidence": 0.9, "rotate_min_deg": 0}) applied;
    ValueError naming the key for an unknown one."""
    from digitlens.recognizer import ReaderConfig

    cfg = ReaderConfig(intra_op_threads=1)
    per: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    top: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == MODEL_KEY:
            if not isinstance(value, str) or not Path(value).is_file():
                raise ValueError(f"{MODEL_KEY!r} must name a model file, got {value!r}")
            continue
        section, _, name = key.rpartition(".")
        if section and section not in SECTIONS:
            raise ValueError(f"unknown settings section {section!r} in {key!r}; choose from {SECTIONS}")
        owner = getattr(cfg, section) if section else cfg
        if name not in {f.name for f in dataclasses.fields(owner)} or name in SECTIONS:
            raise ValueError(f"unknown setting {key!r}")
        (per[section] if section else top)[name] = value
    for section, values in per.items():
        if values:
            top[section] = dataclasses.replace(getattr(cfg, section), **values)
    return dataclasses.replace(cfg, **top)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'NAME={json}' -> (NAME, overrides), checked against the settings."""
    name, sep, body = text.partition("=")
    if not sep or not name or name == "base":
        raise ValueError(f"a variant is NAME={{JSON}} with a name other than 'base', got {text!r}")
    try:
        overrides = json.loads(body)
    except json.JSONDecodeError as e:
        raise ValueError(f"variant {name!r}: not JSON ({e})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"variant {name!r}: the JSON must be an object of settings")
    reader_config(overrides)
    return name, overrides


_STATE: dict[str, Any] = {}


def _init(variants: dict[str, dict[str, Any]], source: str, pool_name: str, hand_digits: str, shrink: float) -> None:
    import cv2

    from digitlens import Recognizer
    from digitlens.data import load_mnist

    cv2.setNumThreads(1)
    model = Recognizer.load(config=reader_config({})).model
    _STATE["readers"] = {name: Recognizer.load(o[MODEL_KEY], reader_config(o)) if MODEL_KEY in o
                         else Recognizer(model, reader_config(o)) for name, o in variants.items()}
    _STATE.update(source=source, shrink=shrink)
    mnist = None if source == "other-hand" and hand_digits == "font" else load_mnist(mirrors=False)
    if source == "scenes":
        if pool_name == "held-out":  # scenes.py's split="train" reads x_train and y_train only
            from types import SimpleNamespace

            from digitlens import train as T
            _, _, x, y = T.split(mnist, T.TrainConfig())
            mnist = SimpleNamespace(x_train=x, y_train=y)
        _STATE["mnist"] = mnist
    else:
        _STATE["pool"] = None if mnist is None else [mnist.x_train[mnist.y_train == d] for d in range(10)]


def _read_one(job: tuple[int, str, int]) -> dict[str, Any]:
    seed, kind, index = job
    if _STATE["source"] == "scenes":
        import read as rb
        import scenes

        image, truth = scenes.make_scene(kind, scenes.scene_rng(seed, kind, index), split="train", mnist=_STATE["mnist"])
        if _STATE["shrink"] != 1.0:
            image, truth = rb.shrink(image, truth, _STATE["shrink"])
        out = {}
        for name, reader in _STATE["readers"].items():
            s = rb.score_reading(reader.read(image), truth)
            out[name] = {"text": s["text"], "exact": s["exact"], "pred": s["n_pred"], "tp": s["tp"]}
        return {"seed": seed, "kind": kind, "index": index, "truth": rb.expected_text(truth), "readings": out}
    import other_hand

    shot = other_hand.write(other_hand.image_rng(seed, kind, index), kind, _STATE["pool"])
    out = {}
    for name, reader in _STATE["readers"].items():
        text = " ".join(n.text for n in reader.read(shot.image).numbers)
        out[name] = {"text": text, "exact": text == shot.text}
    return {"seed": seed, "kind": kind, "index": index, "truth": shot.text, "readings": out}


def run(variants: dict[str, dict[str, Any]], seeds: list[int], kinds: list[str], n: int, source: str = "scenes",
        pool: str = "train", hand_digits: str = "train", shrink: float = 1.0, processes: int = 1,
        progress: bool = False, start: int = 0) -> dict[str, Any]:
    """Read n images per seed and kind (from index `start`) with the base reader and every variant; the counts
    per seed and kind and the images any variant reads differently from the base."""
    if BENCHMARK_SEED in seeds:
        raise ValueError(f"seed {BENCHMARK_SEED} is the benchmarks' own: choose development seeds (7-10)")
    variants = {"base": {}, **variants}
    jobs = [(s, k, i) for s in seeds for k in kinds for i in range(start, start + n)]
    args = (variants, source, pool, hand_digits, shrink)
    if processes > 1:
        with mp.get_context("spawn").Pool(processes, _init, args) as workers:
            rows = workers.imap(_read_one, jobs, chunksize=4)
            rows = list(_bar(rows, len(jobs)) if progress else rows)
    else:
        _init(*args)
        rows = [_read_one(j) for j in (_bar(jobs, len(jobs)) if progress else jobs)]
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for seed in seeds:
        for kind in kinds:
            rs = [r for r in rows if r["seed"] == seed and r["kind"] == kind]
            counts[f"{seed}/{kind}"] = {name: {"exact": sum(r["readings"][name]["exact"] for r in rs),
                                               **({"pred": sum(r["readings"][name]["pred"] for r in rs),
                                                   "tp": sum(r["readings"][name]["tp"] for r in rs)}
                                                  if source == "scenes" else {})}
                                        for name in variants}
    changed = [{"seed": r["seed"], "kind": r["kind"], "index": r["index"], "truth": r["truth"],
                "base": r["readings"]["base"]["text"],
                "variants": {name: r["readings"][name]["text"] for name in variants if name != "base"
                             and r["readings"][name]["text"] != r["readings"]["base"]["text"]}}
               for r in rows if any(r["readings"][name]["text"] != r["readings"]["base"]["text"] for name in variants)]
    return {"source": source, "pool": pool if source == "scenes" else hand_digits, "shrink": shrink, "n": n,
            "start": start,
            "seeds": seeds, "kinds": kinds, "variants": variants, "counts": counts, "changed": changed}


def _bar(items, total: int):
    from tqdm import tqdm

    return tqdm(items, total=total, unit="img", leave=False)


def report(result: dict[str, Any]) -> str:
    """The counts as a table (each variant's change from the base in brackets) and the changed images."""
    names = list(result["variants"])
    lines = ["| seed/kind | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for key, c in result["counts"].items():
        base = c["base"]["exact"]
        cells = [f"{c[n]['exact']}/{result['n']}" + (f" ({c[n]['exact'] - base:+d})" if n != "base" else "")
                 for n in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for ch in result["changed"]:
        def mark(text: str) -> str:
            return f"{text!r}{' (right)' if text == ch['truth'] else ''}"

        for name, text in ch["variants"].items():
            lines.append(f"  {name} {ch['seed']}/{ch['kind']} #{ch['index']}: truth {ch['truth']!r}, "
                         f"base {mark(ch['base'])} -> {mark(text)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=JSON", help="settings to compare")
    ap.add_argument("--source", choices=("scenes", "other-hand"), default="scenes")
    ap.add_argument("--seeds", default="7,8,9,10", help="comma-separated development seeds (default 7,8,9,10)")
    ap.add_argument("--kinds", default=None, help="scene kinds (default single,numbers,empty) or other_hand "
                    "categories (default all)")
    ap.add_argument("--n", type=int, default=300, help="images per seed and kind (default 300)")
    ap.add_argument("--start", type=int, default=0, help="index of the first image (default 0)")
    ap.add_argument("--pool", choices=("train", "held-out"), default="train", help="scenes' training digits")
    ap.add_argument("--hand-digits", choices=("train", "font"), default="train", help="other-hand's digits")
    ap.add_argument("--shrink", type=float, default=1.0, help="scenes scaled by this (0.45: digits ~25 px)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the result as JSON here")
    args = ap.parse_args(argv)
    try:
        variants = dict(parse_variant(v) for v in args.variant)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as e:
        ap.error(str(e))
    if args.source == "scenes":
        from scenes import KINDS
        choices = KINDS
    else:
        from other_hand import CATEGORIES
        choices = CATEGORIES
    kinds = [k.strip() for k in (args.kinds or ",".join(choices)).split(",") if k.strip()]
    if not kinds or any(k not in choices for k in kinds) or args.n < 1 or args.start < 0 or not seeds or not 0 < args.shrink <= 1:
        ap.error(f"kinds from {choices}, --n >= 1, --start >= 0, at least one seed, 0 < --shrink <= 1")
    if args.shrink != 1.0 and args.source != "scenes":
        ap.error("--shrink applies to scenes only")
    try:
        result = run(variants, seeds, kinds, args.n, args.source, args.pool, args.hand_digits, args.shrink,
                     max(1, args.processes), progress=True, start=args.start)
    except ValueError as e:
        ap.error(str(e))
    print(report(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": "python benchmarks/dev_ab.py " + " ".join(
            sys.argv[1:] if argv is None else argv), **result}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
