"""Settings and guards of `digitlens serve`: request limits, the concurrency gate, the body-size guard.

Nothing here imports FastAPI, so `digitlens serve --help` stays fast. The body size itself is enforced by
FastAPI's per-route `max_body_size` (it counts chunked bodies while they stream). Every limit is a field of `ServeConfig` with its unit and reason, and each one has its own
HTTP status (see `ApiError`).
"""
from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1024 * 1024
WORKER_MODES = ("process", "thread")


def default_workers() -> int:
    """Reading workers: one per usable core, since a reading is CPU-bound."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # localhost only unless the user says otherwise
    port: int = 8000
    workers: int = field(default_factory=default_workers)  # reading processes (or threads); CPU-bound: one per core
    # "process": each worker a process with its own reader, so every core reads (threads of one process are
    # serialised by the GIL in the reader's Python parts); "thread": one process, for tests and for an app
    # built around a Recognizer object that already exists
    worker_mode: str = "process"
    # niceness added to each worker process: the server process's work is short and waits on nobody (HTTP,
    # 503s past the gate, probes, WebSocket I/O), so it gets a core at once and the workers take the rest.
    # Overload (8 clients, bound 4) on 2 cores, 503 p99: 9.7-11 ms at 0, 7.2-8.8 at 5, 6.6-7.4 at 10. Idle cores
    # go to the workers whatever their niceness; where other programs keep the cores busy, 0 keeps their share.
    worker_nice: int = 10
    worker_start_timeout_s: float = 120.0  # for every worker process to load and warm up (a busy machine is slow)
    shutdown_grace_s: float = 5.0  # at shutdown, jobs still running get this long before their process is killed
    ort_threads: int = 1  # onnxruntime threads per read: the workers already keep every core busy
    max_inflight: int = 16  # requests decoding/reading at once (queued on the workers); past it: 503
    retry_after_s: int = 1  # Retry-After header of a 503: one reading takes tens of ms, so retry soon
    request_timeout_s: float = 10.0  # per-request limit on decode + read; past it: 504
    body_timeout_s: float = 30.0  # time to receive an upload (10 MB at 3 Mbit/s); past it: 408, slow senders go
    max_upload_bytes: int = 10 * MIB  # one image (or the raw body of POST /api/read); past it: 413
    multipart_overhead_bytes: int = 64 * 1024  # multipart framing and headers allowed on top of the image
    max_json_bytes: int = 8 * MIB  # body of POST /api/classify (256 crops as JSON lists are ~1 MB)
    max_pixels: int = 40_000_000  # width x height, read from the header before decoding; past it: 413
    formats: tuple[str, ...] = ("png", "jpeg", "bmp", "webp", "tiff", "pnm")  # magic-byte allow-list; else 415
    max_classify_batch: int = 1024  # crops per POST /api/classify; past it: 413
    ws_max_frame_bytes: int = 4 * MIB  # one JPEG frame on WS /api/stream; past it: close 1009
    ws_max_fps: float = 60.0  # sustained frames per second per connection; faster frames are throttled
    ws_burst: int = 10  # frames a client may send back-to-back before throttling starts
    ws_max_throttled: int = 60  # consecutive throttled frames before the connection is closed (1008)
    ws_max_pixels: int = 4_000_000  # pixels of one stream frame (a 1080p frame is 2.1 M); past it: close 1009
    warmup_size: tuple[int, int] = (480, 640)  # (height, width) of the blank frame read at start-up
    log_level: str = "info"

    def __post_init__(self) -> None:
        positive = ("workers", "ort_threads", "max_inflight", "max_upload_bytes", "max_json_bytes", "max_pixels",
                    "max_classify_batch", "ws_max_frame_bytes", "ws_burst", "ws_max_throttled", "ws_max_pixels")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ServeConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.request_timeout_s <= 0 or self.body_timeout_s <= 0 or self.ws_max_fps <= 0 \
                or self.worker_start_timeout_s <= 0 or self.shutdown_grace_s < 0:
            raise ValueError("ServeConfig.request_timeout_s, body_timeout_s, ws_max_fps and worker_start_timeout_s "
                             "must be positive, shutdown_grace_s not negative")
        if not 0 <= self.worker_nice <= 19:
            raise ValueError(f"ServeConfig.worker_nice must be 0..19, got {self.worker_nice}")
        if self.worker_mode not in WORKER_MODES:
            raise ValueError(f"ServeConfig.worker_mode must be one of {WORKER_MODES}, got {self.worker_mode!r}")
        unknown = set(self.formats) - set(ServeConfig.__dataclass_fields__["formats"].default)
        if unknown:
            raise ValueError(f"ServeConfig.formats: unknown format(s) {sorted(unknown)}; "
                             f"known: {ServeConfig.__dataclass_fields__['formats'].default}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body accepted at all (checked while streaming, before any parsing)."""
        return max(self.max_upload_bytes + self.multipart_overhead_bytes, self.max_json_bytes)

    def public(self) -> dict[str, Any]:
        """The limits a client may want to know (GET /api/model)."""
        d = asdict(self)
        for private in ("host", "port", "log_level", "warmup_size", "worker_nice", "worker_start_timeout_s",
                        "shutdown_grace_s"):
            d.pop(private)
        d["formats"] = list(self.formats)
        return d


class ApiError(Exception):
    """An error answered as JSON {"error": message, "code": code, "status": status}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "status": self.status}

    def __reduce__(self) -> tuple:
        # raised in a worker process, it is pickled back to the server with all its fields
        return (ApiError, (self.status, self.code, self.message, self.headers))


def too_large(what: str, size: int, limit: int, option: str) -> ApiError:
    return ApiError(413, "too_large", f"{what} is {size} bytes or more; the limit is {limit} bytes ({option})")


class ConcurrencyGate:
    """A bound on work in flight that never queues: `try_enter` fails at once when the bound is reached.

    `asyncio.Semaphore` would queue waiters without bound; a 503 with Retry-After tells the client to
    come back instead, and keeps latency for the admitted requests flat. Thread-safe, because a slot is
    released from a pool thread when the work really ends (a timed-out read still holds its core).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._inflight = 0
        self._lock = threading.Lock()
        self.rejected = 0  # requests answered 503 so far
        self.admitted = 0

    @property
    def inflight(self) -> int:
        return self._inflight

    def try_enter(self) -> bool:
        with self._lock:
            if self._inflight >= self.limit:
                self.rejected += 1
                return False
            self._inflight += 1
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            if self._inflight <= 0:
                raise RuntimeError("ConcurrencyGate.leave() without a matching try_enter()")
            self._inflight -= 1


class TokenBucket:
    """Frames per second for one WebSocket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
