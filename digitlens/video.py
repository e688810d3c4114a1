"""Live video: sources, the capture thread, reconnects, tracking, the overlay and the live loop.

The loop reads as the pipeline: take the newest frame -> read it (the same Recognizer as `read`) ->
track and smooth -> draw / JSON. Capture runs in its own thread. Cameras and streams keep only the
newest frame (stale ones are dropped, so latency does not grow when reading is slower than the
camera); files and image folders are read frame by frame in order unless `realtime` asks for
wall-clock pacing. A camera or stream that fails, stalls or freezes is noticed by a supervisor
thread, logged, and reopened with exponential back-off; nothing here blocks for longer than a
poll interval, so the loop never hangs on a dead source.

No torch on this path; importing this module does no work.
"""
from __future__ import annotations

import contextlib

import glob
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from digitlens.imageio import IMAGE_SUFFIXES
from digitlens.reading import Digit, Number, Reading

log = logging.getLogger("digitlens.live")

DEMO_CLIP = Path(__file__).resolve().parent / "models" / "demo.mp4"
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
SOURCE_KINDS_HELP = "a camera index (0), a video file, a folder or glob of images, a stream URL (rtsp://, http://) or 'demo'"


class SourceError(RuntimeError):
    """A video source could not be opened or read; the one-line message names the source."""


# --------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class SourceConfig:
    stall_s: float = 1.5  # no new frame from a camera/stream for this long = a fault (the issue asks < 2 s)
    freeze_s: float = 1.5  # identical frames for this long = a frozen source (a real sensor never repeats exactly)
    freeze_stride: int = 8  # compare every 8th pixel each way: a frozen frame is bit-identical, 1/64 of it suffices
    open_timeout_s: float = 5.0  # opening plus the first frame; webcams need ~1 s to warm up, RTSP a few
    read_timeout_ms: int = 2000  # FFmpeg's own read timeout for streams, so a blocked read returns
    backoff_initial_s: float = 0.5  # first reconnect delay; doubles after each failed attempt
    backoff_max_s: float = 8.0  # reconnect delay cap
    healthy_s: float = 2.0  # frames flowing this long after a reconnect reset the back-off
    give_up_s: float = 0.0  # no frame for this long ends the run with an error; 0 = keep trying until quit
    poll_s: float = 0.05  # supervisor tick; bounds how late a fault is noticed beyond stall_s/freeze_s
    prefetch: int = 4  # decoded frames queued ahead for files/folders (in order, none dropped)
    sequence_fps: float = 30.0  # pacing of an image folder under `realtime` (a folder has no frame rate)


@dataclass(frozen=True)
class TrackConfig:
    min_iou: float = 0.2  # a detection whose box overlaps a track's predicted box this much may continue it
    max_centre_shift: float = 0.75  # ...or whose centre lies within 0.75 box sizes of the prediction (fast motion)
    max_size_ratio: float = 1.8  # never match boxes whose heights differ more than this (a 1 next to an 8)
    vote_frames: int = 8  # the label vote looks at this many recent frames of the track (a miss votes 0)
    min_vote: float = 0.5  # to appear, the winner's mean probability over those frames; stops flickering fragments
    switch_ratio: float = 1.5  # a shown label changes only when another label's vote is 1.5x its own
    appear_frames: int = 3  # a track is shown after 3 consecutive frames that agree on its label
    disappear_frames: int = 5  # ...and dropped after 5 consecutive frames without a matching detection
    box_alpha: float = 0.5  # EMA weight of the newest box (1 = no smoothing); damps hand shake
    velocity_alpha: float = 0.5  # EMA weight of the newest centre displacement, used to predict the next box
    min_confidence: float = 0.0  # detections below this confidence are ignored by the tracker
    max_inside: float = 0.6  # a digit with 60% of its box inside a larger shown digit's box is a fragment of it


# --------------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Frame:
    index: int  # frame number in the source (gaps = frames dropped because the reader was busy)
    t: float  # capture time, seconds since the source started
    image: np.ndarray  # BGR uint8 (H, W, 3)


class Capture(Protocol):
    """What a source needs from cv2.VideoCapture (tests pass fakes)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


Opener = Callable[[], Capture]


class FrameSource:
    """Base: a capture thread publishes frames; `get` hands the consumer the next one."""

    kind = "source"

    def __init__(self, name: str) -> None:
        self.name = name
        self.fps: float | None = None  # frames per second, when the source says
        self.fault: str | None = None  # current problem, for the status line; None while healthy
        self.error: str | None = None  # why the source ended early (gave up), None at a normal end
        self.generation = 0  # increments on each reconnect; the tracker resets on a change
        self.dropped = 0  # frames captured but never handed out (stale)
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._t0 = time.monotonic()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def age_s(self, frame: Frame) -> float:
        """Seconds since `frame` was captured (its latency so far)."""
        return time.monotonic() - self._t0 - frame.t

    def start(self) -> "FrameSource":
        return self

    def get(self, timeout: float = 0.1) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "FrameSource":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Latest:
    """A one-slot mailbox: the producer overwrites, the consumer takes the newest frame once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._seq = 0
        self._taken = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None and self._seq > self._taken:
                self.dropped += 1
            self._frame = frame
            self._seq += 1
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._seq == self._taken:
                self._cond.wait(timeout)
            if self._seq == self._taken:
                return None
            self._taken = self._seq
            return self._frame

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _signature(image: np.ndarray, stride: int) -> bytes:
    return image[::stride, ::stride].tobytes()


class _Worker(threading.Thread):
    """One capture attempt: open, then read until failure, freeze, or being abandoned."""

    def __init__(self, source: "LiveSource", attempt: int) -> None:
        super().__init__(name=f"capture-{source.name}-{attempt}", daemon=True)
        self.src = source
        self.abandoned = threading.Event()
        self.state = "opening"  # opening -> reading -> done
        self.started_at = time.monotonic()
        self.last_frame_at: float | None = None  # last new (different) frame
        self.last_read_at: float | None = None  # last read() that returned at all, new frame or repeat
        self.first_frame_at: float | None = None
        self.failure: str | None = None

    def run(self) -> None:
        cap = None
        try:
            cap = self.src.opener()
            opened = getattr(cap, "isOpened", lambda: True)()
            if not opened:
                self.failure = "could not be opened"
                return
            if self.abandoned.is_set():
                return
            self.state = "reading"
            cfg = self.src.config
            same_since: float | None = None
            last_sig: bytes | None = None
            while not self.abandoned.is_set() and not self.src._stop.is_set():
                ok, image = cap.read()
                now = self.last_read_at = time.monotonic()
                if self.abandoned.is_set():
                    return
                if not ok or image is None or getattr(image, "size", 0) == 0:
                    self.failure = "read failed"
                    return
                sig = _signature(image, cfg.freeze_stride)
                if sig == last_sig:
                    if same_since is None:
                        same_since = now
                    if cfg.freeze_s > 0 and now - same_since >= cfg.freeze_s:
                        self.failure = f"frozen: the same frame for {now - same_since:.1f} s"
                        return
                    continue  # a repeated frame is not new; it does not count as progress
                same_since, last_sig = None, sig
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.last_frame_at = now
                self.src._publish(self, _as_bgr(image), now)
        except Exception as exc:  # a driver error is a fault like any other: report it, reconnect
            self.failure = f"error: {exc}".splitlines()[0]
        finally:
            self.state = "done"
            if cap is not None:
                try:
                    cap.release()
                except Exception:  # releasing a broken capture must not kill the thread
                    pass
            self.src._wake.set()


class LiveSource(FrameSource):
    """A camera or stream: newest frame only; faults noticed by a supervisor and reopened with back-off.

    `opener` makes a fresh capture object each time (cv2.VideoCapture or a fake in tests).
    """

    def __init__(self, name: str, opener: Opener, config: SourceConfig = SourceConfig(), kind: str = "camera",
                 fps: float | None = None) -> None:
        super().__init__(name)
        self.opener = opener
        self.config = config
        self.kind = kind
        self.fps = fps
        self.reconnects = 0
        self._box = _Latest()
        self._wake = threading.Event()
        self._worker: _Worker | None = None
        self._index = 0
        self._supervisor: threading.Thread | None = None
        self._first = threading.Event()

    def start(self) -> "LiveSource":
        """Open the source and wait for its first frame; raise SourceError if it never comes."""
        self._t0 = time.monotonic()
        self._worker = self._spawn(0)
        deadline = time.monotonic() + self.config.open_timeout_s
        while time.monotonic() < deadline:
            if self._first.is_set():
                break
            if self._worker.state == "done":
                break
            self._wake.wait(self.config.poll_s)
            self._wake.clear()
        if not self._first.is_set():
            reason = self._worker.failure or f"no frame within {self.config.open_timeout_s:g} s"
            self._worker.abandoned.set()
            self.close()
            raise SourceError(f"cannot open {self.name}: {reason}")
        self._supervisor = threading.Thread(target=self._supervise, name=f"supervise-{self.name}", daemon=True)
        self._supervisor.start()
        return self

    def _spawn(self, attempt: int) -> _Worker:
        worker = _Worker(self, attempt)
        worker.start()
        return worker

    def _publish(self, worker: _Worker, image: np.ndarray, now: float) -> None:
        if worker is not self._worker:
            return
        self._first.set()
        self._box.put(Frame(self._index, now - self._t0, image))
        self._index += 1

    def _supervise(self) -> None:
        cfg = self.config
        attempt = 0
        last_frame = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(cfg.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            w = self._worker
            assert w is not None
            now = time.monotonic()
            if w.last_frame_at is not None:
                last_frame = max(last_frame, w.last_frame_at)
                if self.fault and now - w.last_frame_at < cfg.poll_s * 4:
                    log.info("%s: frames flowing again", self.name)
                    self.fault = None
                if attempt and w.first_frame_at is not None and now - w.first_frame_at >= cfg.healthy_s:
                    attempt = 0
            problem = None
            if w.state == "done":
                problem = w.failure or "capture ended"
            elif w.state == "opening" and now - w.started_at > cfg.open_timeout_s:
                problem = f"no answer after {cfg.open_timeout_s:g} s"
            elif w.state == "reading" and now - (w.last_read_at or w.started_at) > cfg.stall_s:
                # a read blocked in the driver; repeated frames are the worker's to judge (freeze_s)
                problem = f"no frame for {now - (w.last_read_at or w.started_at):.1f} s"
            if problem is None:
                continue
            w.abandoned.set()  # a read blocked in a driver returns some day; that thread then exits quietly
            if cfg.give_up_s > 0 and now - last_frame >= cfg.give_up_s:
                self.error = f"{self.name}: no frame for {now - last_frame:.0f} s ({problem}); giving up"
                log.error(self.error)
                self.fault = self.error
                self._ended.set()
                self._box.wake()
                return
            delay = min(cfg.backoff_max_s, cfg.backoff_initial_s * (2 ** attempt))
            attempt += 1
            self.fault = f"{self.name}: {problem}; reconnecting in {delay:.1f} s (attempt {attempt})"
            log.warning(self.fault)
            if self._stop.wait(delay):
                break
            self.reconnects += 1
            self.generation += 1
            self.fault = f"{self.name}: {problem}; reconnecting (attempt {attempt})"
            self._worker = self._spawn(attempt)

    def get(self, timeout: float = 0.1) -> Frame | None:
        frame = self._box.get(timeout)
        self.dropped = self._box.dropped
        return frame

    def close(self) -> None:
        super().close()
        if self._worker is not None:
            self._worker.abandoned.set()
        self._wake.set()
        self._box.wake()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=1.0)
        if self._worker is not None:
            self._worker.join(timeout=0.5)  # a driver stuck in read() is left behind (daemon thread)
        self._ended.set()


class SequenceSource(FrameSource):
    """A video file or a list of images: every frame in order (no drops) unless `realtime` paces them.

    `frames` is an iterator of images made lazily inside the capture thread.
    """

    def __init__(self, name: str, frames: Callable[[], Iterator[np.ndarray]], kind: str, fps: float | None,
                 realtime: bool = False, config: SourceConfig = SourceConfig()) -> None:
        super().__init__(name)
        self.kind = kind
        self.fps = fps
        self.realtime = realtime
        self.config = config
        self._make_frames = frames
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, config.prefetch))
        self._box = _Latest()
        self._thread: threading.Thread | None = None

    def start(self) -> "SequenceSource":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _put(self, frame: Frame | None) -> bool:
        if self.realtime:
            if frame is None:
                self._ended.set()
                self._box.wake()
            else:
                self._box.put(frame)
            return not self._stop.is_set()
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        period = 1.0 / (self.fps or self.config.sequence_fps)
        try:
            for i, image in enumerate(self._make_frames()):
                if self.realtime:
                    due = self._t0 + i * period
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        return
                if not self._put(Frame(i, time.monotonic() - self._t0, _as_bgr(image))):
                    return
        except Exception as exc:  # e.g. a truncated file: end the run and say why
            self.error = f"{self.name}: {exc}".splitlines()[0]
            log.error(self.error)
        finally:
            self._put(None)

    def get(self, timeout: float = 0.1) -> Frame | None:
        if self.realtime:
            frame = self._box.get(timeout)
            self.dropped = self._box.dropped
            return frame
        if self.ended:
            return None
        try:
            frame = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if frame is None:
            self._ended.set()
        return frame

    def close(self) -> None:
        super().close()
        self._box.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _natural_key(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def _video_frames(path: str) -> Callable[[], Iterator[np.ndarray]]:
    def frames() -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(path)
        try:
            total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            n = 0
            while True:
                ok, image = cap.read()
                if not ok or image is None:
                    if total and n < total - 1:
                        log.warning("%s: reading stopped at frame %d of %d", path, n, total)
                    return
                n += 1
                yield image
        finally:
            cap.release()
    return frames


def _image_frames(paths: Sequence[str]) -> Callable[[], Iterator[np.ndarray]]:
    def frames() -> Iterator[np.ndarray]:
        from digitlens.imageio import ImageError, load_image
        shape = None
        for path in paths:
            try:
                image = load_image(path)
            except ImageError as exc:
                log.warning("skipped: %s", exc)
                continue
            if shape is not None and image.shape != shape:  # one video size throughout (window, --save)
                image = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            shape = image.shape
            yield image
    return frames


@contextlib.contextmanager
def _quiet_cv2() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing a source (we report failures ourselves)."""
    try:
        old = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except Exception:
        old = None
    try:
        yield
    finally:
        if old is not None:
            cv2.utils.logging.setLogLevel(old)


def _camera_opener(index: int | str) -> Opener:
    def opener() -> Capture:
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue adds latency; we keep our own newest frame
        return cap
    return opener


def _stream_opener(url: str, config: SourceConfig) -> Opener:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(config.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(config.read_timeout_ms)]

    def opener() -> Capture:
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    return opener


def describe_source(spec: str) -> str:
    """A short human name for a source spec: 'camera 0', 'demo clip', 'file clip.mp4', ..."""
    s = str(spec).strip()
    if s == "demo":
        return "demo clip"
    if s.isdigit() or s.startswith("/dev/video"):
        return f"camera {s}"
    if s.lower().startswith(STREAM_SCHEMES):
        return f"stream {_redact(s)}"
    if any(c in s for c in "*?["):
        return f"images {s}"
    if os.path.isdir(s):
        return f"folder {s}"
    return f"file {s}"


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)  # never print a password from rtsp://user:pass@host


def open_source(spec: str | int, realtime: bool = False, config: SourceConfig = SourceConfig(),
                fps: float | None = None) -> FrameSource:
    """Open a source (not started): camera index, video file, folder/glob of images, stream URL or 'demo'.

    Raises SourceError naming the source when it does not exist or cannot be opened.
    """
    s = str(spec).strip()
    name = describe_source(s)
    if s == "":
        raise SourceError(f"empty source: give {SOURCE_KINDS_HELP}")
    if s == "demo":
        if not DEMO_CLIP.is_file():
            raise SourceError(f"the demo clip is missing: {DEMO_CLIP} (regenerate it with `python -m digitlens.demo`)")
        s = str(DEMO_CLIP)
    if s.isdigit() or s.startswith("/dev/video"):
        index: int | str = int(s) if s.isdigit() else s
        with _quiet_cv2():
            probe = cv2.VideoCapture(index)
            ok = probe.isOpened()
            camera_fps = float(probe.get(cv2.CAP_PROP_FPS) or 0.0) if ok else 0.0
            probe.release()
        if not ok:
            raise SourceError(f"cannot open {name}: no such camera, or it is in use by another program")
        return LiveSource(name, _camera_opener(index), config, kind="camera",
                          fps=camera_fps if 0 < camera_fps < 1000 else None)
    if s.lower().startswith(STREAM_SCHEMES):
        return LiveSource(name, _stream_opener(s, config), config, kind="stream")
    if any(c in s for c in "*?[") and not os.path.exists(s):
        paths = sorted((p for p in glob.glob(s, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES),
                       key=_natural_key)
        if not paths:
            raise SourceError(f"cannot open {name}: no image files match")
        return SequenceSource(name, _image_frames(paths), "images", fps, realtime, config)
    path = Path(s)
    if path.is_dir():
        paths = sorted((str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                       key=_natural_key)
        if not paths:
            raise SourceError(f"cannot open {name}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return SequenceSource(name, _image_frames(paths), "images", fps, realtime, config)
    if not path.exists():
        raise SourceError(f"cannot open source '{s}': no such file or folder (a source is {SOURCE_KINDS_HELP})")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SequenceSource(name, _image_frames([s]), "images", fps, realtime, config)
    with _quiet_cv2():
        cap = cv2.VideoCapture(s)
        ok = cap.isOpened() and cap.read()[0]
        file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        cap.release()
    if not ok:
        raise SourceError(f"cannot open {name}: not a video that OpenCV's FFmpeg can decode")
    rate = fps or (file_fps if 0 < file_fps < 1000 else None)
    if s == str(DEMO_CLIP):
        name = "demo clip"
    return SequenceSource(name, _video_frames(s), "file", rate, realtime, config)


# --------------------------------------------------------------------------------------------------
# Tracking


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) boxes (x, y, w, h) -> (N, M) intersection areas."""
    iw = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(iw, 0, None) * np.clip(ih, 0, None)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = _intersections(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # smoothed x, y, w, h (float)
    velocity: np.ndarray  # smoothed centre displacement per frame (dx, dy)
    votes: deque  # recent probability vectors over the ten digits (newest last), at most vote_frames
    score: np.ndarray  # their sum, kept up to date as votes come and go
    misses: int = 0  # consecutive frames without one
    shown: bool = False  # passed the appear hysteresis and not yet dropped
    label: int = -1  # the label shown (sticky, see TrackConfig.switch_ratio)
    agree: int = 1  # consecutive observations whose top label equals the vote winner
    last_top: int = -1  # top label of the newest observation

    def vote(self, p: np.ndarray) -> None:
        if len(self.votes) == self.votes.maxlen:
            self.score -= self.votes[0]
        self.votes.append(p)
        self.score += p

    def predicted(self) -> np.ndarray:
        box = self.box.copy()
        box[:2] += self.velocity * (1 + self.misses)
        return box


_NO_VOTE = np.zeros(10)


def _probabilities(d: Digit) -> np.ndarray:
    p = np.zeros(10, np.float64)
    for k, prob in d.top3:
        if 0 <= int(k) < 10:
            p[int(k)] = float(prob)
    if p.sum() == 0:
        p[int(d.digit)] = float(d.confidence)
    return p


class Tracker:
    """Steadies readings over frames: ids, a confidence-weighted label vote, smoothed boxes, hysteresis.

    A track is shown after `appear_frames` consecutive matched frames whose labels agree and is dropped
    after `disappear_frames` frames without a match (while missing it keeps its last box, so a digit the
    reader misses for a frame does not blink). The shown label only changes when another label out-votes
    it by `switch_ratio` over the last `vote_frames` observations.
    """

    def __init__(self, config: TrackConfig | None = None,
                 group: Callable[[Sequence[Digit]], tuple[tuple[Digit, ...], tuple[Number, ...]]] | None = None) -> None:
        self.config = config or TrackConfig()
        self._group = group  # how digits become numbers; None = the reader's own group_numbers
        self.tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks = []

    def _match(self, boxes: np.ndarray) -> list[tuple[int, int]]:
        """Greedy association, best pairs first: IoU, then centre distance (in box sizes) for fast motion."""
        cfg = self.config
        if not self.tracks or not len(boxes):
            return []
        pred = np.array([tr.predicted() for tr in self.tracks])  # (T, 4)
        iou = _iou_matrix(pred, boxes)
        pc = pred[:, :2] + pred[:, 2:] / 2
        dc = boxes[:, :2] + boxes[:, 2:] / 2
        size = np.maximum(pred[:, 2:].max(1), 1.0)[:, None]
        shift = np.hypot(*(dc[None] - pc[:, None]).transpose(2, 0, 1)) / size
        ratio = np.maximum(boxes[None, :, 3], 1.0) / np.maximum(pred[:, None, 3], 1.0)
        ok = ((iou >= cfg.min_iou) | (shift <= cfg.max_centre_shift)) & (ratio <= cfg.max_size_ratio) \
            & (ratio >= 1 / cfg.max_size_ratio)
        score = np.where(ok, iou - 0.1 * shift, -np.inf)
        matches = []
        for flat in np.argsort(-score, axis=None, kind="stable"):
            ti, di = divmod(int(flat), score.shape[1])
            if not np.isfinite(score[ti, di]):
                break
            matches.append((ti, di))
            score[ti, :] = -np.inf
            score[:, di] = -np.inf
        return matches

    def _drop_fragments(self, digits: list[Digit]) -> list[Digit]:
        """Handwriting never nests digits: one mostly inside a larger one is a piece of it (a loop, a stroke)."""
        if len(digits) < 2:
            return digits
        boxes = np.array([d.box for d in digits], np.float64)
        area = boxes[:, 2] * boxes[:, 3]
        inside = _intersections(boxes, boxes) / np.maximum(area, 1)[:, None]  # [i, j]: share of i inside j
        larger = area[None, :] > area[:, None]
        fragment = ((inside >= self.config.max_inside) & larger).any(axis=1)
        return [d for d, f in zip(digits, fragment) if not f]

    def update(self, reading: Reading, t: float = 0.0) -> Reading:
        """Feed one frame's reading; returns the steady reading (stable digits with ids, numbers regrouped)."""
        if self._group is None:
            from digitlens.recognizer import group_numbers
            self._group = group_numbers
        cfg = self.config
        detections = [d for d in reading.digits if d.confidence >= cfg.min_confidence]
        boxes = np.array([d.box for d in detections], np.float64).reshape(-1, 4)
        matches = self._match(boxes)
        matched_t = {ti for ti, _ in matches}
        matched_d = {di for _, di in matches}
        for ti, di in matches:
            tr = self.tracks[ti]
            det = boxes[di]
            old_centre = tr.box[:2] + tr.box[2:] / 2
            new_centre = det[:2] + det[2:] / 2
            step = (new_centre - old_centre) / (1 + tr.misses)
            tr.velocity = cfg.velocity_alpha * step + (1 - cfg.velocity_alpha) * tr.velocity
            tr.box = cfg.box_alpha * det + (1 - cfg.box_alpha) * tr.predicted()
            tr.vote(_probabilities(detections[di]))
            tr.misses = 0
            top = int(detections[di].digit)
            tr.agree = tr.agree + 1 if top == tr.last_top else 1
            tr.last_top = top
        for ti, tr in enumerate(self.tracks):
            if ti not in matched_t:
                tr.misses += 1
                tr.vote(_NO_VOTE)  # a frame without the digit votes for nothing
        for di, d in enumerate(detections):
            if di not in matched_d:
                first = _probabilities(d)
                self.tracks.append(_Track(self._next_id, boxes[di].copy(), np.zeros(2),
                                          deque([first], maxlen=cfg.vote_frames), first.copy(), last_top=int(d.digit)))
                self._next_id += 1
        self.tracks = [tr for tr in self.tracks if tr.misses < cfg.disappear_frames]

        shown: list[Digit] = []
        for tr in self.tracks:
            score = tr.score
            best = int(np.argmax(score))
            if not tr.shown:
                tr.label = best
                # appear: k consecutive observations agreeing with each other and with the vote
                tr.shown = (tr.misses == 0 and tr.agree >= cfg.appear_frames and tr.last_top == best
                            and score[best] >= cfg.min_vote * len(tr.votes))
            elif best != tr.label and score[best] >= cfg.switch_ratio * score[tr.label]:
                tr.label = best
            if not tr.shown:
                continue
            probs = score / max(len(tr.votes), 1)
            top3 = tuple((int(k), float(probs[k])) for k in np.argsort(-probs, kind="stable")[:3])
            bx, by, bw, bh = tr.box
            bx, by = bx + tr.velocity[0] * tr.misses, by + tr.velocity[1] * tr.misses
            x, y = max(0, int(round(bx))), max(0, int(round(by)))
            w = max(1, min(int(round(bw)), reading.width - x))
            h = max(1, min(int(round(bh)), reading.height - y))
            shown.append(Digit(tr.label, float(probs[tr.label]), (x, y, w, h), top3, tr.id))
        shown = self._drop_fragments(shown)
        digits, numbers = self._group(shown)
        return Reading(reading.width, reading.height, tuple(numbers), tuple(digits), reading.elapsed_ms,
                       dict(reading.timings))


# --------------------------------------------------------------------------------------------------
# Overlay


@dataclass(frozen=True)
class DrawConfig:
    digit_colour: tuple[int, int, int] = (60, 200, 60)  # BGR green: a digit's box
    number_colour: tuple[int, int, int] = (0, 170, 255)  # BGR orange: a number's box and text
    text_colour: tuple[int, int, int] = (255, 255, 255)
    label_background: tuple[int, int, int] = (30, 30, 30)
    status_background: tuple[int, int, int] = (0, 0, 0)
    fault_colour: tuple[int, int, int] = (40, 40, 230)  # BGR red: status text while the source is failing
    font_per_px: float = 1 / 900  # font scale per pixel of frame height: 0.53 at 480 p, readable at 1080 p
    line_per_px: float = 1 / 400  # box thickness per pixel of frame height
    digit_label_scale: float = 0.75  # a digit's label ("4 99%") relative to the status font
    number_label_scale: float = 1.4  # a number's label relative to the status font: the main reading


def _text_box(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int],
              background: tuple[int, int, int], thick: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    x = min(max(0, x), max(0, img.shape[1] - tw - 4))
    y = min(max(th + 4, y), img.shape[0] - base - 2)
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 4, y + base + 2), background, -1)
    cv2.putText(img, text, (x + 2, y), font, scale, colour, thick, cv2.LINE_AA)


def draw_reading(frame: np.ndarray, reading: Reading, status: str | None = None,
                 config: DrawConfig = DrawConfig(), fault: bool = False) -> np.ndarray:
    """A copy of `frame` (BGR or grey) with digit boxes, labels with confidence, numbers and a status line."""
    img = frame.copy() if frame.ndim == 3 and frame.shape[2] == 3 else _as_bgr(frame)
    h = img.shape[0]
    scale = max(0.4, h * config.font_per_px)
    thick = max(1, int(round(h * config.line_per_px)))
    pad = max(2, thick * 2)
    for n in reading.numbers:  # under the digits' boxes
        x, y, w, hh = n.box
        cv2.rectangle(img, (x - pad, y - pad), (x + w + pad, y + hh + pad), config.number_colour, thick)
    for d in reading.digits:
        x, y, w, hh = d.box
        cv2.rectangle(img, (x, y), (x + w, y + hh), config.digit_colour, thick + 1)
    small = scale * config.digit_label_scale
    (_, th), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, small, 1)
    for d in reading.digits:
        x, y, w, hh = d.box
        _text_box(img, f"{d.digit} {d.confidence * 100:.0f}%", (x, y + hh + pad + th + 4), small,
                  config.text_colour, config.label_background, 1)
    for n in reading.numbers:  # on top: the number matters most
        x, y, w, hh = n.box
        _text_box(img, f"{n.text}  {n.confidence * 100:.0f}%", (x - pad, y - pad - 4), scale * config.number_label_scale,
                  (0, 0, 0), config.number_colour, max(1, thick))
    if status:
        _text_box(img, status, (6, int(26 * scale) + 6), scale, config.fault_colour if fault else config.text_colour,
                  config.status_background, 1)
    return img


# --------------------------------------------------------------------------------------------------
# The loop


@dataclass(frozen=True)
class LiveFrame:
    frame: Frame
    raw: Reading  # what the reader saw in this frame alone
    steady: Reading  # after tracking: what is shown and printed
    fps: float  # frames processed per second (smoothed)
    ms: float  # read + track time of this frame


@dataclass
class LiveStats:
    frames: int = 0
    fps_alpha: float = 0.1  # EMA weight of the newest frame interval in the shown fps
    fps: float = 0.0
    _last: float | None = None

    def tick(self, now: float) -> float:
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            self.fps = 1 / dt if self.fps == 0 else (1 - self.fps_alpha) * self.fps + self.fps_alpha / dt
        self._last = now
        self.frames += 1
        return self.fps


def live_frames(source: FrameSource, read: Callable[[np.ndarray], Reading], tracker: Tracker,
                max_frames: int | None = None, idle: Callable[[], bool] | None = None) -> Iterator[LiveFrame]:
    """The live loop without I/O: newest frame -> read -> track. Stops at the source's end or max_frames.

    `idle` is called whenever no new frame arrived within a poll interval (the window redraws and reads
    keys there); it returns False to stop.
    """
    stats = LiveStats()
    generation = source.generation
    while max_frames is None or stats.frames < max_frames:
        frame = source.get(0.05)
        if frame is None:
            if source.ended:
                return
            if idle is not None and idle() is False:
                return
            continue
        if source.generation != generation:  # a reconnected camera may point elsewhere: start afresh
            generation = source.generation
            tracker.reset()
        t0 = time.perf_counter()
        raw = read(frame.image)
        steady = tracker.update(raw, frame.t)
        ms = (time.perf_counter() - t0) * 1000
        fps = stats.tick(time.monotonic())
        yield LiveFrame(frame, raw, steady, fps, ms)


def reading_json(frame: Frame, steady: Reading) -> dict[str, Any]:
    """One `live --json` line: frame, t, then the `read --json` fields with an id per digit."""
    return {"frame": int(frame.index), "t": round(float(frame.t), 3), **steady.to_dict()}
