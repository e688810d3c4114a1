"""Reading benchmark: digitlens against two baselines on the same photo-like scenes, in one process.

    .venv/bin/python benchmarks/read.py            # 500 scenes of each kind (single, numbers, empty)
    .venv/bin/python benchmarks/read.py --n 100    # fewer
    .venv/bin/python benchmarks/read.py --quick    # 20 of each, a smoke test

Readers: `digitlens` (Recognizer.load(), the shipped model), `seed-whole-frame` and `classic-opencv`
(benchmarks/baselines.py, on the seed network --seed-model, default digitlens/models/seed.onnx).
Everything runs on ONE core: onnxruntime intra-op threads = 1, OpenCV threads = 1, OMP/MKL = 1.

Per reader: exact reading rate per kind (Reading.text == " ".join(truth numbers)); digit precision and
recall (a predicted digit matches a truth digit of the same value whose box it overlaps with IoU >= 0.3
or whose box holds its centre; one-to-one, greedy by IoU); location-only recall (same rule, any value:
tells detection misses from misreadings); false digits per empty page and the fraction of empty pages
read as empty; images/s and median ms per image over all scenes; median ms per 1280x720 photo (its own
scene set, each read `--repeat` times); classification throughput on batches of 256 MNIST test crops.

Writes benchmarks/results/read-<reader>.json, read-summary.json and read-failures.png (a few failures
per kind of the first reader: truth boxes green, its digits red), and prints a markdown table. For the
digitlens reader it also counts, per truth digit not read right, why (missed_digit_causes): misread, no
region, joined with a touching neighbour, or its region read whole as no digit, an unsure digit, or a sure
digit a later rule dropped.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/onnxruntime load: the budget is one core

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_info  # noqa: E402
from scenes import KINDS, draw_truth, make_scene, scene_rng  # noqa: E402

READERS = ("digitlens", "seed-whole-frame", "classic-opencv")
MATCH_IOU = 0.3  # a predicted digit box overlapping a truth box by this IoU (or centred in it) is on that digit


# ---------------------------------------------------------------- scoring (pure, tested in tests/test_scenes.py)

def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _centre_inside(p: Sequence[float], t: Sequence[float]) -> bool:
    cx, cy = p[0] + p[2] / 2, p[1] + p[3] / 2
    return t[0] <= cx <= t[0] + t[2] and t[1] <= cy <= t[1] + t[3]


def match_digits(pred: Sequence[tuple[int, Sequence[float]]], truth: Sequence[dict], min_iou: float = MATCH_IOU,
                 same_value: bool = True) -> list[tuple[int, int]]:
    """One-to-one matches (pred index, truth index): on the digit (IoU >= min_iou or the predicted box's
    centre inside the truth box) and, when same_value, of the same value. Greedy, highest IoU first."""
    pairs = []
    for i, (pd, pb) in enumerate(pred):
        for j, t in enumerate(truth):
            if same_value and int(pd) != int(t["digit"]):
                continue
            o = iou(pb, t["box"])
            if o >= min_iou or _centre_inside(pb, t["box"]):
                pairs.append((o, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_p, used_t, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def expected_text(truth: dict) -> str:
    return " ".join(truth["numbers"])


def score_reading(reading, truth: dict) -> dict[str, Any]:
    """Scores of one Reading against one scene's truth."""
    pred = [(d.digit, d.box) for d in reading.digits]
    matches = match_digits(pred, truth["digits"])
    located = match_digits(pred, truth["digits"], same_value=False)
    return {"exact": reading.text == expected_text(truth), "text": reading.text, "truth": expected_text(truth),
            "n_pred": len(pred), "n_truth": len(truth["digits"]), "tp": len(matches), "located": len(located)}


def shrink(image: np.ndarray, truth: dict, factor: float) -> tuple[np.ndarray, dict]:
    """A scene and its truth at `factor` x the size: the same photo taken from farther away."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    digits = [{**d, "box": [int(round(v * factor)) for v in d["box"]]} for d in truth["digits"]]
    return small, {**truth, "size": [small.shape[1], small.shape[0]], "digits": digits}  # [w, h], as scenes.py


def summarise(rows: list[dict]) -> dict[str, Any]:
    """Aggregate per-scene scores (with 'kind' and 'ms') into the benchmark's numbers."""
    out: dict[str, Any] = {"per_kind": {}}
    for kind in KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        k: dict[str, Any] = {"scenes": len(rs), "exact": float(np.mean([r["exact"] for r in rs]))}
        n_pred, n_truth = sum(r["n_pred"] for r in rs), sum(r["n_truth"] for r in rs)
        tp, located = sum(r["tp"] for r in rs), sum(r["located"] for r in rs)
        if kind == "empty":
            k["false_digits_per_page"] = n_pred / len(rs)
            k["pages_read_empty"] = float(np.mean([r["n_pred"] == 0 for r in rs]))
        else:
            k["precision"] = tp / n_pred if n_pred else 1.0
            k["recall"] = tp / n_truth if n_truth else 1.0
            k["located_recall"] = located / n_truth if n_truth else 1.0
        out["per_kind"][kind] = k
    digit_rows = [r for r in rows if r["kind"] != "empty"]
    n_pred, n_truth = sum(r["n_pred"] for r in digit_rows), sum(r["n_truth"] for r in digit_rows)
    tp = sum(r["tp"] for r in digit_rows)
    out["exact"] = float(np.mean([r["exact"] for r in rows])) if rows else 0.0
    out["digit_precision"] = tp / n_pred if n_pred else 1.0
    out["digit_recall"] = tp / n_truth if n_truth else 1.0
    out["reader_errors"] = sum("error" in r for r in rows)
    ms = [r["ms"] for r in rows]
    out["median_ms_all_scenes"] = float(np.median(ms)) if ms else None
    out["images_per_s"] = len(ms) / (sum(ms) / 1000) if ms else None
    return out


def failure_causes(reading, truth: dict) -> list[str]:
    """Why a reading is wrong, in words the lead can act on."""
    pred = [(d.digit, d.box) for d in reading.digits]
    causes = []
    located = match_digits(pred, truth["digits"], same_value=False)
    matched = match_digits(pred, truth["digits"])
    n_t, n_p = len(truth["digits"]), len(pred)
    if len(located) < n_t:
        causes.append("missed digit")
    if len(located) < n_p:
        causes.append("false digit")
    if len(matched) < len(located):
        causes.append("misread digit")
    if not causes and reading.text != expected_text(truth):
        causes.append("grouping/order")
    return causes


MISS_CAUSES = ("misread as another digit", "joined with a neighbour", "no region", "read as no digit",
               "digit under the bar", "sure digit dropped by a rule")


def missed_digit_causes(reading, truth: dict, regions: Sequence[tuple[Sequence[float], np.ndarray]],
                        min_confidence: float = 0.8) -> dict[str, int]:
    """Why each truth digit the reading did not get right was lost, one cause per digit (MISS_CAUSES), from the
    reader's first look: `regions` are its candidate regions, (box in input pixels, the probabilities its whole
    crop reads as: the ten digits, then "not a digit"). Read as another digit; else no region holds the digit's
    centre (broken into pieces too small, or not found); else the largest region holding it also holds another
    truth digit's centre (touching digits read as one region); else the region best overlapping it reads, whole,
    as no digit, as a digit under `min_confidence`, or as a sure digit that a later rule dropped."""
    pred = [(d.digit, d.box) for d in reading.digits]
    got = {t for _, t in match_digits(pred, truth["digits"])}
    located = {t for _, t in match_digits(pred, truth["digits"], same_value=False)}
    out: dict[str, int] = {}
    for ti, t in enumerate(truth["digits"]):
        if ti in got:
            continue
        if ti in located:
            cause = MISS_CAUSES[0]
        else:
            holding = [(box, p) for box, p in regions if _centre_inside(t["box"], box)]
            if not holding:
                cause = MISS_CAUSES[2]
            else:
                largest = max(holding, key=lambda r: r[0][2] * r[0][3])[0]
                if any(_centre_inside(o["box"], largest) for oi, o in enumerate(truth["digits"]) if oi != ti):
                    cause = MISS_CAUSES[1]
                else:
                    p = max(holding, key=lambda r: iou(r[0], t["box"]))[1]
                    cause = (MISS_CAUSES[3] if float(np.sum(p[10:])) >= float(np.max(p[:10])) else
                             MISS_CAUSES[4] if float(np.max(p[:10])) < min_confidence else MISS_CAUSES[5])
        out[cause] = out.get(cause, 0) + 1
    return out


def first_look_regions(reader, image: np.ndarray) -> list[tuple[tuple[float, ...], np.ndarray]]:
    """The digitlens reader's candidate regions in `image` (boxes in input pixels) and what each reads as whole."""
    candidates, scale, crops, options = reader.candidate_crops(image)
    if not candidates:
        return []
    probs = reader.classify(np.stack(crops))
    return [(tuple(v / scale for v in c.box), probs[hyps[0].rows[0]]) for c, hyps in zip(candidates, options)]


# ---------------------------------------------------------------- readers

def load_readers(names: Sequence[str], seed_model: Path, lens_model: Path | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """The readers that could be loaded, and why the others could not."""
    readers, skipped = {}, {}
    for name in names:
        try:
            if name == "digitlens":
                from digitlens.recognizer import ReaderConfig, Recognizer
                readers[name] = Recognizer.load(lens_model, config=ReaderConfig(intra_op_threads=1))
            elif name == "seed-whole-frame":
                from baselines import WholeFrameReader
                readers[name] = WholeFrameReader(seed_model, threads=1)
            elif name == "classic-opencv":
                from baselines import ClassicReader
                readers[name] = ClassicReader(seed_model, threads=1)
            else:
                raise ValueError(f"unknown reader {name!r}; choose from {READERS}")
        except Exception as e:  # a missing model or module: benchmark the others, say why
            skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return readers, skipped


def classify_throughput(reader, crops: np.ndarray, repeats: int) -> float:
    """Digits per second of reader.classify on batches of 256 (median batch time)."""
    batches = [crops[i:i + 256] for i in range(0, len(crops) - 255, 256)]
    reader.classify(batches[0])  # warm-up
    times = []
    for _ in range(repeats):
        for b in batches:
            t = time.perf_counter()
            reader.classify(b)
            times.append(time.perf_counter() - t)
    return 256 / float(np.median(times))


# ---------------------------------------------------------------- failure montage

def _tile(image: np.ndarray, truth: dict, reading, name: str, size: tuple[int, int] = (420, 315)) -> np.ndarray:
    out = draw_truth(image, truth, caption=False)
    for d in reading.digits:
        x, y, w, h = d.box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 230), 2)
        cv2.putText(out, str(d.digit), (x + w + 2, y + h), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, h / 60), (0, 0, 230),
                    max(1, h // 40), cv2.LINE_AA)
    h, w = out.shape[:2]
    s = min(size[0] / w, (size[1] - 40) / h)
    small = cv2.resize(out, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    tile = np.full((size[1], size[0], 3), 255, np.uint8)
    tile[:small.shape[0], :small.shape[1]] = small
    cv2.putText(tile, f"{name} truth: {expected_text(truth) or '-'}", (4, size[1] - 24), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                (0, 120, 0), 1, cv2.LINE_AA)
    cv2.putText(tile, f"read: {reading.text or '-'}  ({', '.join(failure_causes(reading, truth))})", (4, size[1] - 6),
                cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 200), 1, cv2.LINE_AA)
    return tile


def montage(tiles: dict[str, list[np.ndarray]], per_kind: int, size: tuple[int, int] = (420, 315)) -> np.ndarray:
    blank = np.full((size[1], size[0], 3), 255, np.uint8)
    rows = []
    for kind in KINDS:
        row = (tiles.get(kind, []) + [blank] * per_kind)[:per_kind]
        rows.append(np.hstack(row))
    return np.vstack(rows)


# ---------------------------------------------------------------- main

def markdown_table(results: dict[str, dict]) -> str:
    head = ("| reader | exact: single | exact: numbers | empty pages read empty | false digits / empty page | "
            "digit precision | digit recall | ms / 1280x720 photo (1 core) | classify digits/s | reader errors |")
    lines = [head, "|" + " --- |" * 10]
    for name, r in results.items():
        pk = r["per_kind"]

        def pct(kind, key):
            v = pk.get(kind, {}).get(key)
            return f"{100 * v:.1f}%" if v is not None else "-"
        fd = pk.get("empty", {}).get("false_digits_per_page")
        ms = r.get("speed", {}).get("median_ms_1280x720")
        cps = r.get("classify_digits_per_s")
        lines.append(f"| {name} | {pct('single', 'exact')} | {pct('numbers', 'exact')} | {pct('empty', 'pages_read_empty')} | "
                     f"{fd:.2f} | {100 * r['digit_precision']:.1f}% | {100 * r['digit_recall']:.1f}% | "
                     f"{ms:.1f} | {cps:,.0f} | {r.get('reader_errors', 0)} |" if fd is not None and ms is not None and cps is not None else
                     f"| {name} | incomplete |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score readers on photo-like scenes (one core).")
    ap.add_argument("--n", type=int, default=500, help="scenes of each kind (default 500)")
    ap.add_argument("--quick", action="store_true", help="20 scenes of each kind, 10 speed photos")
    ap.add_argument("--readers", default=",".join(READERS), help=f"comma-separated, from {READERS}")
    ap.add_argument("--seed-model", type=Path, default=ROOT / "digitlens" / "models" / "seed.onnx")
    ap.add_argument("--lens-model", type=Path, default=None, help="model for the digitlens reader (default: shipped)")
    ap.add_argument("--seed", type=int, default=2026, help="scene seed")
    ap.add_argument("--speed-n", type=int, default=40, help="1280x720 photos for the latency measurement")
    ap.add_argument("--repeat", type=int, default=3, help="reads per speed photo (median taken)")
    ap.add_argument("--failures", type=int, default=4, help="failures per kind in the montage")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--shrink", type=float, default=1.0,
                    help="scale every scene by this (e.g. 0.45: digits ~26 px tall instead of ~58), truth with it")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.speed_n, args.repeat = 20, 10, 2

    from tqdm import tqdm

    from digitlens.data import load_mnist
    from digitlens.reading import Reading

    cv2.setNumThreads(1)
    mnist = load_mnist()
    names = [n.strip() for n in args.readers.split(",") if n.strip()]
    readers, skipped = load_readers(names, args.seed_model, args.lens_model)
    for name, why in skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    if not readers:
        print("no reader could be loaded", file=sys.stderr)
        return 2

    rows: dict[str, list[dict]] = {n: [] for n in readers}
    first = next(iter(readers))
    fail_tiles: dict[str, list[np.ndarray]] = {}
    causes: dict[str, dict[str, dict[str, int]]] = {n: {k: {} for k in KINDS} for n in readers}
    misses: dict[str, dict[str, int]] = {k: {} for k in KINDS if k != "empty"}  # digitlens' missed digits, by cause
    heights: list[float] = []  # of the truth digits, in pixels of the images read
    for kind in KINDS:
        for i in tqdm(range(args.n), desc=f"{kind} scenes", unit="scene"):
            image, truth = make_scene(kind, scene_rng(args.seed, kind, i), mnist=mnist)
            if args.shrink != 1.0:
                image, truth = shrink(image, truth, args.shrink)
            heights += [d["box"][3] for d in truth["digits"]]
            for name, reader in readers.items():
                t = time.perf_counter()
                try:
                    reading = reader.read(image)
                    error = None
                except Exception as e:  # a reader bug: score as "read nothing", record it, go on
                    reading = Reading(image.shape[1], image.shape[0])
                    error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                    if sum("error" in r for r in rows[name]) < 3:
                        print(f"\n{name} failed on {kind} scene {i} (seed {args.seed}): {error}", file=sys.stderr)
                ms = (time.perf_counter() - t) * 1000
                row = {"kind": kind, "index": i, "ms": ms, **score_reading(reading, truth)}
                if error:
                    row["error"] = error
                rows[name].append(row)
                if not row["exact"]:
                    for c in failure_causes(reading, truth):
                        causes[name][kind][c] = causes[name][kind].get(c, 0) + 1
                    if name == "digitlens" and kind in misses and not error:
                        regions = first_look_regions(reader, image)
                        bar = reader.config.classify.min_confidence
                        for c, k in missed_digit_causes(reading, truth, regions, bar).items():
                            misses[kind][c] = misses[kind].get(c, 0) + k
                    if name == first and len(fail_tiles.setdefault(kind, [])) < args.failures:
                        fail_tiles[kind].append(_tile(image, truth, reading, f"{kind} #{i}"))

    speed_scenes = [make_scene("numbers", scene_rng(args.seed + 1, "numbers", i), mnist=mnist, size=(1280, 720))[0]
                    for i in tqdm(range(args.speed_n), desc="1280x720 photos", unit="photo")]
    crops = mnist.x_test[:256 * 8]
    command = " ".join([Path(sys.executable).name, *sys.argv])
    info = {**machine_info(), "threads_used": 1}
    summary: dict[str, dict] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, reader in tqdm(readers.items(), desc="speed", unit="reader"):
        try:
            reader.read(speed_scenes[0])  # warm-up
        except Exception:
            pass
        per_photo = []
        stages: dict[str, list[float]] = {}
        for img in speed_scenes:
            ts = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                try:
                    reading = reader.read(img)
                    for stage, ms in (getattr(reading, "timings", None) or {}).items():
                        stages.setdefault(stage, []).append(float(ms))
                except Exception:  # counted in the accuracy pass; time it all the same
                    pass
                ts.append((time.perf_counter() - t) * 1000)
            per_photo.append(float(np.median(ts)))
        result = summarise(rows[name])
        result["speed"] = {"median_ms_1280x720": float(np.median(per_photo)), "photos": len(per_photo),
                           "repeats": args.repeat, "p90_ms_1280x720": float(np.percentile(per_photo, 90)),
                           "median_ms_by_stage": {k: float(np.median(v)) for k, v in stages.items()}}
        result["classify_digits_per_s"] = classify_throughput(reader, crops, repeats=3)  # one core
        if name == "digitlens":  # the classification target is for this machine: both cores
            from digitlens.recognizer import ReaderConfig, Recognizer
            cv2.setNumThreads(0)
            all_cores = Recognizer.load(args.lens_model, config=ReaderConfig(intra_op_threads=0))
            result["classify_digits_per_s_all_cores"] = classify_throughput(all_cores, crops, repeats=3)
            cv2.setNumThreads(1)
        result["failure_causes"] = causes[name]
        if name == "digitlens":
            result["missed_digit_causes"] = {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in misses.items()}
        report = {"reader": name, "command": command, "machine": info, "scenes_per_kind": args.n, "scene_seed": args.seed,
                  "shrink": args.shrink,
                  "match_iou": MATCH_IOU, **result,
                  "model": {k: v for k, v in (getattr(reader, "metadata", {}) or {}).items()
                            if k in ("arch", "path", "sha256", "mnist_test_accuracy")},
                  "scenes": rows[name]}
        (args.out / f"read-{name}.json").write_text(json.dumps(report, indent=1, default=str))
        summary[name] = result
    (args.out / "read-summary.json").write_text(json.dumps(
        {"command": command, "machine": info, "scenes_per_kind": args.n, "scene_seed": args.seed, "shrink": args.shrink,
         "digit_height_median_px": round(float(np.median(heights)), 1) if heights else None,
         "skipped": skipped, "readers": summary}, indent=1, default=str))
    if fail_tiles:
        cv2.imwrite(str(args.out / "read-failures.png"), montage(fail_tiles, args.failures))
    print()
    print(markdown_table(summary))
    print(f"\nfailure causes of {first} (scenes, a scene may have several):")
    for kind in KINDS:
        print(f"  {kind}: {causes[first][kind]}")
    if "digitlens" in readers:
        print("digits digitlens did not read right, by cause (from its first look's regions):")
        for kind, counts in misses.items():
            print(f"  {kind}: {dict(sorted(counts.items(), key=lambda kv: -kv[1]))}")
    print(f"\nwrote {args.out}/read-*.json and read-failures.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
