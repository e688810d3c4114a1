"""Where `digitlens serve` reads: worker processes (the default) or threads of the server process.

A reading is CPU-bound and much of it is Python (detection, grouping), so threads of one process are
serialised by the GIL: 8 clients on 2 cores got the throughput of one. `ProcessWorkers` gives each core
a process with its own `Recognizer`, loaded once by the pool's initializer and warmed up before the
server says it is ready. `ThreadWorkers` keeps everything in one process: for tests, and for an app
built around a `Recognizer` object that already exists.

The jobs are plain module-level functions of (context, *args), so a process pool pickles them by name.
They decode and read in the worker and return plain data: the JSON bytes of a reading (the server only
forwards them), a `Reading` for the stream (its tracker lives in the server process, one per
connection), or a dict. Nothing here imports FastAPI, so a worker process starts light.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from digitlens.imageio import ImageError, ImageLimits, decode_image, header_size, sniff_format
from digitlens.reading import Digit, Reading
from digitlens.server.limits import ApiError, ServeConfig

log = logging.getLogger("digitlens.server")
CROP = 28  # MNIST crop side, the classifier's input


# ---------------------------------------------------------------- untrusted bytes -> image

def check_image(data: bytes, name: str, cfg: ServeConfig, max_pixels: int | None = None) -> str:
    """The image's format, after the checks that have their own status: size 413, format 415, pixels 413."""
    max_pixels = cfg.max_pixels if max_pixels is None else max_pixels
    if len(data) > cfg.max_upload_bytes:
        raise ApiError(413, "too_large", f"{name}: {len(data):,} bytes is over the limit of "
                       f"{cfg.max_upload_bytes:,} bytes (--max-upload-mb)")
    if not data:
        raise ApiError(400, "empty", f"{name}: no image data (empty body or file)")
    fmt = sniff_format(data)
    if fmt is None or fmt not in cfg.formats:
        what = "not an image format this server knows" if fmt is None else f"{fmt} images are not allowed here"
        raise ApiError(415, "unsupported_format", f"{name}: {what}; allowed: {', '.join(cfg.formats)}")
    try:
        width, height = header_size(data, fmt)
    except ValueError as e:
        raise ApiError(422, "undecodable", f"{name}: not a readable {fmt} image: {e}") from None
    if width * height > max_pixels:
        raise ApiError(413, "too_many_pixels", f"{name}: {width}x{height} = {width * height:,} pixels is over the "
                       f"limit of {max_pixels:,} pixels (--max-megapixels)")
    return fmt


def decode_checked(data: bytes, name: str, cfg: ServeConfig, max_pixels: int | None = None,
                   grey: bool = True) -> np.ndarray:
    """Untrusted bytes -> grey uint8 (what the reader reads; BGR with grey=False), or an ApiError with the
    status that fits what was wrong."""
    check_image(data, name, cfg, max_pixels)
    limits = ImageLimits(max_bytes=cfg.max_upload_bytes, max_pixels=cfg.max_pixels if max_pixels is None else max_pixels,
                         formats=frozenset(cfg.formats))
    try:
        return decode_image(data, name, limits, grey)
    except ImageError as e:
        raise ApiError(422, "undecodable", str(e)) from None


def digit_probabilities(digit: Digit) -> list[float] | None:
    """The ten digit probabilities the reader gave this digit (for the page's bars), or None from a reader
    that gives none (the page then draws the top three)."""
    return [round(float(p), 4) for p in digit.probs] if len(digit.probs) == 10 else None


def json_bytes(content: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it (compact, UTF-8, no NaN), made where the data is."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- the jobs (run on a worker)

@dataclass(frozen=True)
class WorkerContext:
    """What every job gets: the worker's reader and the server's limits."""
    recognizer: Any
    cfg: ServeConfig


def read_job(ctx: WorkerContext, data: bytes, name: str, probabilities: bool) -> bytes:
    """POST /api/read: the reading's JSON, ready to send (with all ten probabilities per digit if asked)."""
    reading = ctx.recognizer.read(decode_checked(data, name, ctx.cfg))
    out = reading.to_dict()
    if probabilities:
        out["probabilities"] = [digit_probabilities(d) for d in reading.digits]
    return json_bytes(out)


def stream_job(ctx: WorkerContext, data: bytes, name: str) -> Reading:
    """One WebSocket frame, read; the connection's tracker (in the server process) steadies it."""
    return ctx.recognizer.read(decode_checked(data, name, ctx.cfg, max_pixels=ctx.cfg.ws_max_pixels))


def classify_job(ctx: WorkerContext, crops: np.ndarray) -> dict[str, Any]:
    """POST /api/classify: probabilities and predictions of a batch of 28x28 crops."""
    probs = np.asarray(ctx.recognizer.classify(crops), dtype=np.float64)
    classes = [str(c) for c in ctx.recognizer.classes]
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    return {"classes": classes, "predictions": [classes[i] for i in best],
            "confidences": [round(float(probs[k, i]), 5) for k, i in enumerate(best)],
            "probabilities": [[round(float(p), 5) for p in row] for row in probs]}


def warm_up(ctx: WorkerContext) -> dict[str, Any]:
    """One read of a blank frame with a number on it and one classify, so that the first request pays no
    lazy initialisation. Returns what GET /api/model tells about the model: its classes and metadata."""
    import cv2

    h, w = ctx.cfg.warmup_size
    frame = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(frame, "42", (w // 3, h * 2 // 3), cv2.FONT_HERSHEY_SIMPLEX, h / 120, (0, 0, 0), max(2, h // 60))
    ctx.recognizer.read(frame)
    ctx.recognizer.classify(np.zeros((1, CROP, CROP), np.uint8))
    return {"classes": [str(c) for c in ctx.recognizer.classes],
            "metadata": dict(getattr(ctx.recognizer, "metadata", {}) or {})}


def load_recognizer(model_path: Path | None, ort_threads: int) -> Any:
    """The reader a worker process loads: `model_path` (None: the shipped model), ONNX Runtime limited to
    `ort_threads` threads (the workers already keep every core busy)."""
    from digitlens.recognizer import ReaderConfig, Recognizer

    return Recognizer.load(model_path, ReaderConfig(intra_op_threads=ort_threads))


# ---------------------------------------------------------------- threads of this process

class ThreadWorkers:
    """Jobs on `cfg.workers` threads sharing one `Recognizer` (thread-safe; ONNX Runtime releases the GIL,
    the rest of a reading does not)."""

    mode = "thread"

    def __init__(self, cfg: ServeConfig, recognizer: Any = None, load: Callable[[], Any] | None = None):
        if (recognizer is None) == (load is None):
            raise ValueError("give exactly one of recognizer or load")
        self.cfg = cfg
        self.recognizer = recognizer
        self.load = load
        self.context: WorkerContext | None = None
        self.executor = ThreadPoolExecutor(cfg.workers, thread_name_prefix="digitlens-read")
        self.info: dict[str, Any] = {}
        self.ready = False
        self.generation = 0

    async def start(self) -> None:
        if self.recognizer is None:
            self.recognizer = await asyncio.wrap_future(self.executor.submit(self.load))
        self.context = WorkerContext(self.recognizer, self.cfg)
        self.info = await asyncio.wrap_future(self.executor.submit(warm_up, self.context))
        self.ready = True

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self.executor.submit(fn, self.context, *args)

    def check(self) -> None:
        """Threads do not die on their own: nothing to check."""

    def restart(self, generation: int) -> None:
        """Threads are never replaced (a broken pool comes only from processes)."""

    def pids(self) -> list[int]:
        return []

    async def close(self) -> None:
        self.ready = False
        self.executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- worker processes

_CONTEXT: WorkerContext | None = None  # in a worker process: its reader, set by _start_worker


def _start_worker(load: Callable[[], Any], cfg: ServeConfig, reports: Any, go: Any) -> None:
    """The pool's initializer, once per worker process: load the reader, warm it up, report, wait for the rest.

    Waiting on `go` until every worker has reported keeps each one busy while the others start, so the
    pool spawns all of them (it spawns a process only when none is idle) before the server is ready.
    """
    global _CONTEXT
    # Ctrl-C signals the whole process group; the server process stops its workers itself, after the
    # requests in flight, so a worker must not die of it in the middle of a job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    try:
        context = WorkerContext(load(), cfg)
        info = warm_up(context)
    except Exception as e:  # the server says it, in one line, and stops the pool; jobs here would fail
        reports.put(("error", os.getpid(), f"{type(e).__name__}: {e}"))
        return
    _CONTEXT = context
    if cfg.worker_nice and hasattr(os, "nice"):  # after loading, which must not wait behind other workers' reads
        os.nice(cfg.worker_nice)
    reports.put(("ready", os.getpid(), info))
    go.wait(cfg.worker_start_timeout_s)


def _exit_with_parent() -> None:
    """End this worker when the server process ends, however it ends (even kill -9): no orphans."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="digitlens-parent-watch", daemon=True).start()


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    if _CONTEXT is None:
        raise RuntimeError("this worker has no reader: its start-up failed")
    return fn(_CONTEXT, *args)


def _noop() -> None:
    """A job that only makes the pool spawn a process (see _start_worker)."""


class WorkersLost(Exception):
    """The worker processes died (a worker was killed or crashed); a new pool is being started."""


class ProcessWorkers:
    """Jobs on `cfg.workers` processes, each with its own reader, in a ProcessPoolExecutor.

    Processes are started with 'spawn' (the server has threads, which 'fork' would copy half-way). When a
    worker dies the pool is broken: every job in it fails (the server answers those requests), and
    `restart` starts a fresh pool; until it is loaded and warmed up `ready` is False.
    """

    mode = "process"

    def __init__(self, cfg: ServeConfig, load: Callable[[], Any]):
        self.cfg = cfg
        self.load = load  # picklable: it runs in each worker process
        self.mp_context = multiprocessing.get_context("spawn")
        self.info: dict[str, Any] = {}
        self.ready = False
        self.generation = 0  # which pool; a failure of an older pool's job does not restart the new one
        self.executor: ProcessPoolExecutor | None = None
        self._pids: list[int] = []
        self._restarting: asyncio.Task | None = None
        self._closed = False

    async def start(self) -> None:
        """Start a pool and return once every worker has loaded its reader and warmed it up."""
        reports, go = self.mp_context.Queue(), self.mp_context.Event()
        executor = ProcessPoolExecutor(self.cfg.workers, mp_context=self.mp_context, initializer=_start_worker,
                                       initargs=(self.load, self.cfg, reports, go))
        self.executor = executor
        self.generation += 1
        # One job per worker, submitted back to back while none is idle: the pool spawns one process for each.
        spawns = [executor.submit(_noop) for _ in range(self.cfg.workers)]
        try:
            found = await asyncio.to_thread(self._wait_reports, reports, spawns)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            go.set()
            reports.close()
        self._pids = [pid for pid, _ in found]
        self.info = found[0][1]
        self.ready = True

    def _wait_reports(self, reports: Any, spawns: list[Future]) -> list[tuple[int, dict[str, Any]]]:
        found: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + self.cfg.worker_start_timeout_s
        while len(found) < self.cfg.workers:
            if self._closed:
                raise RuntimeError("the server is stopping")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.cfg.workers - len(found)} of {self.cfg.workers} worker processes did not "
                                   f"load the model in {self.cfg.worker_start_timeout_s:g} s")
            try:
                status, pid, detail = reports.get(timeout=0.2)
            except queue.Empty:
                lost = [f for f in spawns if f.done() and f.exception() is not None]
                if lost:
                    raise RuntimeError(f"a worker process died while starting ({lost[0].exception()})")
                continue
            if status == "error":
                raise RuntimeError(f"worker process {pid} could not load the model: {detail}")
            found.append((pid, detail))
        return found

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run fn(context, *args) on a worker. WorkersLost while a new pool is starting or the pool is broken."""
        if not self.ready or self.executor is None:
            raise WorkersLost("the worker processes are restarting")
        try:
            return self.executor.submit(_in_worker, fn, *args)
        except BrokenProcessPool:
            self.restart(self.generation)
            raise WorkersLost("the worker processes died; they are restarting") from None

    def pids(self) -> list[int]:
        return list(self._pids)

    def check(self) -> None:
        """Restart the pool if one of its workers is gone (one that died between requests)."""
        if self.ready and not all(_alive(pid) for pid in self._pids):
            self.restart(self.generation)

    def restart(self, generation: int) -> None:
        """A new pool in the background if pool `generation` is still the current one; not ready until it is warm."""
        if generation != self.generation or self._closed or self._restarting is not None:
            return
        log.error("worker processes lost (pid %s); starting new ones", ", ".join(map(str, self._pids)))
        self.ready = False
        broken, self.executor = self.executor, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        self._restarting = asyncio.get_running_loop().create_task(self._start_again())

    async def _start_again(self) -> None:
        delay = 1.0
        try:
            while not self._closed:
                try:
                    await self.start()
                    log.info("worker processes restarted (pid %s)", ", ".join(map(str, self._pids)))
                    return
                except Exception as e:
                    log.error("worker processes could not be restarted (%s); trying again in %g s", e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            self._restarting = None

    async def close(self) -> None:
        """Stop the workers: jobs still running get `cfg.shutdown_grace_s`, then their processes are killed."""
        self._closed = True
        self.ready = False
        if self._restarting is not None:
            self._restarting.cancel()
        executor, self.executor = self.executor, None
        if executor is not None:
            await asyncio.to_thread(self._stop, executor, self._pids)

    def _stop(self, executor: ProcessPoolExecutor, pids: list[int]) -> None:
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + self.cfg.shutdown_grace_s
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in pids:
            if _alive(pid):
                log.warning("worker process %d has not stopped %g s after shutdown; killing it", pid,
                            self.cfg.shutdown_grace_s)
                try:
                    os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                except ProcessLookupError:
                    pass
        executor.shutdown(wait=True)  # joins the pool's threads and reaps its processes


def _alive(pid: int) -> bool:
    """Whether our child `pid` still runs (the pool reaps a dead worker at once, so no zombie answers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_mode(cfg: ServeConfig, recognizer: Any) -> None:
    """A ready Recognizer object cannot go to other processes: it asks for thread workers."""
    if recognizer is not None and cfg.worker_mode != "thread":
        raise ValueError("a Recognizer object lives in this process, so its reads run on threads: use "
                         "ServeConfig(worker_mode='thread'), or give worker processes a model path or `load`")


def make_workers(cfg: ServeConfig, recognizer: Any = None, model_path: Path | None = None,
                 load: Callable[[], Any] | None = None) -> ThreadWorkers | ProcessWorkers:
    """The workers `cfg.worker_mode` asks for. Threads share `recognizer` (loaded here if None); processes
    each call `load` (default: `load_recognizer(model_path, cfg.ort_threads)`), which must pickle."""
    check_mode(cfg, recognizer)
    if cfg.worker_mode == "process":
        return ProcessWorkers(cfg, load or functools.partial(load_recognizer, model_path, cfg.ort_threads))
    if recognizer is not None:
        return ThreadWorkers(cfg, recognizer=recognizer)
    return ThreadWorkers(cfg, load=load or functools.partial(load_recognizer, model_path, cfg.ort_threads))
