"""digitlens serve: every endpoint, every limit and its status/JSON body, the ReDoS header, the WebSocket.

Most tests use a fake reader with known output (fixture `server_fake`), so they check the server's
plumbing against a direct call; the tests marked `real` use the shipped model on scenes of MNIST train
digits with a known number.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
import zlib
import struct

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from conftest import ServerFakeRecognizer

from digitlens.imageio import decode_image
from digitlens.server.app import create_app
from digitlens.server.limits import ConcurrencyGate, ServeConfig, TokenBucket


def _jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _blobs(n: int = 3, size=(120, 320)) -> np.ndarray:
    """White paper with n dark squares side by side: the fake reads them as 0, 1, ..., n-1."""
    img = np.full((*size, 3), 235, np.uint8)
    for i in range(n):
        x = 20 + i * 62  # 12 px gaps: one number, also after the tracker regroups
        cv2.rectangle(img, (x, 30), (x + 50, 90), (20, 20, 20), -1)
    return img


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny IDAT: a decompression-bomb-shaped file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _threads(**cfg) -> ServeConfig:
    """Thread workers: the fake reader is an object of this process (process workers have their own tests)."""
    return ServeConfig(worker_mode="thread", **cfg)


def _client(fake, **cfg) -> TestClient:
    return TestClient(create_app(_threads(**cfg), recognizer=fake))


def _expected(fake, data: bytes) -> dict:
    return fake.read(decode_image(data)).to_dict()


def _assert_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "code", "status"}, body
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


# ------------------------------------------------------------------------------------------ probes, model

def test_probes_and_warm_up(server_fake):
    app = create_app(_threads(), recognizer=server_fake)
    cold = TestClient(app)  # not a context manager: lifespan has not run, so the model is not there
    _assert_error(cold.get("/readyz"), 503, "not_ready")
    assert cold.get("/healthz").json() == {"status": "ok"}
    with TestClient(app) as client:
        assert server_fake.reads >= 1, "the warm-up read runs at start-up"
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert client.get("/healthz").status_code == 200


def test_model_endpoint(server_fake):
    with _client(server_fake, max_upload_bytes=1234567) as client:
        body = client.get("/api/model").json()
    assert body["classes"] == list("0123456789") + ["none"]
    assert body["mnist_test_accuracy"] == 0.5 and body["metadata"]["arch"] == "fake"
    assert body["limits"]["max_upload_bytes"] == 1234567 and "host" not in body["limits"]


def test_openapi_describes_every_endpoint(server_fake):
    with _client(server_fake) as client:
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN: the server is offline
    paths = schema["paths"]
    for p in ("/api/read", "/api/classify", "/api/model", "/healthz", "/readyz"):
        assert p in paths, p
    body = paths["/api/read"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "application/octet-stream" in body
    assert "ClassifyRequest" in json.dumps(paths["/api/classify"]["post"]["requestBody"])
    assert "413" in paths["/api/read"]["post"]["responses"] and "503" in paths["/api/read"]["post"]["responses"]


# ------------------------------------------------------------------------------------------ POST /api/read

def test_read_multipart_and_raw_give_the_reading(server_fake):
    data = _jpeg(_blobs(3))
    expected = _expected(server_fake, data)
    assert expected["numbers"][0]["text"] == "012"
    with _client(server_fake) as client:
        multipart = client.post("/api/read", files={"file": ("photo.jpg", data, "image/jpeg")})
        raw = client.post("/api/read", content=data, headers={"content-type": "image/jpeg"})
        untyped = client.post("/api/read", content=data)
    for r in (multipart, raw, untyped):
        assert r.status_code == 200, r.text
        assert r.json() == expected  # exactly Reading.to_dict(): the JSON of `read --json` without "path"
        assert "path" not in r.json()


class _FakeWithProbs:
    """The fake reader, with all ten probabilities on each digit as the real reader gives them (`Digit.probs`);
    counts its classify calls, since the probabilities must come from the reading, not from classifying again."""

    def __init__(self, fake):
        self.fake = fake
        self.classes, self.metadata = fake.classes, fake.metadata
        self.classify_calls = 0

    def read(self, image):
        from dataclasses import replace

        reading = self.fake.read(image)
        digits = []
        for i, d in enumerate(reading.digits):
            probs = np.full(10, 0.005)
            probs[d.digit] = 0.9
            probs[(d.digit + 3) % 10] = 0.06 - 0.01 * i
            digits.append(replace(d, probs=tuple(float(p) / probs.sum() for p in probs)))
        return replace(reading, digits=tuple(digits))

    def classify(self, crops):
        self.classify_calls += 1
        return self.fake.classify(crops)


def test_read_probabilities_are_the_readers_own(server_fake):
    data = _png(_blobs(2))
    reader = _FakeWithProbs(server_fake)
    expected = reader.read(decode_image(data))
    with _client(reader) as client:
        calls = reader.classify_calls  # the warm-up classifies once
        body = client.post("/api/read?probabilities=true", content=data).json()
        plain = client.post("/api/read", content=data).json()
        assert reader.classify_calls == calls, "nothing is classified again for the bars"
    assert len(body["probabilities"]) == len(body["digits"]) == 2
    for row, d in zip(body["probabilities"], expected.digits):
        assert row == [round(p, 4) for p in d.probs]
        assert int(np.argmax(row)) == d.digit
    assert "probabilities" not in plain
    body.pop("probabilities")
    body.pop("elapsed_ms"), plain.pop("elapsed_ms")
    assert body == plain, "the reading itself is the same with or without the bars"


def test_read_probabilities_null_from_a_reader_without_them(server_fake):
    with _client(server_fake) as client:  # the plain fake's digits carry no probs
        body = client.post("/api/read?probabilities=true", content=_png(_blobs(2))).json()
    assert body["probabilities"] == [None, None]  # the page then draws the top three


def test_read_empty_and_missing_file(server_fake):
    with _client(server_fake) as client:
        _assert_error(client.post("/api/read", content=b""), 400, "empty")
        _assert_error(client.post("/api/read", files={"other": ("a.png", _png(_blobs(1)), "image/png")}), 400, "no_file")


# ------------------------------------------------------------------------------------------ limits

def test_upload_size_413_with_content_length(server_fake):
    data = _png(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    assert len(data) > 50_000
    with _client(server_fake, max_upload_bytes=50_000, multipart_overhead_bytes=1000) as client:
        raw = client.post("/api/read", content=data)
        multipart = client.post("/api/read", files={"file": ("big.png", data, "image/png")})
        # under the body limit but over the image limit: the file part itself is checked too
        small_overhead = create_app(_threads(max_upload_bytes=50_000, multipart_overhead_bytes=200_000),
                                    recognizer=server_fake)
        with TestClient(small_overhead) as c2:
            part = c2.post("/api/read", files={"file": ("big.png", data, "image/png")})
        ok = client.post("/api/read", content=_png(_blobs(1)))
    _assert_error(raw, 413, "too_large")
    _assert_error(multipart, 413, "too_large")
    _assert_error(part, 413, "too_large")
    assert ok.status_code == 200


def test_upload_size_413_for_chunked_body_without_length(server_fake):
    sent = []

    def chunks():
        for _ in range(40):
            sent.append(1)
            yield b"\x89PNG" + b"\0" * 4092

    with _client(server_fake, max_upload_bytes=20_000, multipart_overhead_bytes=0) as client:
        r = client.post("/api/read", content=chunks())
    assert "content-length" not in {k.lower() for k in r.request.headers}
    _assert_error(r, 413, "too_large")


def test_chunked_body_is_cut_off_while_streaming(server_fake, server_thread):
    """Over a real socket: the 413 comes back while the client is still sending, long before the end."""
    app = create_app(_threads(max_upload_bytes=100_000, multipart_overhead_bytes=0), recognizer=server_fake)
    with server_thread(app) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\0" * 16384
        total, reply = 0, b""
        s.settimeout(0.05)
        try:
            for _ in range(2000):  # up to 32 MB
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                total += len(chunk)
                try:
                    reply += s.recv(65536)
                except socket.timeout:
                    continue
                if reply:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(5)
        try:
            while b"\r\n\r\n" not in reply:
                more = s.recv(65536)
                if not more:
                    break
                reply += more
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert total < 4_000_000, f"server let {total} bytes stream in before refusing"
        import httpx

        assert httpx.get(srv.url + "/healthz").status_code == 200  # still serving


def test_slow_upload_408(server_fake, server_thread):
    """A client that stops sending half way through its body is cut off after body_timeout_s."""
    app = create_app(_threads(body_timeout_s=0.5), recognizer=server_fake)
    with server_thread(app) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"
                  + b"\x89PNG" + b"\0" * 100)
        t0 = time.perf_counter()
        reply = s.recv(65536)
        elapsed = time.perf_counter() - t0
        while b"}" not in reply:  # the body may come in a second packet
            more = s.recv(65536)
            if not more:
                break
            reply += more
        s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert 0.4 < elapsed < 30.0  # cut off by the limit, not by the client giving up
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["code"] == "body_timeout"


def test_pixel_count_413_before_decoding(server_fake):
    bomb = _png_header_only(60_000, 60_000)  # 3.6 G pixels claimed; decoding it would need 10 GB
    with _client(server_fake, max_pixels=10_000) as client:
        reads = server_fake.reads
        r = client.post("/api/read", content=bomb)
        assert server_fake.reads == reads, "refused before decoding, so the reader never saw it"
        small = client.post("/api/read", content=_png(_blobs(1, size=(60, 100))))
        over = client.post("/api/read", files={"file": ("a.png", _png(_blobs(1, size=(120, 320))), "image/png")})
    body = _assert_error(r, 413, "too_many_pixels")
    assert "60000x60000" in body["error"]
    assert small.status_code == 200
    _assert_error(over, 413, "too_many_pixels")


def test_formats_outside_allow_list_415(server_fake):
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    with _client(server_fake, formats=("jpeg",)) as client:
        _assert_error(client.post("/api/read", content=gif), 415, "unsupported_format")
        _assert_error(client.post("/api/read", content=b"hello, not an image at all"), 415, "unsupported_format")
        body = _assert_error(client.post("/api/read", files={"file": ("x.png", _png(_blobs(1)), "image/png")}), 415)
        assert "png" in body["error"]
        assert client.post("/api/read", content=_jpeg(_blobs(1))).status_code == 200


def test_undecodable_422(server_fake):
    good = _jpeg(_blobs(2))
    truncated_header = good[:20]
    corrupt = good[:200] + bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)) + b"\xff\xd9"
    with _client(server_fake) as client:
        for data in (truncated_header, corrupt, b"\x89PNG\r\n\x1a\n" + b"\0" * 100):
            r = client.post("/api/read", content=data)
            _assert_error(r, 422, "undecodable")
        assert client.post("/api/read", content=good).status_code == 200  # and still serving


def _wait_readers(fake, n: int) -> None:
    for _ in range(n):
        assert fake.waiting.acquire(timeout=60), "the reads did not start"


def test_concurrency_bound_503_with_retry_after(server_fake):
    """Past the bound, requests are answered 503 at once (while the admitted ones are still reading), not queued."""
    data = _png(_blobs(1))
    results: dict[int, list] = {200: [], 503: []}
    with _client(server_fake, workers=2, max_inflight=2, retry_after_s=3) as client:
        server_fake.hold = threading.Event()

        def call():
            r = client.post("/api/read", content=data)
            results.setdefault(r.status_code, []).append(r)

        admitted = [threading.Thread(target=call) for _ in range(2)]
        for t in admitted:
            t.start()
        _wait_readers(server_fake, 2)  # both slots busy, both reads blocked
        excess = [threading.Thread(target=call) for _ in range(4)]
        for t in excess:
            t.start()
        for t in excess:
            t.join(60)
        assert len(results[503]) == 4 and not results[200], "the excess was answered while the reads still ran"
        server_fake.hold.set()
        for t in admitted:
            t.join(60)
        after = client.post("/api/read", content=data)
    assert len(results[200]) == 2
    for r in results[503]:
        _assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "3"
    assert after.status_code == 200


def test_time_limit_504_and_slot_held_until_the_work_ends(server_fake):
    with _client(server_fake, request_timeout_s=0.3, workers=1, max_inflight=1) as client:
        server_fake.hold = threading.Event()
        r = client.post("/api/read", content=_png(_blobs(1)))
        _assert_error(r, 504, "timeout")
        assert not server_fake.hold.is_set(), "the 504 came while the read was still running"
        # the timed-out read still occupies the only worker, so the gate is still closed ...
        _assert_error(client.post("/api/read", content=_png(_blobs(1))), 503, "busy")
        server_fake.hold.set()
        # ... and opens again once it is done
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["inflight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.post("/api/read", content=_png(_blobs(1))).status_code == 200


def test_reader_crash_is_a_500_not_a_dead_server(server_fake):
    calls = {"n": 0}
    original = server_fake.read

    def flaky(image):
        calls["n"] += 1
        if calls["n"] == 2:  # the first call is the warm-up
            raise RuntimeError("boom")
        return original(image)

    server_fake.read = flaky
    with TestClient(create_app(_threads(), recognizer=server_fake), raise_server_exceptions=False) as client:
        _assert_error(client.post("/api/read", content=_png(_blobs(1))), 500, "internal")
        assert client.post("/api/read", content=_png(_blobs(1))).status_code == 200


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=x; " + 'a="' + "\\" * 60_000,
    'application/x-www-form-urlencoded; !="' + "\\" * 60_000,
    "multipart/form-data; " + ";" * 60_000 + "boundary=x",
    "multipart/form-data; boundary=" + "-" * 60_000 + '"',
])
def test_redos_content_type_answered_quickly(server_fake, content_type):
    """CVE-2024-24762: python-multipart < 0.0.7 spent seconds to hours on option strings like these."""
    from python_multipart.multipart import parse_options_header

    # CPU time, not wall time: on a busy test machine the wall clock measures the neighbours
    t0 = time.process_time()
    parse_options_header(content_type)
    assert time.process_time() - t0 < 1.0  # milliseconds when fixed; the vulnerable regex backtracks for minutes
    with _client(server_fake) as client:
        t0 = time.process_time()  # the TestClient's server runs in this process, so this counts its work too
        r = client.post("/api/read", content=b"--x\r\n", headers={"content-type": content_type})
        cpu = time.process_time() - t0
        assert client.get("/healthz").status_code == 200
    assert cpu < 2.0, f"{cpu:.2f} s of CPU"
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error", "code", "status"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"RIFF\0\0\0\0WEBP", b"II*\0",
                               b"P5\n", b"GIF89a"]),
       tail=st.binary(max_size=600))
def test_any_bytes_get_a_client_error_never_a_crash(server_fuzz_client, prefix, tail):
    r = server_fuzz_client.post("/api/read", content=prefix + tail)
    assert r.status_code in (200, 400, 413, 415, 422), r.text
    assert set(r.json()) >= ({"width", "height", "numbers", "digits"} if r.status_code == 200 else {"error", "code"})


@pytest.fixture(scope="module")
def server_fuzz_client():
    with TestClient(create_app(_threads(), recognizer=ServerFakeRecognizer())) as client:
        yield client


def test_unknown_route_and_method_are_json(server_fake):
    with _client(server_fake) as client:
        _assert_error(client.get("/api/nope"), 404, "not_found")
        _assert_error(client.get("/api/read"), 405, "method_not_allowed")


# ------------------------------------------------------------------------------------------ POST /api/classify

def test_classify_lists_and_base64_match_the_reader(server_fake):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    crops[0] = 0
    crops[1] = 255
    expected = server_fake.classify(crops)
    with _client(server_fake) as client:
        by_list = client.post("/api/classify", json={"crops": crops.tolist()})
        by_b64 = client.post("/api/classify", json={"crops_base64": base64.b64encode(crops.tobytes()).decode()})
        unit = client.post("/api/classify", json={"crops": (crops / 255.0).tolist(), "scale": "unit"})
    for r in (by_list, by_b64, unit):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["classes"] == list("0123456789") + ["none"]
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-4)
        assert body["predictions"] == [body["classes"][i] for i in expected.argmax(axis=1)]
        assert body["predictions"][0] == "0" and body["predictions"][1] == "9"


def test_classify_errors(server_fake):
    ok = np.zeros((1, 28, 28), np.uint8).tolist()
    with _client(server_fake, max_classify_batch=4, max_json_bytes=200_000) as client:
        _assert_error(client.post("/api/classify", json={"crops": np.zeros((1, 27, 28)).tolist()}), 422, "invalid")
        _assert_error(client.post("/api/classify", json={"crops": [[[300] * 28] * 28]}), 422, "invalid")
        _assert_error(client.post("/api/classify", json={}), 422, "invalid")
        _assert_error(client.post("/api/classify", json={"crops": ok, "crops_base64": ""}), 422, "invalid")
        _assert_error(client.post("/api/classify", json={"crops_base64": "AAAA"}), 422, "invalid")
        _assert_error(client.post("/api/classify", json={"crops_base64": "!!!"}), 422, "invalid")
        _assert_error(client.post("/api/classify", content=b"{not json", headers={"content-type": "application/json"}),
                      422, "invalid")
        _assert_error(client.post("/api/classify", json={"crops": np.zeros((5, 28, 28), int).tolist()}), 413,
                      "too_large")
        _assert_error(client.post("/api/classify", json={"crops": np.zeros((40, 28, 28), int).tolist()}), 413,
                      "too_large")  # the body itself is over max_json_bytes
        assert client.post("/api/classify", json={"crops": ok}).status_code == 200


# ------------------------------------------------------------------------------------------ WS /api/stream

def _frames(client, frames, **_):
    replies = []
    with client.websocket_connect("/api/stream") as ws:
        for f in frames:
            ws.send_bytes(f)
            replies.append(ws.receive_json())
    return replies


def test_stream_one_tracked_reading_per_frame(server_fake):
    frame = _jpeg(_blobs(3, size=(480, 640)))
    # The fake reader is instant: lift the frame-rate limit, which has its own test, so no frame is throttled.
    with _client(server_fake, ws_max_fps=10_000.0, ws_burst=100) as client:
        replies = _frames(client, [frame] * 12)
    assert [r["frame"] for r in replies] == list(range(1, 13))
    last = replies[-1]
    assert last["width"] == 640 and last["height"] == 480
    assert [n["text"] for n in last["numbers"]] == ["012"], "a steady scene reads steadily"
    assert all("id" in d for d in last["digits"]) and len(last["digits"]) == 3, "tracked digits carry an id"
    assert replies[0]["digits"] == [], "the tracker shows a digit only after it has been seen a few frames"
    assert all(r["t"] >= 0 and r["server_ms"] >= 0 for r in replies)


def test_stream_bad_frame_is_answered_and_the_stream_goes_on(server_fake):
    with _client(server_fake) as client, client.websocket_connect("/api/stream") as ws:
        ws.send_bytes(b"GIF89a not a frame")
        err = ws.receive_json()
        assert err["status"] == 415 and err["frame"] == 1
        ws.send_bytes(_jpeg(_blobs(1))[:30])
        assert ws.receive_json()["status"] == 422
        ws.send_text("hello")
        assert ws.receive_json()["status"] == 400
        ws.send_text("reset")
        assert ws.receive_json() == {"reset": True}
        ws.send_bytes(_jpeg(_blobs(1)))
        assert ws.receive_json()["frame"] == 3


def test_stream_frame_too_large_closes_1009(server_fake):
    with _client(server_fake, ws_max_frame_bytes=10_000) as client, client.websocket_connect("/api/stream") as ws:
        ws.send_bytes(b"\xff\xd8\xff" + b"\0" * 20_000)
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
    assert e.value.code == 1009 and "10000" in e.value.reason


def test_stream_too_many_pixels_closes_1009(server_fake):
    with _client(server_fake, ws_max_pixels=10_000) as client, client.websocket_connect("/api/stream") as ws:
        ws.send_bytes(_png_header_only(5000, 5000))
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
    assert e.value.code == 1009


def test_stream_too_frequent_is_throttled_then_closed_1008(server_fake):
    frame = _jpeg(_blobs(1))
    with _client(server_fake, ws_max_fps=0.5, ws_burst=2, ws_max_throttled=3) as client, \
            client.websocket_connect("/api/stream") as ws:
        statuses = []
        for _ in range(5):
            ws.send_bytes(frame)
            statuses.append(ws.receive_json().get("status", 200))
        assert statuses == [200, 200, 429, 429, 429]
        ws.send_bytes(frame)
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
    assert e.value.code == 1008 and "per second" in e.value.reason


def test_token_bucket_and_gate_units():
    b = TokenBucket(rate=10, burst=2, now=0.0)
    assert [b.take(0.0), b.take(0.0), b.take(0.0)] == [True, True, False]
    assert b.take(0.1) and not b.take(0.1)
    g = ConcurrencyGate(2)
    assert g.try_enter() and g.try_enter() and not g.try_enter()
    g.leave()
    assert g.try_enter() and g.rejected == 1
    with pytest.raises(RuntimeError):
        ConcurrencyGate(1).leave()


def test_bad_config_is_refused(server_fake):
    with pytest.raises(ValueError, match="max_inflight"):
        ServeConfig(max_inflight=0)
    with pytest.raises(ValueError, match="gif"):
        ServeConfig(formats=("png", "gif"))
    with pytest.raises(ValueError, match="worker_mode"):
        ServeConfig(worker_mode="fibers")
    assert ServeConfig().worker_mode == "process"
    with pytest.raises(ValueError, match="thread"):  # an object of this process cannot go to worker processes
        create_app(ServeConfig(), recognizer=server_fake)


# ------------------------------------------------------------------------------------------ the page

def test_page_is_served_and_loads_nothing_from_other_sites(server_fake):
    with _client(server_fake) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        html = page.text
        assets = {"/static/app.js", "/static/style.css"}
        for a in assets:
            assert a in html
        texts = [html] + [client.get(a).text for a in assets]
    for text in texts:
        for marker in ("http://", "https://", "//cdn", "@import url("):
            assert marker not in text, f"external reference {marker!r} in the page"
    for tab in ("Draw", "Camera", "Upload"):
        assert tab in html


# ------------------------------------------------------------------------------------------ CLI

def test_cli_options_make_the_config():
    import argparse

    from digitlens.server.cli import COMMANDS, config_from_args

    help_text, add_arguments, run = COMMANDS["serve"]
    assert "EXAMPLES" in help_text and help_text.splitlines()[0]
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--port", "9001", "--max-upload-mb", "2", "--max-inflight", "3", "--formats", "png,jpeg"])
    cfg = config_from_args(args)
    assert (cfg.host, cfg.port, cfg.max_upload_bytes, cfg.max_inflight, cfg.formats) == \
        ("127.0.0.1", 9001, 2 * 1024 * 1024, 3, ("png", "jpeg"))
    assert (cfg.worker_mode, cfg.workers) == ("process", ServeConfig().workers)
    cfg = config_from_args(p.parse_args(["--workers", "3", "--worker-mode", "thread", "--worker-nice", "0"]))
    assert (cfg.workers, cfg.worker_mode, cfg.worker_nice) == (3, "thread", 0)
    assert run(p.parse_args(["--model", "/nonexistent/model.onnx"])) == 2


# ------------------------------------------------------------------------------------------ the real reader

@pytest.mark.parametrize("labels", ["4071", "29"])
def test_real_reader_reads_a_photo_of_train_digits(server_real_recognizer, server_mnist_train, server_scene, labels):
    img = server_scene(server_mnist_train, labels, seed=1)
    data = _jpeg(img)
    direct = server_real_recognizer.read(decode_image(data)).to_dict()
    with TestClient(create_app(_threads(), recognizer=server_real_recognizer)) as client:
        r = client.post("/api/read", files={"file": ("scene.jpg", data, "image/jpeg")})
        bars = client.post("/api/read?probabilities=true", content=data).json()
        model = client.get("/api/model").json()
    assert r.status_code == 200
    body = r.json()
    assert len(bars["probabilities"]) == len(bars["digits"]) == len(labels)
    for row, d in zip(bars["probabilities"], bars["digits"]):
        assert len(row) == 10 and int(np.argmax(row)) == d["digit"]
        assert abs(row[d["digit"]] - d["confidence"]) < 1e-3 and sum(row) <= 1.001
    assert set(body) == {"width", "height", "numbers", "digits", "elapsed_ms"}
    body.pop("elapsed_ms"), direct.pop("elapsed_ms")
    assert body == direct, "the API gives the reader's own reading"
    assert " ".join(n["text"] for n in body["numbers"]) == labels
    assert model["mnist_test_accuracy"] > 0.9 and len(model["sha256"]) == 64 and "path" not in model["metadata"]


def test_api_read_is_the_json_of_digitlens_read(server_real_recognizer, server_mnist_train, server_scene, tmp_path,
                                                capsys):
    """The contract: POST /api/read gives the object of `digitlens read --json`, without "path"."""
    import os

    from digitlens.cli import main

    if os.environ.get("DIGITLENS_TEST_MODEL"):
        pytest.skip("`digitlens read` reads with the shipped model, not $DIGITLENS_TEST_MODEL")
    photo = tmp_path / "scene.jpg"
    cv2.imwrite(str(photo), server_scene(server_mnist_train, "386", seed=2))
    capsys.readouterr()
    assert main(["read", str(photo), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    with TestClient(create_app(_threads(), recognizer=server_real_recognizer)) as client:
        api = client.post("/api/read", files={"file": ("scene.jpg", photo.read_bytes(), "image/jpeg")}).json()
    assert cli.pop("path") == str(photo)
    cli.pop("elapsed_ms"), api.pop("elapsed_ms")
    assert api == cli


# ------------------------------------------------------------------------------------------ worker processes
# `digitlens serve` reads in worker processes; the tests above use thread workers around a fake reader.

START_S = 240  # bound on starting worker processes and loading the model on a busy machine (not a timing check)


class _SlowOnCue(ServerFakeRecognizer):
    """The fake reader, in a worker process (pickled by name): an image 333 px wide reads until its worker is killed."""

    def read(self, image):
        if image.shape[1] == 333:
            time.sleep(3600)
        return super().read(image)


def _slow_on_cue_reader() -> _SlowOnCue:
    return _SlowOnCue()


def _unloadable_reader():
    raise ValueError("no model at /nowhere/model.onnx")


def _model_path():
    return os.environ.get("DIGITLENS_TEST_MODEL")  # None: the shipped model


def _worker_processes(parent) -> list:
    """The running multiprocessing children of `parent` (a psutil.Process)."""
    import psutil

    found = []
    for child in parent.children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()) and _running(child):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _running(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def slow_start_server(server_thread):
    """server_thread, waiting as long as worker processes take to start on a busy machine."""
    class Served(server_thread):
        def __enter__(self):
            self.thread.start()
            deadline = time.monotonic() + START_S
            while not self.server.started:
                if not self.thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start (see the log above)")
                time.sleep(0.05)
            return self

    return Served


def _wait_new_workers(url: str, workers, old: list[int]) -> list[int]:
    """Poll /readyz (which also notices dead workers) until a new pool is loaded and warm."""
    import httpx

    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        r = httpx.get(url + "/readyz", timeout=30)
        if r.status_code == 200 and workers.pids() and not set(workers.pids()) & set(old):
            return workers.pids()
        if r.status_code != 200:
            _assert_error(r, 503, "not_ready")
            assert r.headers["retry-after"]
        time.sleep(0.1)
    raise AssertionError("the dead workers were not replaced")


def test_process_workers_read_classify_and_stream(server_real_recognizer, server_mnist_train, server_scene,
                                                  slow_start_server):
    import httpx
    import psutil
    from websockets.sync.client import connect

    data = _jpeg(server_scene(server_mnist_train, "4071", seed=1))
    direct = server_real_recognizer.read(decode_image(data)).to_dict()
    crops = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    app = create_app(ServeConfig(workers=2, ws_max_fps=10_000.0, ws_burst=100), _model_path())
    with slow_start_server(app) as srv:
        pids = app.state.engine.workers.pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        assert set(pids) <= {c.pid for c in psutil.Process().children()}, "the workers are this server's processes"
        # the workers yield a core to the server process, whose work (HTTP, 503s) is short
        assert [psutil.Process(p).nice() for p in pids] == [min(19, os.nice(0) + ServeConfig().worker_nice)] * 2
        ready = httpx.get(srv.url + "/readyz").json()
        assert (ready["status"], ready["worker_mode"], ready["workers"]) == ("ready", "process", 2)

        with httpx.Client(base_url=srv.url, timeout=120) as c:
            body = c.post("/api/read?probabilities=true", files={"file": ("scene.jpg", data, "image/jpeg")}).json()
            probs = body.pop("probabilities")
            body.pop("elapsed_ms"), direct.pop("elapsed_ms")
            assert body == direct, "a worker process reads as the reader in this process does"
            assert [int(np.argmax(p)) for p in probs] == [d["digit"] for d in body["digits"]]
            # an ApiError raised in the worker comes back whole: status, code, message
            gif = c.post("/api/read", content=b"GIF89a" + b"\0" * 40)
            assert "allowed: png" in _assert_error(gif, 415, "unsupported_format")["error"]
            classified = c.post("/api/classify", json={"crops": crops.tolist()}).json()
            np.testing.assert_allclose(classified["probabilities"], server_real_recognizer.classify(crops), atol=1e-4)
            model = c.get("/api/model").json()
            assert len(model["sha256"]) == 64 and model["classes"][:10] == list("0123456789")

        with connect(srv.url.replace("http", "ws") + "/api/stream", open_timeout=120) as ws:
            replies = []
            for _ in range(12):
                ws.send(data)
                replies.append(json.loads(ws.recv(timeout=120)))
        assert [r["frame"] for r in replies] == list(range(1, 13))
        assert [n["text"] for n in replies[-1]["numbers"]] == ["4071"]
        assert all("id" in d for d in replies[-1]["digits"]), "tracked in the server process: ids"
    srv.thread.join(START_S)  # the app's shutdown has run to its end
    assert not srv.thread.is_alive() and not [p for p in pids if psutil.pid_exists(p)], "workers stop with the app"


def test_a_killed_worker_fails_its_request_and_is_replaced(slow_start_server):
    import httpx
    import psutil

    app = create_app(ServeConfig(workers=2), load=_slow_on_cue_reader)
    with slow_start_server(app) as srv:
        workers, gate = app.state.engine.workers, app.state.engine.gate
        first = workers.pids()
        slow: dict[str, httpx.Response] = {}

        def post_slow():
            slow["r"] = httpx.post(srv.url + "/api/read", content=_png(_blobs(1, size=(120, 333))), timeout=START_S)

        t = threading.Thread(target=post_slow)
        t.start()
        deadline = time.monotonic() + START_S
        while gate.inflight == 0 and time.monotonic() < deadline:  # the job is in the pool
            time.sleep(0.01)
        os.kill(first[0], signal.SIGKILL)
        t.join(START_S)
        body = _assert_error(slow["r"], 500, "worker_died")
        assert "retry" in body["error"]
        second = _wait_new_workers(srv.url, workers, first)
        assert not [p for p in first if psutil.pid_exists(p)], "the broken pool's workers are gone"
        data = _png(_blobs(2))
        r = httpx.post(srv.url + "/api/read", content=data, timeout=60)
        assert r.status_code == 200 and r.json()["numbers"][0]["text"] == "01"
        assert gate.inflight == 0, "the failed job gave its slot back"

        # a worker that dies between requests: /readyz notices, and the pool is replaced before the next read
        os.kill(second[1], signal.SIGKILL)
        third = _wait_new_workers(srv.url, workers, second)
        assert httpx.post(srv.url + "/api/read", content=data, timeout=60).status_code == 200
    srv.thread.join(START_S)  # the app's shutdown has run to its end
    assert not srv.thread.is_alive() and not [p for p in third if psutil.pid_exists(p)]


def test_a_model_that_does_not_load_stops_the_start_up():
    import psutil

    app = create_app(ServeConfig(workers=2), load=_unloadable_reader)
    with pytest.raises(RuntimeError, match="could not load the model: ValueError: no model at /nowhere/model.onnx"):
        with TestClient(app):
            pass
    deadline = time.monotonic() + START_S
    while _worker_processes(psutil.Process()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _worker_processes(psutil.Process()), "the workers of the failed start are gone"


@pytest.mark.parametrize("stop", ["ctrl-c", "kill-9"])
def test_cli_server_leaves_no_worker_processes(stop, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the server and its workers
    cleanly; even a server killed outright takes its workers with it."""
    import subprocess
    import sys

    import httpx
    import psutil
    from conftest import server_free_port

    port = server_free_port()
    model = ["--model", _model_path()] if _model_path() else []
    log = tmp_path / "server.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "digitlens.server.cli", "--port", str(port), "--workers", "2",
                                 "--log-level", "warning", *model], stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not get ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(_worker_processes(psutil.Process(proc.pid))) == 2
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(120) == 0, log.read_text()
            assert "Traceback" not in log.read_text(), "no worker died of the Ctrl-C"
        else:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(120)
        deadline = time.monotonic() + 60
        while [c for c in children if _running(c)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [c.pid for c in children if _running(c)], "processes left behind"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
