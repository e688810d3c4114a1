"""Subcommand read: digits and numbers in image files and folders, as a table or JSON lines."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from digitlens.imageio import IMAGE_SUFFIXES

HELP = """Read handwritten digits and numbers in photos and scans.

Every image goes through one pipeline: light normalisation, binarisation, ink regions, MNIST-style
normalisation, one batched ONNX inference with a "not a digit" class, splitting of touching digits,
and grouping into numbers in reading order (lines top to bottom, left to right).

Folders are searched recursively for images. A file that cannot be read gets a one-line error; the
others are still read, and the exit status is 1 if any failed.

output:
  default   a table: file, numbers, digits with confidence, milliseconds
  --json    one object per image per line:
            {"path", "width", "height", "numbers": [{"text", "confidence", "box": [x, y, w, h],
             "digits": [i, ...]}], "digits": [{"digit", "confidence", "box", "top3"}], "elapsed_ms"}
            a failed image gives {"path", "error"}

examples:
  digitlens read photo.jpg
  digitlens read scans/ --json > readings.jsonl
  digitlens read page.png --annotate out/        # writes out/page.png with boxes and readings drawn
  digitlens read big.tif --max-pixels 100000000  # allow a larger image than the default 40 MP
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write each image with boxes and readings drawn")
    p.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core; 1 = in this process)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="refuse larger images, checked before decoding")
    p.add_argument("--max-bytes", type=int, default=20 << 20, help="refuse larger files (default 20 MiB)")
    p.add_argument("--min-confidence", type=float, help="report digits at least this sure (default 0.8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders searched recursively for image suffixes, in sorted order. Missing paths pass
    through so that reading them reports the error."""
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p


_worker: dict[str, Any] = {}


def _init(model: str | None, max_pixels: int, max_bytes: int, min_conf: float | None, annotate: str | None,
          threads: int) -> None:
    import dataclasses

    import cv2

    from digitlens.imageio import ImageLimits
    from digitlens.recognizer import ClassifyConfig, Recognizer, ReaderConfig

    cv2.setNumThreads(threads)
    classify = ClassifyConfig() if min_conf is None else dataclasses.replace(ClassifyConfig(), min_confidence=min_conf)
    _worker["reader"] = Recognizer.load(model, ReaderConfig(classify=classify, intra_op_threads=threads))
    _worker["limits"] = ImageLimits(max_bytes=max_bytes, max_pixels=max_pixels)
    _worker["annotate"] = annotate


def _read_one(path: str) -> dict[str, Any]:
    from digitlens.imageio import ImageError, load_image

    t0 = time.perf_counter()
    try:
        image = load_image(path, _worker["limits"], grey=True)  # the reader works on grey: decode only that
        reading = _worker["reader"].read(image)
    except ImageError as e:
        return {"path": path, "error": str(e)}
    except (ValueError, MemoryError) as e:  # a decoded image the reader cannot take (never expected)
        return {"path": path, "error": f"{path}: cannot read digits ({type(e).__name__}: {e})"}
    record = {"path": path, **reading.to_dict(), "elapsed_ms": round((time.perf_counter() - t0) * 1000, 2)}
    if _worker["annotate"]:
        try:
            _write_annotated(path, load_image(path, _worker["limits"]), reading, Path(_worker["annotate"]))
        except (OSError, ImageError) as e:
            record["annotate_error"] = f"{path}: annotated copy not written ({e})"
    return record


def _write_annotated(path: str, image, reading, out_dir: Path) -> None:
    import cv2

    from digitlens.video import draw_reading

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (Path(path).stem + ".png")
    if not cv2.imwrite(str(target), draw_reading(image, reading, None)):
        raise OSError(f"cannot write {target}")


def _table_row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['path']}  ERROR  {r['error']}"
    numbers = " ".join(n["text"] for n in r["numbers"]) or "(no digit)"
    digits = " ".join(f"{d['digit']}:{d['confidence']:.2f}" for d in r["digits"])
    return f"{r['path']}  {r['width']}x{r['height']}  {numbers:<20}  {digits}  {r['elapsed_ms']:.0f} ms"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from digitlens.modelfile import ModelError

    files = [str(p) for p in expand(args.paths)]
    if not files:
        print("digitlens read: no image files found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 1
    workers = args.workers or min(os.cpu_count() or 1, len(files))
    init_args = (str(args.model) if args.model else None, args.max_pixels, args.max_bytes, args.min_confidence,
                 str(args.annotate) if args.annotate else None, 1 if workers > 1 else 0)
    try:
        _init(*init_args)  # also in this process: a bad model fails here, once, with a clear message
    except ModelError as e:
        print(f"digitlens read: error: {e}", file=sys.stderr)
        return 2
    failed = 0
    show_bar = not args.no_progress and len(files) > 1 and sys.stderr.isatty()
    bar = tqdm(total=len(files), unit="img", file=sys.stderr, disable=not show_bar)
    pool = ProcessPoolExecutor(workers, initializer=_init, initargs=init_args) if workers > 1 else None
    try:
        results = pool.map(_read_one, files, chunksize=4) if pool else map(_read_one, files)
        for record in results:
            bar.update(1)
            if "error" in record:
                failed += 1
                if not args.json:
                    tqdm.write(f"digitlens read: {record['error']}", file=sys.stderr)
            if "annotate_error" in record:
                tqdm.write(f"digitlens read: {record.pop('annotate_error')}", file=sys.stderr)
            if args.json:
                tqdm.write(json.dumps(record), file=sys.stdout)
            elif "error" not in record:
                tqdm.write(_table_row(record), file=sys.stdout)
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    if failed:
        print(f"digitlens read: {failed} of {len(files)} images failed", file=sys.stderr)
    return 1 if failed else 0


COMMANDS = {"read": (HELP, add_arguments, run)}
