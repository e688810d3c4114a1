"""Fuzz the image path: mutated image files through decode_image, and every decoded one through Recognizer.read.

    .venv/bin/python benchmarks/fuzz.py                 # 50,000 mutated files
    .venv/bin/python benchmarks/fuzz.py --n 2000        # quick

Seed files are small photo-like scenes (benchmarks/scenes.py) encoded as PNG (colour, grey, 16-bit,
alpha), JPEG (baseline, progressive), WEBP, BMP, TIFF and PNM. Each case applies 1-3 mutations (bit
flips, truncation, header byte edits, extreme size fields, spliced junk, deleted runs). Every case
must end in an array or an ImageError; anything else is a bug, counted by exception type with the case
number to reproduce it. The cases run in a child process, so a hard crash (segfault, abort) is caught,
counted with its case number, and the run goes on after it.

Writes benchmarks/results/fuzz-read.json: cases, decoded, refused (with the reasons), unexpected
errors by type, crashes, timings (median and the slowest cases: a tiny file that takes seconds is a
denial of service).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def seed_files(seed: int) -> list[tuple[str, bytes]]:
    """Valid image files of every allowed format, made from small generated scenes."""
    from scenes import make_scene, scene_rng

    files = []
    for i, (kind, size) in enumerate((("numbers", (320, 240)), ("single", (160, 120)), ("empty", (200, 150)))):
        img, _ = make_scene(kind, scene_rng(seed, kind, i), size=size)
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
        bgra[: size[1] // 3, :, 3] = 0
        encodings = [("png", img, []), ("png-grey", grey, []), ("png-16bit", img.astype(np.uint16) * 257, []),
                     ("png-alpha", bgra, []), ("jpeg", img, [cv2.IMWRITE_JPEG_QUALITY, 80]),
                     ("jpeg-progressive", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), ("jpeg-grey", grey, []),
                     ("webp", img, [cv2.IMWRITE_WEBP_QUALITY, 80]), ("bmp", img, []), ("tiff", img, []),
                     ("pnm", img, [])]
        ext = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tiff", "pnm": ".ppm"}
        for name, arr, params in encodings:
            ok, buf = cv2.imencode(ext[name.split("-")[0]], arr, params)
            if ok:
                files.append((f"{kind}-{name}", buf.tobytes()))
    return files


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    if not b:
        return bytes(b)
    op = int(rng.integers(7))
    if op == 0:  # bit flips anywhere
        for _ in range(int(rng.integers(1, 17))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # truncation
        b = b[:int(rng.integers(0, len(b)))]
    elif op == 2:  # header byte edits
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(min(96, len(b))))] = int(rng.integers(256))
    elif op == 3:  # size-like fields set to extremes
        i = int(rng.integers(max(1, min(64, len(b) - 4))))
        b[i:i + 4] = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x01",
                      struct.pack(">I", int(rng.integers(1 << 32)))][int(rng.integers(5))]
    elif op == 4:  # junk spliced in
        i = int(rng.integers(len(b)))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
    elif op == 5:  # a run deleted
        i = int(rng.integers(len(b)))
        del b[i:i + int(rng.integers(1, 200))]
    else:  # a run duplicated (repeated chunks, markers)
        i = int(rng.integers(len(b)))
        j = min(len(b), i + int(rng.integers(1, 300)))
        b[j:j] = b[i:j]
    return bytes(b)


def case(files: list[tuple[str, bytes]], seed: int, index: int) -> tuple[str, bytes]:
    rng = np.random.default_rng([seed, index])
    name, data = files[int(rng.integers(len(files)))]
    for _ in range(int(rng.integers(1, 4))):
        data = mutate(data, rng)
    return name, data


def _reason(msg: str) -> str:
    """An ImageError message without the file name and numbers: the kind of refusal."""
    text = msg.split(": ", 1)[-1]
    text = re.sub(r"\d[\d,x]*", "N", text)
    return re.sub(r"b'.*?'", "...", text)[:90]


def worker(args) -> int:
    """Run cases [start, stop); write one JSON line per case; the progress file holds the case in flight."""
    import cv2 as _cv2
    _cv2.setNumThreads(1)
    from digitlens.imageio import ImageError, ImageLimits, decode_image

    recognizer = None
    if not args.no_read:
        try:
            from digitlens.recognizer import ReaderConfig, Recognizer
            recognizer = Recognizer.load(config=ReaderConfig(intra_op_threads=1))
        except Exception as e:  # the shipped model may not exist yet: fuzz the decoder alone
            print(json.dumps({"reader_unavailable": f"{type(e).__name__}: {e}"}), flush=True)
    files = seed_files(args.seed)
    limits = ImageLimits(max_pixels=args.max_pixels)
    progress = os.open(args.progress, os.O_WRONLY | os.O_CREAT, 0o644)
    for i in range(args.start, args.stop):
        os.pwrite(progress, struct.pack("<q", i), 0)
        if i == args.crash_at:  # tests the crash handling of the parent
            os.abort()
        name, data = case(files, args.seed, i)
        row: dict = {"i": i, "seed_file": name, "bytes": len(data)}
        t = time.perf_counter()
        try:
            img = decode_image(data, f"case{i}", limits)
            row["decoded"] = list(img.shape)
            if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
                row["unexpected"] = f"BadOutput: {type(img).__name__} {getattr(img, 'shape', None)}"
        except ImageError as e:
            row["refused"] = _reason(str(e))
            img = None
        except Exception as e:  # the bug this benchmark looks for
            row["unexpected"] = f"{type(e).__name__}: {str(e)[:200]}"
            img = None
        row["decode_ms"] = (time.perf_counter() - t) * 1000
        if img is not None and recognizer is not None and "unexpected" not in row:
            t = time.perf_counter()
            try:
                reading = recognizer.read(img)
                json.dumps(reading.to_dict())
                row["digits"] = len(reading.digits)
            except Exception as e:
                row["unexpected"] = f"read {type(e).__name__}: {str(e)[:200]}"
            row["read_ms"] = (time.perf_counter() - t) * 1000
        print(json.dumps(row), flush=True)
    os.close(progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fuzz decode_image and Recognizer.read with mutated image files.")
    ap.add_argument("--n", type=int, default=50_000, help="mutated files (default 50,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-pixels", type=int, default=4_000_000, help="pixel limit for the fuzz (keeps cases fast)")
    ap.add_argument("--no-read", action="store_true", help="decode only")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz-read.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--progress", default="", help=argparse.SUPPRESS)
    ap.add_argument("--crash-at", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    from tqdm import tqdm

    rows: list[dict] = []
    crashes: list[dict] = []
    reader_note = None
    start_time = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=args.n, desc="fuzz cases", unit="case") as bar:
        progress = os.path.join(tmp, "progress")
        nxt = 0
        while nxt < args.n:
            cmd = [sys.executable, __file__, "--worker", "--start", str(nxt), "--stop", str(args.n), "--seed",
                   str(args.seed), "--max-pixels", str(args.max_pixels), "--progress", progress]
            if args.no_read:
                cmd.append("--no-read")
            if args.crash_at >= nxt:
                cmd += ["--crash-at", str(args.crash_at)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
            last = nxt - 1
            for line in proc.stdout:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a codec library writing to stdout
                    continue
                if "reader_unavailable" in row:
                    reader_note = row["reader_unavailable"]
                    continue
                rows.append(row)
                last = row["i"]
                bar.update(1)
            code = proc.wait()
            if code == 0:
                break
            with open(progress, "rb") as f:
                in_flight = struct.unpack("<q", f.read(8))[0]
            crashes.append({"case": in_flight, "exit_status": code})
            bar.update(1)
            nxt = max(in_flight, last) + 1
    elapsed = time.perf_counter() - start_time

    decode_ms = np.array([r["decode_ms"] for r in rows])
    read_ms = np.array([r["read_ms"] for r in rows if "read_ms" in r])
    unexpected = Counter(r["unexpected"].split(":")[0] for r in rows if "unexpected" in r)
    slowest = sorted(rows, key=lambda r: -(r["decode_ms"] + r.get("read_ms", 0.0)))[:5]
    from read import machine_info
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "cases": args.n, "seed": args.seed, "max_pixels": args.max_pixels,
        "decoded": sum("decoded" in r for r in rows),
        "refused": sum("refused" in r for r in rows),
        "refusal_reasons": dict(Counter(r["refused"] for r in rows if "refused" in r).most_common(25)),
        "read": len(read_ms), "reader": "digitlens Recognizer (shipped model)" if reader_note is None and not args.no_read
        else f"not run ({'--no-read' if args.no_read else reader_note})",
        "unexpected_errors": dict(unexpected),
        "unexpected_examples": [{"case": r["i"], "seed_file": r["seed_file"], "error": r["unexpected"]}
                                for r in rows if "unexpected" in r][:20],
        "crashes": len(crashes), "crash_cases": crashes,
        "seconds": round(elapsed, 1),
        "decode_ms_median": float(np.median(decode_ms)) if len(decode_ms) else None,
        "decode_ms_max": float(decode_ms.max()) if len(decode_ms) else None,
        "read_ms_median": float(np.median(read_ms)) if len(read_ms) else None,
        "read_ms_max": float(read_ms.max()) if len(read_ms) else None,
        "slowest_cases": [{k: r.get(k) for k in ("i", "seed_file", "bytes", "decode_ms", "read_ms", "refused", "decoded")}
                          for r in slowest],
        "reproduce": "benchmarks/fuzz.py: case(seed_files(seed), seed, i) rebuilds case i",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("cases", "decoded", "refused", "read", "unexpected_errors", "crashes",
                                             "seconds", "decode_ms_median", "decode_ms_max", "read_ms_max")}))
    print(f"wrote {args.out}")
    return 1 if unexpected or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
