"""`digitlens serve`: the subcommand. FastAPI and uvicorn are imported inside run(), so --help stays fast."""
from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from digitlens.server.limits import MIB, WORKER_MODES, ServeConfig

HELP = """Web page and HTTP API: draw a digit, show the webcam, upload a photo, or call the API.

Starts a FastAPI app on uvicorn. Images are read by worker processes, one per core (--workers), each of
which loads the model once and warms it up before /readyz answers ready.
The page at / works offline (no external scripts, fonts or styles) and has three tabs: Draw, Camera and
Upload. The API is described by its OpenAPI schema at /openapi.json:
  POST /api/read      an image (multipart field 'file', or the raw bytes) -> the JSON of `read --json`
  POST /api/classify  {"crops": N x 28 x 28 values 0..255} -> probabilities and predictions
  GET  /api/model     the model's metadata and MNIST test accuracy, and the server's limits
  WS   /api/stream    binary JPEG frames in, one tracked reading (JSON) out per frame
  GET  /healthz, /readyz
Every limit answers with its own status and a JSON body {"error", "code", "status"}: body or pixels too
large 413, format not allowed 415, undecodable 422, too many requests in flight 503 with Retry-After,
upload too slow 408, over the time limit 504. It binds to localhost unless --host says otherwise.

EXAMPLES
  digitlens serve                                 http://127.0.0.1:8000 with the shipped model
  digitlens serve --port 9000 --model my.onnx     another port and model
  digitlens serve --host 0.0.0.0 --max-inflight 8 reachable from the network, at most 8 jobs at once
  curl -F file=@photo.jpg http://127.0.0.1:8000/api/read
"""

DEFAULTS = ServeConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=DEFAULTS.host, help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULTS.port, help="TCP port (default %(default)s)")
    p.add_argument("--model", type=Path, default=None, help="ONNX model file (default: the shipped model)")
    p.add_argument("--workers", type=int, default=DEFAULTS.workers,
                   help="reading processes, each with its own copy of the model (default %(default)s: one per "
                        "usable core)")
    p.add_argument("--worker-mode", choices=WORKER_MODES, default=DEFAULTS.worker_mode,
                   help="'process': workers are processes and use every core; 'thread': threads of the server "
                        "process, which share one model and (for the reader's Python parts) one core "
                        "(default %(default)s)")
    p.add_argument("--worker-nice", type=int, default=DEFAULTS.worker_nice,
                   help="niceness added to the worker processes, so that the server process (HTTP, 503s, probes) "
                        "gets a core at once; 0 where other programs share the machine's cores (default %(default)s)")
    p.add_argument("--max-inflight", type=int, default=DEFAULTS.max_inflight,
                   help="requests decoded/read at once; more get 503 with Retry-After (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULTS.request_timeout_s,
                   help="time limit of one request in seconds; over it: 504 (default %(default)s)")
    p.add_argument("--body-timeout", type=float, default=DEFAULTS.body_timeout_s,
                   help="time allowed to upload an image in seconds; over it: 408 (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULTS.max_upload_bytes / MIB,
                   help="largest image upload in MiB; over it: 413 (default %(default)s)")
    p.add_argument("--max-megapixels", type=float, default=DEFAULTS.max_pixels / 1e6,
                   help="largest image in millions of pixels, from its header; over it: 413 (default %(default)s)")
    p.add_argument("--formats", default=",".join(DEFAULTS.formats),
                   help="allowed image formats; others: 415 (default %(default)s)")
    p.add_argument("--max-batch", type=int, default=DEFAULTS.max_classify_batch,
                   help="most crops in one /api/classify request (default %(default)s)")
    p.add_argument("--ws-max-fps", type=float, default=DEFAULTS.ws_max_fps,
                   help="frames per second one WebSocket may send; faster ones are throttled (default %(default)s)")
    p.add_argument("--ws-max-frame-mb", type=float, default=DEFAULTS.ws_max_frame_bytes / MIB,
                   help="largest WebSocket frame in MiB; over it the connection closes with 1009 (default %(default)s)")
    p.add_argument("--log-level", default=DEFAULTS.log_level, choices=("critical", "error", "warning", "info", "debug"))


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        host=args.host, port=args.port, workers=args.workers, worker_mode=args.worker_mode, worker_nice=args.worker_nice,
        max_inflight=args.max_inflight,
        request_timeout_s=args.timeout, body_timeout_s=args.body_timeout, max_upload_bytes=int(args.max_upload_mb * MIB),
        max_pixels=int(args.max_megapixels * 1e6),
        formats=tuple(f.strip().lower() for f in args.formats.split(",") if f.strip()),
        max_classify_batch=args.max_batch, ws_max_fps=args.ws_max_fps,
        ws_max_frame_bytes=int(args.ws_max_frame_mb * MIB), log_level=args.log_level)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ValueError as e:
        print(f"digitlens serve: {e}", file=sys.stderr)
        return 2
    if args.model is not None and not args.model.is_file():
        print(f"digitlens serve: model file {args.model} not found", file=sys.stderr)
        return 2
    import uvicorn

    from digitlens.server.app import create_app

    if not _is_loopback(cfg.host):
        print(f"digitlens serve: listening on {cfg.host}, reachable from other machines", file=sys.stderr)
    print(f"digitlens serve: http://{'127.0.0.1' if cfg.host in ('0.0.0.0', '::') else cfg.host}:{cfg.port}/ "
          "(API schema at /openapi.json; Ctrl-C stops)", file=sys.stderr)
    app = create_app(cfg, args.model)
    # uvicorn closes a WebSocket whose message is over ws_max_size with 1009, before the app sees it.
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, ws_max_size=cfg.ws_max_frame_bytes,
                timeout_graceful_shutdown=5)
    return 0


COMMANDS = {"serve": (HELP, add_arguments, run)}


def main(argv: list[str] | None = None) -> int:
    """`python -m digitlens.server.cli [options]`: the same as `digitlens serve [options]`."""
    parser = argparse.ArgumentParser(prog="digitlens serve", description=HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
