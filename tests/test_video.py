"""Live video: tracker, overlay, sources (fakes that fail, freeze, block), the loop and the CLI, the window.

Generated clips use MNIST *training* digits (digitlens.demo); ground truth comes with every frame.
No test needs a camera. The window test starts its own Xvfb and skips only when Xvfb is not installed.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitlens import video
from digitlens.demo import ClipConfig, make_clip, write_video
from digitlens.reading import Digit, Reading

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MODEL = ROOT / "digitlens" / "models" / "lens.onnx"
FAST = video.SourceConfig(stall_s=0.4, freeze_s=0.4, open_timeout_s=2.0, backoff_initial_s=0.05,
                          backoff_max_s=0.2, healthy_s=0.3, poll_s=0.02)


def digit(label: int, box, conf: float = 0.95, second: int | None = None) -> Digit:
    other = second if second is not None else (label + 1) % 10
    return Digit(label, conf, tuple(int(v) for v in box), ((label, conf), (other, (1 - conf) * 0.8),
                                                            ((other + 1) % 10, (1 - conf) * 0.2)))


def reading(*digits: Digit, size=(640, 480)) -> Reading:
    return Reading(size[0], size[1], (), tuple(digits))


def shown(r: Reading) -> dict[int, int]:
    """track id -> label of what the tracker shows."""
    return {d.id: d.digit for d in r.digits}


# ------------------------------------------------------------------------------------------- tracker


def test_tracker_suppresses_flicker_and_keeps_ids():
    tr = video.Tracker()
    outputs = []
    for f in range(60):
        # a 3 held still; every 4th frame the reader says 8 (a typical 3/8 confusion) with less confidence
        label, conf = (8, 0.55) if f % 4 == 3 else (3, 0.9)
        jitter = (f * 7919) % 5 - 2  # +-2 px of hand shake
        outputs.append(shown(tr.update(reading(digit(label, (200 + jitter, 150, 40, 60), conf)), f / 30)))
    steady = [o for o in outputs[5:]]
    assert all(len(o) == 1 for o in steady)
    assert {tuple(o.values())[0] for o in steady} == {3}, "the shown label flickered"
    assert len({tuple(o.keys())[0] for o in steady}) == 1, "the track id changed"


def test_tracker_hysteresis_appear_and_disappear_frames():
    cfg = video.TrackConfig()
    tr = video.Tracker(cfg)
    d = digit(5, (100, 100, 30, 50))
    seen = [len(tr.update(reading(d)).digits) for _ in range(cfg.appear_frames + 2)]
    # appears exactly on the k-th agreeing frame, not before
    assert seen == [0] * (cfg.appear_frames - 1) + [1] * 3
    # a single missed frame does not blink it out
    assert len(tr.update(reading()).digits) == 1
    assert len(tr.update(reading(d)).digits) == 1
    # gone after m missed frames, still there before
    gone = [len(tr.update(reading()).digits) for _ in range(cfg.disappear_frames)]
    assert gone == [1] * (cfg.disappear_frames - 1) + [0]


def test_tracker_disagreeing_labels_do_not_appear_early():
    cfg = video.TrackConfig(appear_frames=3)
    tr = video.Tracker(cfg)
    box = (100, 100, 30, 50)
    outs = [tr.update(reading(digit(lab, box, 0.9))).digits for lab in (1, 7, 1, 7, 7, 7)]
    assert [len(o) for o in outs] == [0, 0, 0, 0, 0, 1]
    assert outs[-1][0].digit == 7


def test_tracker_ids_follow_moving_digits():
    tr = video.Tracker()
    rng = np.random.default_rng(0)
    ids_by_label: dict[int, set[int]] = {2: set(), 9: set()}
    for f in range(40):
        shake = rng.integers(-2, 3, size=2)
        a = digit(2, (50 + 6 * f + shake[0], 100 + shake[1], 40, 60))  # moving right 6 px/frame
        b = digit(9, (400 - 4 * f + shake[1], 300 + shake[0], 44, 64))  # moving left
        out = tr.update(reading(a, b))
        for d in out.digits:
            ids_by_label[d.digit].add(d.id)
            truth = a if d.digit == 2 else b
            assert abs(d.box[0] - truth.box[0]) <= 12 and abs(d.box[1] - truth.box[1]) <= 6, "box lags behind"
    assert all(len(ids) == 1 for ids in ids_by_label.values()), ids_by_label
    assert ids_by_label[2] != ids_by_label[9]
    # a new digit gets a new id (and the old ones are gone disappear_frames later)
    out = None
    for _ in range(video.TrackConfig().disappear_frames):
        out = tr.update(reading(digit(4, (300, 20, 30, 50))))
    assert [d.digit for d in out.digits] == [4] and out.digits[0].id not in ids_by_label[2] | ids_by_label[9]


def test_tracker_follows_a_real_change_of_digit():
    tr = video.Tracker()
    box = (100, 100, 30, 50)
    labels = [tr.update(reading(digit(1, box))).digits for _ in range(10)]
    assert labels[-1][0].digit == 1
    after = [tr.update(reading(digit(7, box))).digits for _ in range(10)]
    assert after[-1][0].digit == 7, "the tracker never let go of a wrong label"


def test_tracker_groups_numbers_with_the_reader():
    tr = video.Tracker()
    ds = [digit(2, (100, 100, 30, 50)), digit(0, (140, 102, 30, 50)), digit(7, (400, 300, 30, 50))]
    for _ in range(4):
        out = tr.update(reading(*ds))
    assert sorted(n.text for n in out.numbers) == ["20", "7"]
    assert all(d.id is not None for d in out.digits)
    assert "id" in out.to_dict()["digits"][0]


# ------------------------------------------------------------------------------------------- overlay


def test_draw_reading_returns_a_new_frame_with_the_overlay():
    frame = np.full((480, 640, 3), 200, np.uint8)
    before = frame.copy()
    tr = video.Tracker()
    for _ in range(3):
        r = tr.update(reading(digit(4, (100, 120, 40, 60)), digit(2, (150, 120, 40, 60))))
    out = video.draw_reading(frame, r, "30.0 fps  10.0 ms/frame  camera 0")
    assert np.array_equal(frame, before), "draw_reading mutated its input"
    assert out.shape == frame.shape and out is not frame
    cfg = video.DrawConfig()
    green = np.all(out == cfg.digit_colour, axis=2)
    orange = np.all(out == cfg.number_colour, axis=2)
    assert green[120:181, 98:103].any() and orange.sum() > 200
    assert (out[:40, :300] != 200).any(), "no status line"
    grey = video.draw_reading(np.full((100, 100), 50, np.uint8), r, None)
    assert grey.shape == (100, 100, 3)


# ------------------------------------------------------------------------------------------- sources


class FakeCapture:
    """A capture that plays `script`: ('frames', n) | ('fail',) | ('freeze', n) | ('block',) | ('forever',)."""

    counter = 0

    def __init__(self, script, log, block: threading.Event | None = None, size=(48, 64)):
        self.script = list(script)
        self.log = log
        self.block = block
        self.size = size
        self.pending = []
        self.released = False
        log.append("open")

    def _frame(self) -> np.ndarray:
        FakeCapture.counter += 1
        img = np.zeros((*self.size, 3), np.uint8)
        img.reshape(-1)[:8] = np.frombuffer(np.int64(FakeCapture.counter).tobytes(), np.uint8)
        return img

    def isOpened(self):
        return True

    def read(self):
        time.sleep(0.002)
        while self.script:
            step = self.script[0]
            if step[0] == "frames" and step[1] > 0:
                self.script[0] = ("frames", step[1] - 1)
                return True, self._frame()
            if step[0] == "freeze":
                self.frozen = getattr(self, "frozen", None)
                if self.frozen is None:
                    self.frozen = self._frame()
                return True, self.frozen.copy()
            if step[0] == "fail":
                return False, None
            if step[0] == "block":
                self.log.append("blocked")
                self.block.wait(30)
                return False, None
            if step[0] == "forever":
                return True, self._frame()
            self.script.pop(0)
        return False, None

    def release(self):
        self.released = True
        self.log.append("release")


def scripted_opener(scripts, log, block=None):
    it = iter(scripts)

    def opener():
        return FakeCapture(next(it, [("forever",)]), log, block)
    return opener


def consume(source, seconds: float) -> list[video.Frame]:
    frames, end = [], time.monotonic() + seconds
    while time.monotonic() < end and not source.ended:
        f = source.get(0.05)
        if f is not None:
            frames.append(f)
    return frames


@pytest.mark.parametrize("fault, script, words", [
    ("read failure", [("frames", 10), ("fail",)], "read failed"),
    ("frozen frames", [("frames", 10), ("freeze",)], "frozen"),
])
def test_live_source_reconnects_after_a_fault(fault, script, words, caplog):
    log: list[str] = []
    src = video.LiveSource("camera 7", scripted_opener([script, [("forever",)]], log), FAST)
    with caplog.at_level("WARNING", logger="digitlens.live"):
        src.start()
        t0 = time.monotonic()
        got = consume(src, 1.5)
        src.close()
    assert src.reconnects >= 1 and src.generation >= 1, f"{fault}: no reconnect"
    assert log.count("open") >= 2 and log.count("release") >= 1
    assert any(words in r.getMessage() and "camera 7" in r.getMessage() for r in caplog.records), caplog.text
    late = [f for f in got if f.t > 0.9]
    assert late, f"{fault}: frames did not resume after the reconnect"
    assert time.monotonic() - t0 < 3


def test_live_source_notices_a_blocked_read_and_never_hangs(caplog):
    log: list[str] = []
    block = threading.Event()
    src = video.LiveSource("stream rtsp://x", scripted_opener([[("frames", 5), ("block",)], [("forever",)]], log, block),
                           FAST)
    with caplog.at_level("WARNING", logger="digitlens.live"):
        src.start()
        got = consume(src, 1.5)
        t0 = time.monotonic()
        src.close()
        closed_in = time.monotonic() - t0
    block.set()
    assert "blocked" in log and log.count("open") >= 2
    assert any("no frame for" in r.getMessage() for r in caplog.records), caplog.text
    assert any(f.t > 0.8 for f in got), "no frames after the stall"
    assert closed_in < 2.5


@pytest.mark.parametrize("script", [[("frames", 5), ("block",)], [("frames", 5), ("freeze",)],
                                    [("frames", 5), ("fail",)]], ids=["blocked", "frozen", "failing"])
def test_default_settings_notice_a_fault_within_two_seconds(script):
    block = threading.Event()
    src = video.LiveSource("camera 2", scripted_opener([script], [], block), video.SourceConfig()).start()
    t0 = time.monotonic()
    while not src.fault and time.monotonic() - t0 < 5:
        src.get(0.05)
    noticed = time.monotonic() - t0
    src.close()
    block.set()
    assert src.fault and noticed < 2.0, f"noticed after {noticed:.2f} s: {src.fault}"


def test_live_source_gives_up_when_told(caplog):
    log: list[str] = []
    cfg = video.SourceConfig(**{**FAST.__dict__, "give_up_s": 0.6})
    src = video.LiveSource("camera 3", scripted_opener([[("frames", 3), ("fail",)]] + [[("fail",)]] * 50, log), cfg)
    src.start()
    t0 = time.monotonic()
    while not src.ended and time.monotonic() - t0 < 5:
        src.get(0.05)
    src.close()
    assert src.ended and src.error and "camera 3" in src.error and "giving up" in src.error
    assert time.monotonic() - t0 < 3


def test_live_source_hands_over_the_newest_frame():
    log: list[str] = []
    src = video.LiveSource("camera 0", scripted_opener([[("forever",)]], log), FAST).start()
    got = []
    for _ in range(15):
        f = src.get(1.0)
        time.sleep(0.03)  # a slow reader: ~15 camera frames arrive meanwhile
        got.append(f.index)
    newest = src.get(1.0).index
    src.close()
    gaps = np.diff(got)
    assert (gaps >= 1).all() and gaps.mean() > 3, f"stale frames were queued: {got}"
    assert src.dropped > 0 and newest - got[-1] < 40


def test_live_source_that_never_opens_is_an_error():
    class Closed:
        def isOpened(self):
            return False

        def release(self):
            pass

    with pytest.raises(video.SourceError, match="camera 5"):
        video.LiveSource("camera 5", Closed, FAST).start()


def test_open_source_errors_name_the_source(tmp_path):
    with pytest.raises(video.SourceError, match="nope.mp4.*no such file"):
        video.open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(video.SourceError, match="holds no images"):
        video.open_source(str(tmp_path))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(video.SourceError, match="notes.mp4"):
        video.open_source(str(bad))
    with pytest.raises(video.SourceError, match=r"no image files match"):
        video.open_source(str(tmp_path / "*.png"))
    if not Path("/dev/video57").exists():
        with pytest.raises(video.SourceError, match="camera 57"):
            video.open_source("57")


class MjpegServer:
    """An HTTP MJPEG camera on 127.0.0.1 (what IP cameras serve) whose feed can stall and come back."""

    def __init__(self):
        import http.server
        import socketserver
        self.mode = "stream"  # stream | stall (connection open, no data) | drop (close connections)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if server.mode == "drop":
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while server.mode != "drop" and not server.closed:
                        if server.mode == "stall":
                            time.sleep(0.05)
                            continue
                        ok, buf = cv2.imencode(".jpg", np.full((120, 160, 3), (i * 37) % 256, np.uint8))
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(buf) + buf.tobytes() + b"\r\n")
                        i += 1
                        time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a):
                pass

        self.closed = False
        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()


def test_real_stream_that_stalls_and_drops_is_reopened(caplog):
    server = MjpegServer()
    try:
        with caplog.at_level("INFO", logger="digitlens.live"):
            src = video.open_source(server.url, config=FAST).start()
            assert len(consume(src, 0.5)) > 5
            for mode in ("stall", "drop"):
                server.mode = mode
                t0 = time.monotonic()
                while not src.fault and time.monotonic() - t0 < 5:
                    src.get(0.05)
                noticed = time.monotonic() - t0
                assert src.fault, f"a {mode}ed stream was not noticed"
                assert noticed < 2.0, f"a {mode}ed stream took {noticed:.1f} s to notice"
                server.mode = "stream"
                generation = src.generation
                got = consume(src, 3.0 if mode == "stall" else 2.0)
                assert src.generation > generation and got, f"no frames after the {mode}"
            src.close()
    finally:
        server.close()
    assert "stream http://127.0.0.1" in caplog.text and "reconnecting" in caplog.text


# ------------------------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def mnist_train():
    from digitlens.data import load_mnist
    m = load_mnist()
    return m.x_train[:5000], m.y_train[:5000]


@pytest.fixture(scope="module")
def clip(mnist_train, tmp_path_factory):
    """A 1.5 s clip (30 frames) of numbers on paper, as mp4 and as a folder of PNGs, with ground truth."""
    cfg = ClipConfig(seconds=1.5, numbers=(3, 2, 1, 4), per_line=2)
    frames, truth = make_clip(*mnist_train, seed=7, cfg=cfg)
    d = tmp_path_factory.mktemp("clip")
    write_video(d / "clip.mp4", frames, cfg.fps)
    (d / "frames").mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(d / "frames" / f"f{i}.png"), f)  # f0..f39: natural order, not f1, f10, f11
    return d, frames, truth, cfg


class TruthReader:
    """Reads a clip's frames from their ground truth, with the faults of a real reader: one digit per frame
    misread, one missed, boxes off by a few pixels. Frames must come in order (files do)."""

    def __init__(self, truth):
        self.truth = truth
        self.i = 0

    def read(self, image):
        tr = self.truth[self.i]
        self.i += 1
        rng = np.random.default_rng(self.i)
        ds = []
        for j, d in enumerate(tr.digits):
            if j == self.i % 7:
                continue  # missed
            label, conf = d.digit, 0.9
            if j == self.i % 5:
                label, conf = (d.digit + 3) % 10, 0.5  # misread
            box = np.array(d.box) + np.r_[rng.integers(-2, 3, 2), 0, 0]
            ds.append(digit(label, box, conf))
        return Reading(image.shape[1], image.shape[0], (), tuple(ds))


def test_loop_on_a_clip_reads_steady_numbers(clip):
    d, frames, truth, cfg = clip
    src = video.open_source(str(d / "clip.mp4")).start()
    reader = TruthReader(truth)
    out = list(video.live_frames(src, reader.read, video.Tracker()))
    src.close()
    assert [lf.frame.index for lf in out] == list(range(len(frames))), "frames skipped or out of order"
    settle = video.TrackConfig().appear_frames + 1
    exact = [sorted(lf.steady.text.split()) == sorted(truth[i].numbers) for i, lf in enumerate(out)][settle:]
    assert all(exact), f"{exact.count(False)} of {len(exact)} settled frames misread"
    ids = [{dd.id for dd in lf.steady.digits} for lf in out[settle:]]
    assert all(i == ids[0] for i in ids), "track ids changed on a steady clip"


@pytest.mark.parametrize("kind", ["file", "folder", "glob"])
def test_cli_json_lines_with_the_real_reader(clip, kind):
    if not MODEL.is_file():
        pytest.skip(f"the shipped model {MODEL} is not there yet (the lead's)")
    d, frames, truth, cfg = clip
    src = {"file": d / "clip.mp4", "folder": d / "frames", "glob": d / "frames" / "f*.png"}[kind]
    p = subprocess.run([PY, "-m", "digitlens.cli", "live", "--source", str(src), "--no-window", "--json"],
                       capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert [x["frame"] for x in lines] == list(range(len(frames)))
    assert all(set(x) >= {"frame", "t", "width", "height", "numbers", "digits", "elapsed_ms"} for x in lines)
    assert all("id" in dd for x in lines for dd in x["digits"])
    settle = video.TrackConfig().appear_frames + 2
    # the digits shown on the true digits (box centre inside a shown box), over the settled frames
    hits = right = count_ok = 0
    texts = set()
    for x, tr in list(zip(lines, truth))[settle:]:
        texts.add(" ".join(n["text"] for n in x["numbers"]))
        count_ok += len(x["numbers"]) == len(tr.numbers)
        for td in tr.digits:
            cx, cy = td.box[0] + td.box[2] / 2, td.box[1] + td.box[3] / 2
            on = [dd for dd in x["digits"] if dd["box"][0] <= cx <= dd["box"][0] + dd["box"][2]
                  and dd["box"][1] <= cy <= dd["box"][1] + dd["box"][3]]
            hits += 1
            right += bool(on) and on[0]["digit"] == td.digit
    n = len(lines) - settle
    assert right / hits >= 0.85, f"{right}/{hits} digits read right; last {texts} vs {truth[-1].numbers}"
    assert count_ok / n >= 0.9, f"numbers miscounted in {n - count_ok} of {n} frames: {texts} vs {truth[-1].numbers}"
    assert len(texts) <= 3, f"the reading kept changing: {texts}"


def test_loop_survives_a_failing_source_and_exits_cleanly():
    log: list[str] = []
    threads_before = threading.active_count()
    src = video.LiveSource("camera 1", scripted_opener([[("frames", 20), ("fail",)], [("frames", 10), ("freeze",)],
                                                        [("forever",)]], log), FAST).start()
    reads = []

    def read(img):
        reads.append(1)
        return Reading(img.shape[1], img.shape[0])

    out = list(video.live_frames(src, read, video.Tracker(), max_frames=150))
    src.close()
    assert len(out) == 150 and src.reconnects >= 2
    time.sleep(0.3)
    assert threading.active_count() <= threads_before + 1, "capture threads left running"


# ------------------------------------------------------------------------------------------- the command


def run_cli(*args, timeout=280, env=None):
    return subprocess.run([PY, "-m", "digitlens.cli", "live", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_cli_bad_source_is_a_clear_error(tmp_path):
    p = run_cli("--source", str(tmp_path / "missing.mp4"), "--no-window")
    assert p.returncode != 0
    assert "missing.mp4" in p.stderr and "no such file" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="this machine has a camera 0")
def test_cli_without_camera_suggests_the_demo():
    p = run_cli("--no-window")
    assert p.returncode != 0 and "no camera" in p.stderr and "--source demo" in p.stderr


def test_cli_help_has_examples():
    p = subprocess.run([PY, "digitrecognization.py", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0 and "--source" in p.stdout and "examples:" in p.stdout and "demo" in p.stdout


def test_cli_demo_headless_without_torch_within_memory(tmp_path):
    if not MODEL.is_file():
        pytest.skip(f"the shipped model {MODEL} is not there yet (the lead's)")
    # VmHWM is this process's own peak RSS (ru_maxrss would carry the forking pytest's peak across exec)
    code = ("import sys, re, json; from digitlens.cli import main; "
            "rc = main(['live', '--source', 'demo', '--max-frames', '5', '--save', sys.argv[1]]); "
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, "
            "'rss_mb': int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024}))")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "out.mp4"
    p = subprocess.run([PY, "-c", code, str(out)], capture_output=True, text=True, cwd=ROOT, timeout=280, env=env)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["rc"] == 0 and res["torch"] is False, res
    assert res["rss_mb"] <= 250, res
    assert "no display" in p.stderr  # the one-line note when no window can open
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_cli_ctrl_c_exits_cleanly(inherited):
    # "ignored": started with SIGINT ignored, as a shell's `cmd &` (and so CI run in the background) leaves it
    if not MODEL.is_file():
        pytest.skip(f"the shipped model {MODEL} is not there yet (the lead's)")
    import signal
    disposition = signal.SIG_IGN if inherited == "ignored" else signal.SIG_DFL
    proc = subprocess.Popen([PY, "digitrecognization.py", "--source", "demo", "--realtime", "--no-window"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    try:
        first = proc.stdout.readline()  # the first reading: the loop is running
        assert first.startswith("frame "), first + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # within one frame normally; generous for a loaded machine
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


def test_cli_unreachable_stream_is_a_clear_error():
    if not MODEL.is_file():
        pytest.skip(f"the shipped model {MODEL} is not there yet (the lead's)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    t0 = time.monotonic()
    p = run_cli("--source", f"http://127.0.0.1:{port}/cam.mjpg", "--no-window", timeout=60)
    assert p.returncode != 0 and f"stream http://127.0.0.1:{port}/cam.mjpg" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and time.monotonic() - t0 < 60


# ------------------------------------------------------------------------------------------- the window


def _free_display() -> int:
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


def read_xwd(path: Path) -> np.ndarray:
    """An xwd screenshot (ZPixmap, 24 or 32 bits per pixel, LSB first) as a BGR array."""
    data = path.read_bytes()
    hdr = np.frombuffer(data[:100], ">u4")
    header_size, width, height, byte_order = int(hdr[0]), int(hdr[4]), int(hdr[5]), int(hdr[7])
    bits_per_pixel, bytes_per_line, ncolors = int(hdr[11]), int(hdr[12]), int(hdr[19])
    assert int(hdr[2]) == 2 and bits_per_pixel in (24, 32) and byte_order == 0, f"unsupported xwd {list(hdr[:12])}"
    bpp = bits_per_pixel // 8
    start = header_size + 12 * ncolors  # the window name, then the colour map (12 bytes an entry)
    rows = np.frombuffer(data[start:start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line)
    return np.ascontiguousarray(rows[:, :width * bpp].reshape(height, width, bpp)[..., :3])


@pytest.fixture
def xvfb():
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (apt-get install xvfb xdotool x11-apps)")
    for tool in ("xdotool", "xwd"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (apt-get install xdotool x11-apps)")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    # Ready when a client can connect, not when its socket file appears: a window opened in between failed with
    # "could not connect to display" (seen once in a fresh-check run)
    env = {**os.environ, "DISPLAY": f":{n}"}
    while subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True, timeout=10).returncode:
        assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(5)


def test_window_shows_the_overlay_and_obeys_keys(xvfb, tmp_path):
    if not MODEL.is_file():
        pytest.skip(f"the shipped model {MODEL} is not there yet (the lead's)")
    env = {**os.environ, "DISPLAY": xvfb}
    snaps = tmp_path / "snaps"
    proc = subprocess.Popen([PY, "digitrecognization.py", "--source", "demo", "--realtime", "--json",
                             "--snapshot-dir", str(snaps)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def xdo(*a):
        return subprocess.run(["xdotool", *a], env=env, capture_output=True, text=True, timeout=10).stdout.split()

    try:
        deadline = time.monotonic() + 30
        wid = []
        while not wid and time.monotonic() < deadline and proc.poll() is None:
            wid = xdo("search", "--name", "digitlens live")
            time.sleep(0.1)
        assert wid, f"no window appeared: {proc.stderr.read() if proc.poll() is not None else ''}"
        # Poll the screen: about 30 frames settle the readings, later on a busy machine (a fixed wait was flaky;
        # 20 s ran out once in a fresh-check while two benchmark workers shared the two cores)
        shot = tmp_path / "root.xwd"
        cfg = video.DrawConfig()
        deadline = time.monotonic() + 45
        while True:
            time.sleep(0.5)
            subprocess.run(["xwd", "-root", "-silent", "-out", str(shot)], env=env, check=True, timeout=10)
            screen = read_xwd(shot)
            green = np.all(screen == cfg.digit_colour, axis=2).sum()
            orange = np.all(screen == cfg.number_colour, axis=2).sum()
            if (green > 300 and orange > 300) or time.monotonic() > deadline or proc.poll() is not None:
                break
        assert green > 300 and orange > 300, f"no overlay on screen (green {green}, orange {orange} px)"
        cv2.imwrite(str(tmp_path / "screen.png"), screen)

        # space pauses: no new frames while paused
        xdo("key", "--window", wid[0], "space")
        time.sleep(0.5)
        n0 = len(lines)
        time.sleep(0.8)
        assert len(lines) == n0, "frames kept coming while paused"
        xdo("key", "--window", wid[0], "s")  # snapshot works while paused
        deadline = time.monotonic() + 5
        while not list(snaps.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        xdo("key", "--window", wid[0], "space")
        time.sleep(0.5)
        assert len(lines) > n0, "space did not resume"
        snap = json.loads(next(snaps.glob("*.json")).read_text())
        assert {"frame", "t", "numbers", "digits"} <= set(snap) and list(snaps.glob("*-overlay.png"))
        xdo("key", "--window", wid[0], "q")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(lines) < 160, "q did not quit before the end of the clip"
