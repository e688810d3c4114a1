"""The FastAPI app of `digitlens serve`: the page, the HTTP API and the WebSocket stream.

Decoding and reading are CPU-bound, so they never run on the event loop: they run on workers (see
`workers.py`), by default one process per core, each with its own `Recognizer` loaded and warmed up before
/readyz says ready. A `ConcurrencyGate` admits a bounded number of jobs (503 past it, with Retry-After) and
every job has a time limit (504). A job that timed out keeps its slot until its worker really finishes,
so overload cannot pile up work. A worker process that dies fails the jobs it had (500 `worker_died`) and
a new pool is started; until it is warm the server answers 503 `not_ready`.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from concurrent.futures import BrokenExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import numpy as np
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitlens import __version__
from digitlens.server.limits import ApiError, ConcurrencyGate, ServeConfig, TokenBucket
from digitlens.server.workers import (CROP, ProcessWorkers, ThreadWorkers, WorkersLost, check_mode, classify_job,
                                      decode_checked, make_workers, read_job, stream_job)

log = logging.getLogger("digitlens.server")
STATIC_DIR = Path(__file__).parent / "static"

# The page loads only its own files; camera frames go out over a same-origin WebSocket.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
                               "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

API_DESCRIPTION = """Read handwritten digits and numbers in images: the HTTP API of `digitlens serve`.

Errors are JSON: `{"error": message, "code": name, "status": HTTP status}`.

**WS /api/stream** (not listed below: OpenAPI has no WebSockets): send each camera frame as one binary
message (JPEG or PNG); each frame gets one JSON text message back: the reading, with a track `id` per
digit (the tracking and smoothing of `digitlens live`), plus `frame` (its number), `t` (seconds since
the connection opened) and `server_ms`; or an error object with `frame`. The text message `reset`
clears the tracks. Frames over the size limit close the connection with code 1009; frames faster than
the rate limit are answered `throttled` (429), and a client that keeps flooding is closed with 1008.
Send the next frame when a reading comes back, so that no stale frames queue up.
"""

# WebSocket close codes (RFC 6455 section 7.4.1)
WS_POLICY_VIOLATION = 1008
WS_TOO_BIG = 1009

T = TypeVar("T")


# ---------------------------------------------------------------- request and response models (OpenAPI)

class ClassifyRequest(BaseModel):
    """A batch of 28x28 crops in MNIST's convention: white ink on black, centred by mass.

    Give exactly one of `crops` (nested lists, N x 28 x 28) or `crops_base64` (N*784 bytes, row-major uint8).
    """
    crops: list[list[list[float]]] | None = Field(None, description="N crops of 28 rows of 28 values")
    crops_base64: str | None = Field(None, description="base64 of N*784 uint8 pixels, crop after crop, row-major")
    scale: Literal["uint8", "unit"] = Field("uint8", description="'uint8': values 0..255; 'unit': values 0..1")


class ClassifyResponse(BaseModel):
    classes: list[str] = Field(description="the model's classes: ten digits first, then any reject class")
    predictions: list[str] = Field(description="the most likely class of each crop")
    confidences: list[float] = Field(description="the probability of that class")
    probabilities: list[list[float]] = Field(description="N x len(classes) probabilities")


class ErrorBody(BaseModel):
    error: str = Field(description="one-line message saying what was wrong")
    code: str = Field(description="a stable machine-readable name: too_large, unsupported_format, busy, ...")
    status: int


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody, "description": d} for s, d in (
        (400, "malformed request"), (408, "the upload was too slow"), (413, "body, image or batch over its limit"),
        (415, "image format outside the allow-list"), (422, "undecodable image or invalid data"),
        (503, "too many requests in flight; retry after Retry-After seconds"), (504, "over the time limit"))}

READ_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "An image: multipart/form-data with a file field `file`, or the raw image bytes.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {"200": {"description": "the reading: the JSON of `digitlens read --json` without `path`",
                          "content": {"application/json": {"example": {
                              "width": 640, "height": 480,
                              "numbers": [{"text": "42", "confidence": 0.98, "box": [100, 80, 120, 90], "digits": [0, 1]}],
                              "digits": [{"digit": 4, "confidence": 0.99, "box": [100, 80, 55, 90],
                                          "top3": [[4, 0.99], [9, 0.006], [1, 0.002]]},
                                         {"digit": 2, "confidence": 0.99, "box": [165, 82, 55, 88],
                                          "top3": [[2, 0.99], [3, 0.005], [7, 0.002]]}],
                              "elapsed_ms": 12.3}}}}},
}


def not_ready(cfg: ServeConfig) -> ApiError:
    return ApiError(503, "not_ready", "the readers are starting (loading the model); retry shortly",
                    headers={"Retry-After": str(cfg.retry_after_s)})


def make_tracker() -> Any:
    """The tracking and smoothing of `digitlens live`, one per WebSocket connection."""
    from digitlens.video import Tracker

    return Tracker()


# ---------------------------------------------------------------- the app

class Engine:
    """The workers and the gate: everything `lifespan` sets up."""

    def __init__(self, cfg: ServeConfig, workers: ThreadWorkers | ProcessWorkers):
        self.cfg = cfg
        self.workers = workers
        self.gate = ConcurrencyGate(cfg.max_inflight)
        self.started = time.time()

    @property
    def ready(self) -> bool:
        """Every worker has loaded its reader and warmed it up (False again while dead workers are replaced)."""
        return self.workers.ready

    def busy(self) -> ApiError:
        return ApiError(503, "busy", f"server busy: {self.cfg.max_inflight} requests in flight (--max-inflight); "
                        f"retry in {self.cfg.retry_after_s} s", headers={"Retry-After": str(self.cfg.retry_after_s)})

    def not_ready(self) -> ApiError:
        return not_ready(self.cfg)

    def refuse_if_full(self) -> None:
        """A 503 before the body is even read when the gate is full (the real admission is `run`'s)."""
        if self.gate.inflight >= self.gate.limit:
            self.gate.rejected += 1
            raise self.busy()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(context, *args) on a worker, admitted by the gate (else 503) and bounded in time (else 504)."""
        if not self.gate.try_enter():
            raise self.busy()
        generation = self.workers.generation
        try:
            job = self.workers.submit(fn, *args)
        except WorkersLost:
            self.gate.leave()
            raise self.not_ready() from None
        except BaseException:
            self.gate.leave()
            raise
        job.add_done_callback(lambda _: self.gate.leave())  # when the worker ends, not when we stop waiting
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), self.cfg.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the request took longer than {self.cfg.request_timeout_s:g} s "
                           "(--timeout)") from None
        except BrokenExecutor:
            self.workers.restart(generation)
            raise ApiError(500, "worker_died", "the worker process reading this request died (killed or crashed); "
                           "new workers are starting: retry in a few seconds") from None


def crops_from_request(req: ClassifyRequest, cfg: ServeConfig) -> np.ndarray:
    """The request's crops as (N, 28, 28) uint8 or float32 in [0, 1]; ApiError 413/422 otherwise."""
    if (req.crops is None) == (req.crops_base64 is None):
        raise ApiError(422, "invalid", "give exactly one of 'crops' or 'crops_base64'")
    if req.crops_base64 is not None:
        if req.scale != "uint8":
            raise ApiError(422, "invalid", "'crops_base64' holds uint8 pixels; scale must be 'uint8'")
        try:
            raw = base64.b64decode(req.crops_base64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ApiError(422, "invalid", f"'crops_base64' is not valid base64 ({e})") from None
        if len(raw) % (CROP * CROP):
            raise ApiError(422, "invalid", f"'crops_base64' holds {len(raw)} bytes, not a multiple of {CROP * CROP}")
        n = len(raw) // (CROP * CROP)
        if n > cfg.max_classify_batch:
            raise ApiError(413, "too_large", f"{n} crops is over the limit of {cfg.max_classify_batch} (--max-batch)")
        return np.frombuffer(raw, np.uint8).reshape(n, CROP, CROP)
    if len(req.crops) > cfg.max_classify_batch:
        raise ApiError(413, "too_large", f"{len(req.crops)} crops is over the limit of {cfg.max_classify_batch} "
                       "(--max-batch)")
    for i, crop in enumerate(req.crops):
        if len(crop) != CROP or any(len(row) != CROP for row in crop):
            raise ApiError(422, "invalid", f"crop {i} is not {CROP}x{CROP}")
    arr = np.asarray(req.crops, dtype=np.float64).reshape(len(req.crops), CROP, CROP)
    top = 255.0 if req.scale == "uint8" else 1.0
    if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > top):
        raise ApiError(422, "invalid", f"crop values must lie in 0..{top:g} for scale '{req.scale}'")
    if req.scale == "uint8":
        return np.rint(arr).astype(np.uint8)
    return arr.astype(np.float32)


class FinishResponses:
    """ASGI middleware (plain ASGI: no per-request task group): security headers on every HTTP response,
    and the route body limit's plain-text 413 turned into the JSON error body every other error has.

    Starlette's per-route body limit (which also counts chunked bodies as they stream) answers from inside
    the route with text/plain; this rewrites only that response.
    """

    def __init__(self, app: Any, body_limits: dict[str, int]):
        self.app = app
        self.body_limits = body_limits

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def finish(message: dict) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if message["status"] == 413 and headers.get("content-type", "").startswith("text/plain"):
                    replaced = True
                    limit = self.body_limits.get(scope.get("path", ""), 0)
                    body = json.dumps(ApiError(413, "too_large", f"request body is over the limit of {limit:,} bytes "
                                                                 "(--max-upload-mb)").body()).encode()
                    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                    raw += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                    await send({"type": "http.response.start", "status": 413, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
                for k, v in SECURITY_HEADERS.items():
                    if k not in headers:
                        headers[k] = v
            elif replaced:
                return  # the plain-text body of the replaced 413
            await send(message)

        await self.app(scope, receive, finish)


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _test_accuracy(meta: dict[str, Any]) -> float | None:
    """MNIST test accuracy (0..1) from the metadata: a number, or a dict of splits with "mnist_test"."""
    acc = meta.get("mnist_test_accuracy")
    if isinstance(acc, dict):
        acc = acc.get("mnist_test")
    try:
        return None if acc is None else float(acc)
    except (TypeError, ValueError):
        return None


def _model_file_info(path: Path | None) -> dict[str, Any]:
    if path is None or not Path(path).is_file():
        return {"file": None, "sha256": None}
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"file": Path(path).name, "sha256": digest}


def create_app(config: ServeConfig | None = None, model_path: str | Path | None = None, *,
               recognizer: Any = None, load: Callable[[], Any] | None = None) -> FastAPI:
    """The app. In `lifespan` the workers start: with `cfg.worker_mode` "process" each worker process loads
    the model at `model_path` (None: the shipped model), or calls `load` (picklable: it runs in the worker)
    to get its reader; with "thread" the threads share `recognizer` (a ready one, as tests give) or the one
    loaded here. Every worker reads once to warm up before /readyz answers ready."""
    cfg = config or ServeConfig()
    check_mode(cfg, recognizer)  # now, not when the app starts
    path = Path(model_path) if model_path is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = Engine(cfg, make_workers(cfg, recognizer, path, load))
        app.state.engine = engine
        app.state.model_info = _model_file_info(path)
        try:
            await engine.workers.start()
            log.info("model loaded and warmed up; %d worker %ses, at most %d requests in flight",
                     cfg.workers, cfg.worker_mode, cfg.max_inflight)
            yield
        finally:
            await engine.workers.close()

    # No /docs or /redoc: FastAPI's pages load Swagger/ReDoc from a CDN, and this server works offline.
    app = FastAPI(title="digitlens", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=API_DESCRIPTION)
    app.state.config = cfg

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 413:  # from the body limit, which counts chunked bodies as they stream
            limit = request.scope.get("starlette.max_body_size", cfg.max_body_bytes)
            return _error_response(ApiError(413, "too_large", f"request body is over the limit of {limit:,} bytes "
                                            "(--max-upload-mb)"))
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "bad_request")
        return _error_response(ApiError(err.status_code, code, str(err.detail), dict(err.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error_response(ApiError(422, "invalid", _validation_message(list(err.errors()))))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(ApiError(500, "internal", f"internal error ({type(err).__name__}); see the server log"))

    app.add_middleware(FinishResponses, body_limits={
        "/api/read": cfg.max_upload_bytes + cfg.multipart_overhead_bytes, "/api/classify": cfg.max_json_bytes})

    def engine_of(request: Request | WebSocket) -> Engine:
        engine = getattr(request.app.state, "engine", None)
        if engine is None or not engine.ready:
            raise not_ready(cfg)
        return engine

    # ------------------------------------------------------------ page and probes

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up",
             responses={503: {"model": ErrorBody, "description": "not ready yet"}})
    async def readyz(request: Request) -> dict[str, Any]:
        engine = getattr(request.app.state, "engine", None)
        if engine is not None:
            engine.workers.check()  # a worker that died between requests is replaced now, not at the next read
        engine = engine_of(request)
        return {"status": "ready", "workers": cfg.workers, "worker_mode": cfg.worker_mode,
                "inflight": engine.gate.inflight, "max_inflight": cfg.max_inflight}

    # ------------------------------------------------------------ API

    @app.post("/api/read", summary="Read the digits and numbers in an image", openapi_extra=READ_BODY_DOC,
              responses=ERROR_RESPONSES, max_body_size=cfg.max_upload_bytes + cfg.multipart_overhead_bytes)
    async def read(request: Request, probabilities: bool = Query(
            False, description="also give `probabilities`: per digit, the reader's ten digit probabilities (for "
                                "charts), or null from a reader that gives none")):
        engine = engine_of(request)
        engine.refuse_if_full()
        try:
            data, name = await asyncio.wait_for(_upload(request), cfg.body_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, "body_timeout", f"the upload took longer than {cfg.body_timeout_s:g} s") from None
        if not data:
            raise ApiError(400, "empty", f"{name}: no image data (empty body or file)")
        # the worker sends the reading as JSON bytes: nothing to decode and encode again here
        return Response(await engine.run(read_job, data, name, probabilities), media_type="application/json")

    async def _upload(request: Request) -> tuple[bytes, str]:
        """The image bytes of a POST /api/read (multipart field 'file', or the raw body) and a name for them."""
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=4) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise ApiError(400, "no_file", "multipart body has no file field named 'file'")
                return await upload.read(cfg.max_upload_bytes + 1), upload.filename or "upload"
        data = await request.body()
        if len(data) > cfg.max_upload_bytes:
            raise ApiError(413, "too_large", f"body: {len(data):,} bytes is over the limit of "
                           f"{cfg.max_upload_bytes:,} bytes (--max-upload-mb)")
        return data, "body"

    @app.post("/api/classify", summary="Classify a batch of 28x28 MNIST-style crops", response_model=ClassifyResponse,
              responses=ERROR_RESPONSES, max_body_size=cfg.max_json_bytes)
    async def classify(request: Request, payload: ClassifyRequest) -> dict[str, Any]:
        engine = engine_of(request)
        crops = crops_from_request(payload, cfg)
        return await engine.run(classify_job, crops)

    @app.get("/api/model", summary="The model's metadata, classes, MNIST test accuracy and the server's limits")
    async def model(request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        meta = dict(engine.workers.info.get("metadata") or {})
        info = dict(request.app.state.model_info)
        if meta.get("sha256"):
            info["sha256"] = meta["sha256"]
        if meta.get("path"):
            info["file"] = Path(str(meta["path"])).name
        meta.pop("path", None)  # the server's file system is nobody else's business
        return {"version": __version__, "classes": list(engine.workers.info["classes"]),
                "mnist_test_accuracy": _test_accuracy(meta), **info, "metadata": meta, "limits": cfg.public()}

    @app.websocket("/api/stream")
    async def stream(ws: WebSocket) -> None:
        """JPEG (or PNG) frames in as binary messages; one JSON reading out per frame, tracked and smoothed.

        Each reply is the reading (digits carry a track `id`) plus `frame` (its number), `t` (seconds
        since the connection opened) and `server_ms`, or an error object {"error", "code", "status",
        "frame"}. A text message "reset" clears the tracks. Frames over the size limit close the
        connection with 1009; frames faster than the rate limit are answered `throttled` (429), and a
        client that keeps flooding is closed with 1008.
        """
        await ws.accept()
        try:
            engine = engine_of(ws)
        except ApiError as e:
            await ws.close(code=1013, reason=e.message[:120])  # 1013: try again later
            return
        start = time.monotonic()
        tracker = make_tracker()
        bucket = TokenBucket(cfg.ws_max_fps, cfg.ws_burst, start)
        frame_no = 0
        throttled = 0
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                now = time.monotonic()
                text, data = message.get("text"), message.get("bytes")
                if text is not None:
                    if text.strip() == "reset":
                        tracker = make_tracker()
                        await ws.send_json({"reset": True})
                    else:
                        await ws.send_json(ApiError(400, "bad_request", "send frames as binary messages; "
                                                    "the only text message is 'reset'").body())
                    continue
                frame_no += 1
                if data is None or len(data) > cfg.ws_max_frame_bytes:
                    size = 0 if data is None else len(data)
                    await ws.close(code=WS_TOO_BIG, reason=f"frame of {size} bytes is over the limit of "
                                                           f"{cfg.ws_max_frame_bytes} bytes")
                    return
                if not bucket.take(now):
                    throttled += 1
                    if throttled > cfg.ws_max_throttled:
                        await ws.close(code=WS_POLICY_VIOLATION, reason=f"too many frames: the limit is "
                                       f"{cfg.ws_max_fps:g} per second; wait for each reading")
                        return
                    await ws.send_json({**ApiError(429, "throttled", f"frame dropped: over {cfg.ws_max_fps:g} "
                                                   "frames per second").body(), "frame": frame_no})
                    continue
                throttled = 0
                try:
                    reading = tracker.update(await engine.run(stream_job, data, f"frame {frame_no}"), now - start)
                except ApiError as e:
                    if e.code == "too_many_pixels":
                        await ws.close(code=WS_TOO_BIG, reason=e.message[:120])
                        return
                    await ws.send_json({**e.body(), "frame": frame_no})
                    continue
                except Exception as e:  # a reader bug must not take the connection's server down
                    log.exception("stream frame %d failed", frame_no)
                    await ws.send_json({**ApiError(500, "internal", f"internal error ({type(e).__name__})").body(),
                                        "frame": frame_no})
                    continue
                out = reading.to_dict()
                out.update(frame=frame_no, t=round(now - start, 3),
                           server_ms=round((time.monotonic() - now) * 1000.0, 2))
                await ws.send_text(json.dumps(out))
        except WebSocketDisconnect:
            return

    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory digitlens.server.app:app_from_env` (the defaults, the shipped model)."""
    return create_app(ServeConfig())


__all__ = ["create_app", "ServeConfig", "ClassifyRequest", "ClassifyResponse", "decode_checked"]
