"""List the development scenes the reader gets wrong, with why, and draw them: where to look next.

benchmarks/read.py counts why digits are lost on the benchmark's own seed (2026), which settings must never be
chosen on. This script does the same on development data (scenes of MNIST *training* digits, any other seed)
and names each scene it reads wrong: its size, the truth, the reading, the truth digits' heights, and per
digit not read right the cause (read.py's missed_digit_causes: misread, joined with a neighbour, no region,
read as no digit, under the bar, dropped by a rule) and per scene what went wrong (read.py's failure_causes).
With --show DIR it writes one picture per wrong scene, cropped round the digits: the first look's regions in
blue (each with the digit it reads as whole and how sure; 10 is "not a digit"), the digits read in red, the
truth in green.

    python benchmarks/dev_misses.py --kind numbers --seed 8                 # 300 scenes, a list of the misses
    python benchmarks/dev_misses.py --kind single --seed 7 --show /tmp/miss --out /tmp/miss.json
    python benchmarks/dev_misses.py --kind numbers --seed 8 --start 16 --n 1 --show /tmp/one

--source other-hand lists the photos of other_hand.py's compositor (--category, --hand-digits train|font) read
wrong instead: their truth is the number and its writing's box (green where nothing was read), not each digit's,
so they name no causes.

    python benchmarks/dev_misses.py --source other-hand --category boxes --seed 7 --n 100 --show /tmp/boxes
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dev_ab import BENCHMARK_SEED  # noqa: E402

BLUE, RED = (255, 0, 0), (0, 0, 255)  # the truth is drawn green by scenes.draw_truth


def picture(image: np.ndarray, truth: dict, reading, regions, side: int = 480) -> np.ndarray:
    """The scene with the first look's `regions` (box, probabilities), the digits read and the truth drawn,
    cropped round the truth digits and the digits read (1.5 digit heights of margin; the whole image where there
    are none) and scaled so its long side is `side` px."""
    import cv2

    from scenes import draw_truth

    out = draw_truth(image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), truth, caption=False)
    for box, p in regions:
        x, y, w, h = (int(v) for v in box)
        cv2.rectangle(out, (x, y), (x + w, y + h), BLUE, 1)
        cv2.putText(out, f"{int(np.argmax(p))}:{float(np.max(p)):.2f}", (x, y + h + 12), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, BLUE, 1, cv2.LINE_AA)
    for d in reading.digits:
        x, y, w, h = (int(v) for v in d.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), RED, 2)
        cv2.putText(out, f"{d.digit} {d.confidence:.2f}", (x, max(10, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, RED, 2,
                    cv2.LINE_AA)
    shown = [t["box"] for t in truth["digits"]] + [d.box for d in reading.digits]
    if shown:
        boxes = np.array(shown)
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        pad = int(1.5 * boxes[:, 3].max())
        out = out[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
    scale = side / max(out.shape[:2])
    return cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def misses(kind: str, seed: int, start: int, n: int, shrink: float = 1.0, show: Path | None = None,
           progress: bool = True) -> dict[str, Any]:
    """Read scenes start..start+n-1 of `kind` made with `seed` (MNIST training digits) and return the exact rate,
    the cause totals and one row per scene read wrong; with `show`, write a picture of each there."""
    if seed == BENCHMARK_SEED:
        raise ValueError(f"seed {BENCHMARK_SEED} is the reading benchmarks' own: choose a development seed")
    import cv2
    from tqdm import tqdm

    import read as rb
    import scenes
    from digitlens import Recognizer
    from digitlens.data import load_mnist
    from digitlens.recognizer import ReaderConfig

    reader = Recognizer.load(config=ReaderConfig(intra_op_threads=1))
    mnist = load_mnist(mirrors=False)
    if show is not None:
        show.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    causes: dict[str, int] = {}
    exact = 0
    for index in tqdm(range(start, start + n), desc=f"{kind} seed {seed}", unit="scene", disable=not progress):
        image, truth = scenes.make_scene(kind, scenes.scene_rng(seed, kind, index), split="train", mnist=mnist)
        if shrink != 1.0:
            image, truth = rb.shrink(image, truth, shrink)
        reading = reader.read(image)
        if reading.text == rb.expected_text(truth):
            exact += 1
            continue
        regions = rb.first_look_regions(reader, image)
        lost = rb.missed_digit_causes(reading, truth, regions)
        for cause, count in lost.items():
            causes[cause] = causes.get(cause, 0) + count
        row = {"index": index, "size": truth["size"], "truth": rb.expected_text(truth), "read": reading.text,
               "heights": [t["box"][3] for t in truth["digits"]], "missed": lost,
               "failures": rb.failure_causes(reading, truth)}
        if show is not None:
            path = show / f"{kind}-{seed}-{index}.png"
            cv2.imwrite(str(path), picture(image, truth, reading, regions))
            row["picture"] = str(path)
        rows.append(row)
    return {"kind": kind, "seed": seed, "start": start, "scenes": n, "shrink": shrink,
            "exact": exact / n if n else None, "missed_digit_causes": causes, "wrong": rows}


def hand_misses(category: str, seed: int, start: int, n: int, hand_digits: str = "train", show: Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """As `misses`, for other_hand's compositor (photos of one number in `category`, MNIST *training* digits or
    fonts): its truth is the number and the box of its writing, not each digit's, so a row names no causes."""
    if seed == BENCHMARK_SEED:
        raise ValueError(f"seed {BENCHMARK_SEED} is the benchmarks' own: choose a development seed")
    import cv2
    from tqdm import tqdm

    import other_hand
    import read as rb
    from digitlens import Recognizer
    from digitlens.recognizer import ReaderConfig

    reader = Recognizer.load(config=ReaderConfig(intra_op_threads=1))
    pool = None
    if hand_digits == "train":
        from digitlens.data import load_mnist

        mnist = load_mnist(mirrors=False)
        pool = [mnist.x_train[mnist.y_train == d] for d in range(10)]
    if show is not None:
        show.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for index in tqdm(range(start, start + n), desc=f"{category} seed {seed}", unit="photo", disable=not progress):
        shot = other_hand.write(other_hand.image_rng(seed, category, index), category, pool)
        reading = reader.read(shot.image)
        if reading.text == shot.text:
            continue
        h, w = shot.image.shape[:2]
        row = {"index": index, "size": [w, h], "truth": shot.text, "read": reading.text, "box": list(shot.box)}
        if show is not None:
            truth = {"digits": [], "numbers": [], "size": [w, h]}
            out = picture(shot.image, truth, reading, rb.first_look_regions(reader, shot.image))
            x, y, bw, bh = shot.box
            f = out.shape[1] / w  # picture() crops round the digits read; with none it scales the whole photo
            if not reading.digits:
                cv2.rectangle(out, (int(x * f), int(y * f)), (int((x + bw) * f), int((y + bh) * f)), (0, 160, 0), 1)
            cv2.putText(out, shot.text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 160, 0), 1, cv2.LINE_AA)
            path = show / f"{category}-{hand_digits}-{seed}-{index}.png"
            cv2.imwrite(str(path), out)
            row["picture"] = str(path)
        rows.append(row)
    return {"source": "other-hand", "category": category, "hand_digits": hand_digits, "seed": seed, "start": start,
            "photos": n, "exact": (n - len(rows)) / n if n else None, "wrong": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="numbers", choices=("single", "numbers", "empty"))
    ap.add_argument("--source", default="scenes", choices=("scenes", "other-hand"),
                    help="scenes.py's photos (--kind) or other_hand.py's compositor (--category)")
    ap.add_argument("--category", default="touching", help="other_hand's category (with --source other-hand)")
    ap.add_argument("--hand-digits", default="train", choices=("train", "font"),
                    help="other_hand's digits: MNIST training digits or fonts")
    ap.add_argument("--seed", type=int, default=7, help="scene seed (development data: never 2026)")
    ap.add_argument("--start", type=int, default=0, help="first scene index")
    ap.add_argument("--n", type=int, default=300, help="scenes to read (default 300)")
    ap.add_argument("--shrink", type=float, default=1.0, help="scale the scenes by this first (read.py --shrink)")
    ap.add_argument("--show", type=Path, default=None, help="folder for one picture per scene read wrong")
    ap.add_argument("--out", type=Path, default=None, help="write the list as JSON here")
    args = ap.parse_args(argv)
    if args.seed == BENCHMARK_SEED:
        ap.error(f"--seed {BENCHMARK_SEED} is the reading benchmarks' own seed: choose a development seed")
    if args.n < 1 or args.start < 0 or not 0 < args.shrink <= 4:
        ap.error("--n must be at least 1, --start at least 0, --shrink in (0, 4]")
    if args.source == "other-hand":
        from other_hand import CATEGORIES

        if args.category not in CATEGORIES:
            ap.error(f"--category must be one of {', '.join(CATEGORIES)}")
        result = hand_misses(args.category, args.seed, args.start, args.n, args.hand_digits, args.show)
        lines = [f"#{row['index']} truth {row['truth']!r} read {row['read']!r} writing at {row['box']}"
                 for row in result["wrong"]]
        lines.append(f"{args.category} ({args.hand_digits}) seed {args.seed}: {100 * result['exact']:.1f}% of "
                     f"{result['photos']} read exactly")
    else:
        result = misses(args.kind, args.seed, args.start, args.n, args.shrink, args.show)
        lines = [f"#{row['index']} {row['size'][0]}x{row['size'][1]} truth {row['truth']!r} read {row['read']!r} "
                 f"heights {row['heights']} missed {row['missed']} {', '.join(row['failures'])}"
                 for row in result["wrong"]]
        lines.append(f"{result['kind']} seed {result['seed']}: {100 * result['exact']:.1f}% of {result['scenes']} "
                     f"read exactly; digits lost: {result['missed_digit_causes']}")
    print("\n".join(lines))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
