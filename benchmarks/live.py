"""Live video benchmark: end-to-end speed, memory, and steadiness on clips with known ground truth.

    .venv/bin/python benchmarks/live.py                 # -> benchmarks/results/live-640x480.json
    .venv/bin/python benchmarks/live.py --quick         # shorter clips, for a smoke run

Clips are filmed by digitlens.demo from MNIST *test* digits (no model trained on them): 20 digits in
6 numbers on paper, 640x480 at 30 fps, the camera panning, zooming, rotating and shaking slightly.

- speed: a child process that imports only the live path plays the clip file frame by frame (no frame
  dropped) through capture thread -> read -> track -> draw, window off; fps = frames / wall time. The
  child reports its peak RSS and whether torch was ever imported.
- steadiness: every frame's shown reading against the truth. A frame is "settled" when the set of
  numbers fully in view has not changed for `settle` frames; it is read exactly when the shown numbers
  equal the true ones (as multisets). Label changes count, per digit in view, how often the label shown
  on it changes; blinks count how often it vanishes while in view.
- screenshot: with Xvfb installed, the real window on the demo clip -> results/live-window.png.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

sys.path.insert(0, str(ROOT / "benchmarks"))
from common import machine_info  # noqa: E402
from digitlens.demo import ClipConfig, TruthFrame  # noqa: E402

BENCH_CLIP = ClipConfig(fps=30.0, seconds=10.0, numbers=(4, 3, 4, 2, 3, 4), per_line=2, digit_px=48.0,
                        pan_px=40.0, zoom=0.10, rotate_deg=3.0, shake_px=2.0, period_s=6.0, noise=2.0)


# ------------------------------------------------------------------------------------------- child: speed


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image; ru_maxrss would carry the
    parent's peak across fork+exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(clip: str, out: str, model: str | None = None) -> None:
    """Runs in a fresh process: only the live path is imported, so RSS and sys.modules are the CLI's."""
    from digitlens import video
    from digitlens.recognizer import Recognizer

    rec = Recognizer.load(model)
    src = video.open_source(clip).start()
    tracker = video.Tracker()
    read_ms, track_ms, draw_ms, shown = [], [], [], []
    t0 = time.perf_counter()
    n = 0

    def read(img):
        t = time.perf_counter()
        r = rec.read(img)
        read_ms.append((time.perf_counter() - t) * 1000)
        return r

    for lf in video.live_frames(src, read, tracker):
        track_ms.append(lf.ms - read_ms[-1])
        t = time.perf_counter()
        video.draw_reading(lf.frame.image, lf.steady, f"{lf.fps:5.1f} fps  {lf.ms:5.1f} ms/frame  {src.name}")
        draw_ms.append((time.perf_counter() - t) * 1000)
        shown.append([[d.digit, list(d.box), d.id] for d in lf.steady.digits] + [[-1, [n.text], None]
                                                                                for n in lf.steady.numbers])
        raw = [n.text for n in lf.raw.numbers]
        shown[-1].append([-2, raw, None])
        n += 1
    wall = time.perf_counter() - t0
    src.close()
    # the same clip paced like a camera (30 fps, newest frame only): latency must not grow when behind
    src = video.open_source(clip, realtime=True).start()
    latency, shown_frames = [], 0
    for lf in video.live_frames(src, rec.read, video.Tracker()):
        video.draw_reading(lf.frame.image, lf.steady, "")
        latency.append(src.age_s(lf.frame) * 1000)  # capture -> drawn
        shown_frames += 1
    live = {"source_fps": src.fps, "frames_processed": shown_frames, "frames_dropped": src.dropped,
            "latency_ms_median": float(np.median(latency)), "latency_ms_p95": float(np.percentile(latency, 95)),
            "latency_ms_last_tenth_median": float(np.median(latency[-max(1, len(latency) // 10):]))}
    src.close()
    Path(out).write_text(json.dumps({
        "frames": n, "wall_s": wall, "fps": n / wall,
        "read_ms_median": float(np.median(read_ms)), "track_ms_median": float(np.median(track_ms)),
        "draw_ms_median": float(np.median(draw_ms)), "read_ms_p90": float(np.percentile(read_ms, 90)),
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules, "camera_paced": live, "onnxruntime_threads": getattr(rec.config, "intra_op_threads", None),
        "shown": shown}))


# ------------------------------------------------------------------------------------------- steadiness


def steadiness(shown: list, truth: list[TruthFrame], settle: int) -> dict:
    """Compare the shown readings (child's `shown`) with the truth, frame by frame."""
    frames = min(len(shown), len(truth))
    exact = raw_exact = settled = 0
    stable_since = 0
    for i in range(frames):
        if i and sorted(truth[i].numbers) != sorted(truth[i - 1].numbers):
            stable_since = i
        if i - stable_since < settle:
            continue
        settled += 1
        want = sorted(truth[i].numbers)
        exact += sorted(x[1][0] for x in shown[i] if x[0] == -1) == want
        raw_exact += sorted(next(x[1] for x in shown[i] if x[0] == -2)) == want
    # per true digit, the label shown on it in each frame it is in view (None: nothing shown there)
    seqs: dict[int, list[int | None]] = {}
    for i in range(frames):
        digits = [x for x in shown[i] if x[0] >= 0]
        for td in truth[i].digits:
            x, y, w, h = td.box
            cx, cy = x + w / 2, y + h / 2
            hit = [d for d in digits if d[1][0] <= cx <= d[1][0] + d[1][2] and d[1][1] <= cy <= d[1][1] + d[1][3]]
            seqs.setdefault(td.index, []).append(hit[0][0] if hit else None)
    changes = blinks = digit_frames = wrong_frames = 0
    truth_label = {td.index: td.digit for tf in truth for td in tf.digits}
    for k, seq in seqs.items():
        first = next((j for j, s in enumerate(seq) if s is not None), None)
        if first is None:
            continue
        digit_frames += len(seq) - first
        last = seq[first]
        wrong_frames += sum(1 for s in seq[first:] if s is not None and s != truth_label[k])
        for prev, cur in zip(seq[first:], seq[first + 1:]):
            if cur is None and prev is not None:
                blinks += 1
            if cur is not None:
                if cur != last:
                    changes += 1
                last = cur
    return {"frames": frames, "settle_frames": settle, "settled_frames": settled,
            "exact_settled_fraction": exact / max(settled, 1),
            "raw_reader_exact_settled_fraction": raw_exact / max(settled, 1),
            "digit_frames_in_view": digit_frames,
            "label_changes_per_100_frames": 100 * changes / max(digit_frames, 1),
            "blinks_per_100_frames": 100 * blinks / max(digit_frames, 1),
            "wrong_label_fraction": wrong_frames / max(digit_frames, 1)}


# ------------------------------------------------------------------------------------------- screenshot


def window_screenshot(out: Path, seconds: float = 2.0, model: str | None = None) -> str:
    """The real window on the demo clip under a private Xvfb, cropped to the window. Returns how it was made."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool") and shutil.which("xwd")):
        return "skipped: Xvfb, xdotool or xwd missing (apt-get install xvfb xdotool x11-apps)"
    import cv2
    sys.path.insert(0, str(ROOT / "tests"))
    from test_video import read_xwd  # one xwd parser, tested there
    n = next(n for n in range(150, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    xvfb = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": f":{n}"}
    app = None
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        app = subprocess.Popen([sys.executable, str(ROOT / "digitrecognization.py"), "--source", "demo", "--realtime"]
                               + (["--model", model] if model else []),
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wid: list[str] = []
        deadline = time.monotonic() + 30
        while not wid and time.monotonic() < deadline:
            wid = subprocess.run(["xdotool", "search", "--name", "digitlens live"], env=env, capture_output=True,
                                 text=True).stdout.split()
            time.sleep(0.1)
        if not wid:
            return "failed: no window appeared"
        time.sleep(seconds)
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid[0]], env=env, capture_output=True,
                             text=True).stdout
        g = dict(line.split("=", 1) for line in geo.split())
        shot = Path(tempfile.mkdtemp()) / "root.xwd"
        subprocess.run(["xwd", "-root", "-silent", "-out", str(shot)], env=env, check=True)
        screen = read_xwd(shot)
        x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        cv2.imwrite(str(out), screen[y:y + h, x:x + w])
        return f"Xvfb window {w}x{h}, {seconds:g} s into the demo clip"
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        xvfb.terminate()
        xvfb.wait(5)


# ------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s clips, one seed (smoke run)")
    parser.add_argument("--seeds", type=int, default=3, help="clips to film (each 10 s at 30 fps)")
    parser.add_argument("--out", default=str(RESULTS / "live-640x480.json"))
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--child", nargs=2, metavar=("CLIP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, model=args.model)
        return 0

    from digitlens.data import load_mnist
    from digitlens.demo import make_clip, write_video
    from digitlens.video import TrackConfig

    m = load_mnist()
    cfg = BENCH_CLIP if not args.quick else ClipConfig(**{**BENCH_CLIP.__dict__, "seconds": 3.0})
    seeds = 1 if args.quick else args.seeds
    settle = TrackConfig().appear_frames + 2
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            frames, truth = make_clip(m.x_test, m.y_test, seed=1000 + seed, cfg=cfg)
            clip = Path(tmp) / f"clip{seed}.mp4"
            write_video(clip, frames, cfg.fps)
            del frames
            out = Path(tmp) / f"child{seed}.json"
            subprocess.run([sys.executable, __file__, "--child", str(clip), str(out)]
                           + (["--model", args.model] if args.model else []), check=True, cwd=ROOT)
            res = json.loads(out.read_text())
            shown = res.pop("shown")
            res["digits_in_view_median"] = float(np.median([len(t.digits) for t in truth]))
            res["numbers"] = list(truth[0].numbers)
            res.update(steadiness(shown, truth, settle))
            runs.append(res)
            print(f"clip {seed}: {res['fps']:.1f} fps, read {res['read_ms_median']:.1f} ms, rss "
                  f"{res['peak_rss_mb']:.0f} MB, torch {res['torch_imported']}, exact {res['exact_settled_fraction']:.3f}"
                  f" (reader alone {res['raw_reader_exact_settled_fraction']:.3f}), label changes/100 "
                  f"{res['label_changes_per_100_frames']:.2f}, blinks/100 {res['blinks_per_100_frames']:.2f}")

    def med(key: str) -> float:
        return float(np.median([r[key] for r in runs]))

    total_frames = sum(r["digit_frames_in_view"] for r in runs)
    summary = {
        "fps_median": med("fps"), "read_ms_median": med("read_ms_median"), "track_ms_median": med("track_ms_median"),
        "draw_ms_median": med("draw_ms_median"), "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "torch_imported": any(r["torch_imported"] for r in runs),
        "exact_settled_fraction": sum(r["exact_settled_fraction"] * r["settled_frames"] for r in runs)
        / max(1, sum(r["settled_frames"] for r in runs)),
        "raw_reader_exact_settled_fraction": sum(r["raw_reader_exact_settled_fraction"] * r["settled_frames"]
                                                 for r in runs) / max(1, sum(r["settled_frames"] for r in runs)),
        "label_changes_per_100_frames": sum(r["label_changes_per_100_frames"] * r["digit_frames_in_view"]
                                            for r in runs) / max(total_frames, 1),
        "blinks_per_100_frames": sum(r["blinks_per_100_frames"] * r["digit_frames_in_view"] for r in runs)
        / max(total_frames, 1),
    }
    targets = {"fps >= 30": summary["fps_median"] >= 30, "rss <= 250 MB": summary["peak_rss_mb_max"] <= 250,
               "torch not imported": not summary["torch_imported"],
               "exact >= 95% settled": summary["exact_settled_fraction"] >= 0.95,
               "label changes < 1 per 100 frames": summary["label_changes_per_100_frames"] < 1}
    shot = RESULTS / "live-window.png"
    how = ("skipped (--quick)" if args.quick else "skipped (--model: the README shows the shipped model's window)"
           if args.model else window_screenshot(shot))
    result = {"benchmark": "live", "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": machine_info(), "clip": {**cfg.__dict__, "split": "MNIST test", "seeds": seeds},
              "track_config": TrackConfig().__dict__, "summary": summary, "targets_met": targets, "runs": runs,
              "screenshot": {"path": str(shot.relative_to(ROOT)), "how": how},
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=list) + "\n")
    print(json.dumps({"summary": summary, "targets_met": targets, "screenshot": how}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
