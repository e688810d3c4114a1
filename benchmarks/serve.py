"""Benchmark `digitlens serve`: HTTP latency, WebSocket readings/s, overload behaviour and memory.

Starts the real server (`python -m digitlens.server.cli`, the code behind `digitlens serve`) in a
subprocess on a free localhost port; it reads in worker processes, one per core (--worker-mode,
--workers and --worker-nice here pass other settings on to it). Then:
  1. POST /api/read with a 640x480 JPEG photo-like scene of handwritten digits from 8 concurrent clients
     (keep-alive connections, multipart): latency p50/p90/p99, errors. The clients are LightClient, a
     minimal HTTP/1.1 client, since they share this machine's two cores with the server (their own CPU per
     request is reported). The same image read in-process without
     the server gives the reader's own time, so the server's overhead is the difference (HTTP, multipart,
     the hop to a worker process and back), measured with 1 client at a time.
  2. WS /api/stream with 4 clients at 640x480, each sending the next frame when a reading comes back:
     readings per second per client.
  3. A second server with --max-inflight B receives 2B concurrent clients: how many are served, how
     fast the excess gets its 503, and the RSS of the server and its worker processes together before,
     at the peak and after the load.
Writes benchmarks/results/serve-<host>.json (or --out) with machine info and the command line.

    .venv/bin/python benchmarks/serve.py            # full run (about a minute)
    .venv/bin/python benchmarks/serve.py --quick    # a few seconds, for a smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import machine_info  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Targets:
    read_p50_ms: float = 40.0  # POST /api/read, 640x480 JPEG, 8 concurrent clients (issue 5)
    read_p99_ms: float = 150.0
    ws_readings_per_s: float = 15.0  # per client, 4 clients at 640x480
    busy_p99_ms: float = 50.0  # "the excess gets 503 quickly": well under one reading's time ...
    busy_vs_served: float = 0.25  # ... and, on a machine busy with other work, 4x faster than a served request
    # (p99 against p99: the slowest 503s against the slowest reads)
    rss_settle_ratio: float = 1.10  # after the load, RSS within 10% (+ rss_settle_slack_mb) of before it
    rss_settle_slack_mb: float = 16.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if values else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(percentile(values, 50), 2), "p90": round(percentile(values, 90), 2),
            "p99": round(percentile(values, 99), 2), "mean": round(statistics.fmean(values), 2) if values else None,
            "max": round(max(values), 2) if values else None}


def scene(seed: int = 0, size: tuple[int, int] = (480, 640)) -> tuple[np.ndarray, list[str]]:
    """A photo-like page: three handwritten numbers (MNIST test digits) on lit paper, noise, a shadow."""
    from digitlens.data import load_mnist

    m = load_mnist()
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.92 - 0.15 * xx / w - 0.08 * yy / h - 0.12 * np.exp(-((xx - 0.8 * w) ** 2 + (yy - 0.8 * h) ** 2) / (0.1 * w * w))
    paper = light[..., None] * np.array([214, 224, 230], np.float32)
    ink = np.zeros((h, w), np.float32)
    numbers = []
    for line, (n_digits, px) in enumerate([(4, 64), (3, 52), (2, 70)]):
        y = 40 + line * 140
        x = 60 + int(rng.integers(0, 80))
        text = ""
        for _ in range(n_digits):
            i = int(rng.integers(len(m.x_test)))
            glyph = cv2.resize(m.x_test[i], (px, px), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
            ink[y:y + px, x:x + px] = np.maximum(ink[y:y + px, x:x + px], glyph)
            text += str(int(m.y_test[i]))
            x += int(px * 0.78)
        numbers.append(text)
    pen = np.array([80, 45, 30], np.float32)
    img = paper * (1 - ink[..., None]) + pen * ink[..., None] + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), numbers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m digitlens.server.cli --port P [options]` in a subprocess, ready once /readyz says so."""

    def __init__(self, options: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "digitlens.server.cli", "--port", str(self.port), "--log-level", "warning",
                    *options]
        self.proc: subprocess.Popen | None = None
        self.processes: list | None = None  # psutil.Process of the server and its workers, once it is ready

    def __enter__(self) -> "Server":
        import httpx

        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready in 120 s")

    def rss_mb(self) -> float:
        """The server process and its worker processes together (each worker holds its own model)."""
        import psutil

        if self.processes is None:  # once: finding children scans every process, too slow for the sampler
            server = psutil.Process(self.proc.pid)
            self.processes = [server, *server.children(recursive=True)]
        total = 0
        for proc in self.processes:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def direct_read_ms(jpegs: list[bytes], repeats: int, model: Path | None) -> dict:
    """The reader alone, in this process: decode + read, single thread (what the server wraps)."""
    from digitlens.imageio import decode_image
    from digitlens.recognizer import ReaderConfig, Recognizer
    from digitlens.server.limits import ServeConfig

    r = Recognizer.load(model, ReaderConfig(intra_op_threads=ServeConfig().ort_threads))  # as the server loads it
    times = []
    for k in range(repeats + 3):
        t0 = time.perf_counter()
        r.read(decode_image(jpegs[k % len(jpegs)], grey=True))  # as the server decodes it
        if k >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    return summary(times)


def demo_frames(n: int) -> list[bytes]:
    """The first n frames of the shipped demo clip (640x480, a moving camera over handwritten numbers) as JPEG."""
    from digitlens.video import DEMO_CLIP

    cap = cv2.VideoCapture(str(DEMO_CLIP))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    cap.release()
    if not out:
        raise RuntimeError(f"cannot read frames from {DEMO_CLIP}")
    return out


PHASE_CAP_S = 90.0  # a phase stops sending after this long, so an overloaded machine still gets a report


class LightClient:
    """A minimal HTTP/1.1 keep-alive client: one socket, request bytes built once, the response read by its
    Content-Length. The clients share this 2-core machine with the server they measure; httpx spends ~1.6 ms of
    CPU per request here (a tenth of the machine's time per request at 8 clients), a client on another machine
    spends none of the server's. This one spends ~0.2 ms. The CPU all clients used is reported with the result."""

    def __init__(self, url: str, timeout: float = 60.0):
        host, port = url.removeprefix("http://").split(":")
        self.host = f"{host}:{port}"
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
        """The request's bytes, to build once and send many times."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def send(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send request bytes; (status, headers with lower-case names, body)."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        if "content-length" not in headers:
            raise ConnectionError(f"response without Content-Length: {status_line}")
        size = int(headers["content-length"])
        while len(self.buf) < size:
            self._fill()
        body, self.buf = self.buf[:size], self.buf[size:]
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        self.sock.close()


def multipart(jpeg: bytes, boundary: str = "digitlens-bench-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body with the JPEG as field "file", and its content type."""
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scene.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def http_clients(url: str, jpegs: list[bytes], clients: int, requests: int) -> dict:
    """`clients` threads, each on its own keep-alive connection, POST the scenes (multipart) one after the
    other, each sending the next request when the last reply is in (a closed loop)."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    texts: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        c = LightClient(url)
        try:
            reqs = []
            for jpeg in jpegs:
                body, ctype = multipart(jpeg)
                reqs.append(c.request("POST", "/api/read", body, {"Content-Type": ctype}))
            for k in range(2):  # connection and warm-up, not timed
                c.send(reqs[k % len(reqs)])
            barrier.wait()
            cap = time.perf_counter() + PHASE_CAP_S
            for k in range(requests):
                if time.perf_counter() > cap:
                    with lock:
                        statuses["not_sent_phase_cap"] = statuses.get("not_sent_phase_cap", 0) + requests - k
                    break
                req = reqs[(k + index) % len(reqs)]  # different scenes: nothing can be cached
                t0 = time.perf_counter()
                status, _, body = c.send(req)
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if status == 200:
                        latencies.append(dt)
                        text = " ".join(n["text"] for n in json.loads(body)["numbers"])
                        texts[text] = texts.get(text, 0) + 1
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    errors = sum(v for k, v in statuses.items() if k != "200")
    return {"clients": clients, "requests_per_client": requests, "latency_ms": summary(latencies),
            "statuses": statuses, "errors": errors, "throughput_rps": round(len(latencies) / wall, 1),
            "client_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 3),
            "readings": dict(sorted(texts.items(), key=lambda kv: -kv[1])[:3])}


def ws_clients(url: str, frames: list[bytes], clients: int, seconds: float) -> dict:
    from websockets.sync.client import connect

    ws_url = url.replace("http://", "ws://") + "/api/stream"
    per_client: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        try:
            # no client keepalive pings: a reading per frame is the liveness check, and a slow reading
            # on a busy machine must not be mistaken for a dead connection
            with connect(ws_url, max_size=2**24, open_timeout=60, ping_interval=None) as ws:
                for k in range(3):
                    ws.send(frames[k])
                    ws.recv()
                barrier.wait()
                n, mine = 0, []
                t_end = time.perf_counter() + seconds
                t0 = time.perf_counter()
                while time.perf_counter() < t_end:
                    ts = time.perf_counter()
                    ws.send(frames[n % len(frames)])  # the clip, frame after frame
                    reply = json.loads(ws.recv())
                    if "error" in reply:
                        with lock:
                            errors.append(reply["error"])
                        continue
                    mine.append((time.perf_counter() - ts) * 1000)
                    n += 1
                with lock:
                    per_client.append(n / (time.perf_counter() - t0))
                    latencies.extend(mine)
        except Exception as e:  # report, do not hide
            with lock:
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "frames": f"the demo clip's first {len(frames)} frames, 640x480 JPEG q80",
            "readings_per_s_per_client": [round(v, 1) for v in per_client],
            "readings_per_s_min": round(min(per_client), 1) if per_client else 0.0,
            "readings_per_s_median": round(statistics.median(per_client), 1) if per_client else 0.0,
            "round_trip_ms": summary(latencies), "errors": len(errors), "error_samples": errors[:3]}


def overload(jpeg: bytes, bound: int, seconds: float, model_opt: list[str]) -> dict:
    """2 x bound clients hammer a server admitting `bound` at once; excess must get 503 fast."""
    import httpx

    clients = 2 * bound
    with Server(["--max-inflight", str(bound), *model_opt]) as srv:
        time.sleep(1.0)
        rss_before = srv.rss_mb()
        served: list[float] = []
        busy: list[float] = []
        other: dict[str, int] = {}
        retry_after: set[str] = set()
        lock = threading.Lock()
        rss_peak = [rss_before]
        stop = threading.Event()
        barrier = threading.Barrier(clients)

        def sampler() -> None:
            while not stop.is_set():
                rss_peak[0] = max(rss_peak[0], srv.rss_mb())
                time.sleep(0.05)

        def client() -> None:
            c = LightClient(srv.url, timeout=30)
            try:
                req = c.request("POST", "/api/read", jpeg, {"Content-Type": "image/jpeg"})
                c.send(c.request("GET", "/healthz"))
                barrier.wait()
                t_end = time.perf_counter() + seconds
                while time.perf_counter() < t_end:
                    t0 = time.perf_counter()
                    status, headers, _ = c.send(req)
                    dt = (time.perf_counter() - t0) * 1000
                    with lock:
                        if status == 200:
                            served.append(dt)
                        elif status == 503:
                            busy.append(dt)
                            retry_after.add(headers.get("retry-after", ""))
                        else:
                            other[str(status)] = other.get(str(status), 0) + 1
                    if status == 503:
                        time.sleep(0.01)  # a client that ignores Retry-After, slightly politer than a loop
            finally:
                c.close()

        watcher = threading.Thread(target=sampler)
        watcher.start()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watcher.join()
        time.sleep(2.0)  # let the allocator return what it will
        after = httpx.post(srv.url + "/api/read", content=jpeg, headers={"content-type": "image/jpeg"})
        time.sleep(1.0)
        rss_after = srv.rss_mb()
        return {"max_inflight": bound, "clients": clients, "seconds": seconds, "served": len(served),
                "busy_503": len(busy), "other": other, "retry_after": sorted(retry_after),
                "served_latency_ms": summary(served), "busy_latency_ms": summary(busy),
                "served_after_load": after.status_code == 200,
                "rss_mb": {"before": round(rss_before, 1), "peak": round(rss_peak[0], 1), "after": round(rss_after, 1)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default %(default)s)")
    p.add_argument("--requests", type=int, default=60, help="timed requests per HTTP client (default %(default)s)")
    p.add_argument("--ws-clients", type=int, default=4, help="WebSocket clients (default %(default)s)")
    p.add_argument("--ws-seconds", type=float, default=10.0, help="seconds of streaming (default %(default)s)")
    p.add_argument("--bound", type=int, default=4, help="--max-inflight of the overload server (default %(default)s)")
    p.add_argument("--overload-seconds", type=float, default=6.0)
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own, one per core)")
    p.add_argument("--worker-mode", choices=("process", "thread"), default=None,
                   help="the server's --worker-mode (default: its own, process)")
    p.add_argument("--worker-nice", type=int, default=None, help="the server's --worker-nice (default: its own)")
    p.add_argument("--quick", action="store_true", help="a few seconds in all: a smoke test, not a measurement")
    p.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/serve-<host>.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.ws_seconds, args.overload_seconds = 5, 2.0, 2.0
    targets = Targets()
    machine = machine_info()  # now, so that its load average is the one at the start
    scenes = [scene(seed) for seed in range(8)]
    jpegs = [cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for img, _ in scenes]
    jpeg = jpegs[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(RESULTS / "serve-scene.jpg"), scenes[0][0], [cv2.IMWRITE_JPEG_QUALITY, 85])
    numbers = [n for _, n in scenes]
    print(f"{len(jpegs)} scenes 640x480, {statistics.mean(map(len, jpegs)):.0f} bytes on average", file=sys.stderr)
    model_opt = ["--model", str(args.model)] if args.model else []  # and the worker settings: both servers
    model_opt += ["--workers", str(args.workers)] if args.workers else []
    model_opt += ["--worker-mode", args.worker_mode] if args.worker_mode else []
    model_opt += ["--worker-nice", str(args.worker_nice)] if args.worker_nice is not None else []
    direct = direct_read_ms(jpegs, 16 if args.quick else 48, args.model)
    print(f"reader alone: p50 {direct['p50']} ms", file=sys.stderr)
    with Server(model_opt) as srv:
        model = __import__("httpx").get(srv.url + "/api/model").json()
        ready = __import__("httpx").get(srv.url + "/readyz").json()
        single = http_clients(srv.url, jpegs, 1, args.requests)
        print(f"HTTP 1 client: {single['latency_ms']}", file=sys.stderr)
        http = http_clients(srv.url, jpegs, args.clients, args.requests)
        print(f"HTTP {args.clients} clients: {http['latency_ms']}, errors {http['errors']}", file=sys.stderr)
        ws = ws_clients(srv.url, demo_frames(160), args.ws_clients, args.ws_seconds)
        print(f"WS {args.ws_clients} clients: {ws['readings_per_s_per_client']} readings/s, errors {ws['errors']}",
              file=sys.stderr)
        server_cmd = srv.cmd
    over = overload(jpeg, args.bound, args.overload_seconds, model_opt)
    print(f"overload: served {over['served']}, 503 {over['busy_503']} (p99 {over['busy_latency_ms']['p99']} ms), "
          f"RSS {over['rss_mb']}", file=sys.stderr)

    rss = over["rss_mb"]
    checks = {
        "read_p50": http["latency_ms"]["p50"] <= targets.read_p50_ms,
        "read_p99": http["latency_ms"]["p99"] <= targets.read_p99_ms,
        "read_no_errors": http["errors"] == 0,
        "ws_readings_per_s": ws["readings_per_s_min"] >= targets.ws_readings_per_s and ws["errors"] == 0,
        "overload_excess_503": over["busy_503"] > 0 and over["served"] > 0 and not over["other"],
        "overload_503_fast": over["busy_latency_ms"]["p99"] <= targets.busy_p99_ms,
        "overload_503_faster_than_reads": over["busy_latency_ms"]["p99"]
        <= targets.busy_vs_served * over["served_latency_ms"]["p99"],
        "overload_served_after": over["served_after_load"],
        "rss_returns": rss["after"] <= rss["before"] * targets.rss_settle_ratio + targets.rss_settle_slack_mb,
    }
    result = {
        "benchmark": "serve", "quick": args.quick, "command": [sys.executable, *sys.argv],
        "server_command": server_cmd, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine, "model": {k: model.get(k) for k in ("file", "sha256", "mnist_test_accuracy")},
        "server_workers": {"mode": ready.get("worker_mode", "thread"), "count": ready.get("workers")},
        "scenes": {"count": len(jpegs), "size": "640x480", "jpeg_bytes_mean": round(statistics.mean(map(len, jpegs))),
                   "numbers": numbers, "first": "serve-scene.jpg"},
        "reader_alone_ms": direct,
        # one client at a time: what the server adds to a reading (HTTP, multipart, the hop to a worker
        # and back, JSON); with 8 clients on 2 cores the rest is waiting for a core
        "server_overhead_p50_ms": round(single["latency_ms"]["p50"] - direct["p50"], 2),
        "http_client": "LightClient (benchmarks/serve.py): raw HTTP/1.1 keep-alive, request bytes built once",
        "http_read_1_client": single, "http_read": http, "ws_stream": ws, "overload": over,
        "load_avg_at_end": [round(v, 2) for v in os.getloadavg()],  # this run's own load, and anyone else's
        "targets": asdict(targets), "checks": checks, "all_met": all(checks.values()),
    }
    out = args.out or RESULTS / f"serve-{platform.node() or 'host'}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"out": str(out), "checks": checks}, indent=2))
    return 0 if result["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
