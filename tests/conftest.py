# ---------------------------------------------------------------- server fixtures (tests/test_server.py, e2e)
import socket as _server_socket
import threading as _server_threading
import time as _server_time
from pathlib import Path as _ServerPath

import cv2 as _server_cv2
import numpy as _server_np
import pytest as _server_pytest

SERVER_MODEL = _ServerPath(__file__).resolve().parents[1] / "digitlens" / "models" / "lens.onnx"


class ServerFakeRecognizer:
    """Stands in for Recognizer where the model is not needed: dark blobs left to right are read as
    0, 1, 2, ... and form one number. Deterministic, so tests compare the API with a direct call."""

    classes = tuple("0123456789") + ("none",)
    metadata = {"arch": "fake", "classes": list(classes), "mnist_test_accuracy": 0.5}

    def __init__(self):
        self.hold = None  # a threading.Event: while set to one that is not set, reads wait (gate, time limit tests)
        self.waiting = _server_threading.Semaphore(0)  # released by each read that starts waiting on `hold`
        self.reads = 0

    def read(self, image):
        from digitlens.reading import Digit, Number, Reading

        hold = self.hold
        if hold is not None and not hold.is_set():
            self.waiting.release()
            if not hold.wait(60):
                raise RuntimeError("ServerFakeRecognizer.hold was never released")
        self.reads += 1
        grey = image if image.ndim == 2 else _server_cv2.cvtColor(image, _server_cv2.COLOR_BGR2GRAY)
        n, _, stats, _ = _server_cv2.connectedComponentsWithStats((grey < 128).astype(_server_np.uint8))
        boxes = sorted((tuple(int(v) for v in s[:4]) for s in stats[1:] if s[4] >= 20), key=lambda b: b[0])
        digits = tuple(Digit(i % 10, 0.9, b, ((i % 10, 0.9), ((i + 1) % 10, 0.06), ((i + 2) % 10, 0.04)))
                       for i, b in enumerate(boxes))
        numbers = ()
        if digits:
            x0 = min(b[0] for b in boxes)
            y0 = min(b[1] for b in boxes)
            x1 = max(b[0] + b[2] for b in boxes)
            y1 = max(b[1] + b[3] for b in boxes)
            numbers = (Number("".join(str(d.digit) for d in digits), 0.9 ** len(digits), (x0, y0, x1 - x0, y1 - y0),
                              tuple(range(len(digits)))),)
        return Reading(grey.shape[1], grey.shape[0], numbers, digits, elapsed_ms=1.0)

    def classify(self, crops):
        crops = _server_np.asarray(crops)
        scale = 255.0 if crops.dtype == _server_np.uint8 else 1.0
        # class k where k = mean brightness in tenths: a simple, checkable function of the input
        k = _server_np.clip((crops.reshape(len(crops), -1).mean(axis=1) / scale * 10).astype(int), 0, 9)
        probs = _server_np.full((len(crops), len(self.classes)), 0.01)
        probs[_server_np.arange(len(crops)), k] = 1.0 - 0.01 * (len(self.classes) - 1)
        return probs


def server_mnist_scene(digits_by_label: dict, labels: str, size=(480, 640), digit_px: int = 90, seed: int = 0,
                       background=(225, 222, 215)):
    """A photo-like BGR scene: MNIST train digits written dark on lit paper as one number `labels`,
    with a lighting gradient and sensor noise. Returns (image, boxes) where boxes are the ink boxes."""
    rng = _server_np.random.default_rng(seed)
    h, w = size
    yy, xx = _server_np.mgrid[0:h, 0:w].astype(_server_np.float32)
    light = 0.85 + 0.15 * (xx / w) * (1 - 0.3 * yy / h)
    paper = _server_np.stack([light * c for c in background], axis=-1)
    ink = _server_np.zeros((h, w), _server_np.float32)
    glyphs = []
    for ch in labels:  # each digit cut to its ink, so the gaps between digits are set by `gap`, not MNIST's margins
        pool = digits_by_label[int(ch)]
        glyph = pool[int(rng.integers(len(pool)))].astype(_server_np.float32) / 255.0
        big = _server_np.clip(_server_cv2.resize(glyph, (digit_px, digit_px), interpolation=_server_cv2.INTER_CUBIC), 0, 1)
        ys, xs = _server_np.nonzero(big > 0.1)
        glyphs.append(big[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    gap = int(digit_px * 0.2)  # between inks: well under the reader's number gap (a fraction of the height)
    total = sum(g.shape[1] for g in glyphs) + gap * (len(glyphs) - 1)
    x = (w - total) // 2
    for g in glyphs:
        y = (h - g.shape[0]) // 2
        region = ink[y:y + g.shape[0], x:x + g.shape[1]]
        _server_np.maximum(region, g, out=region)
        x += g.shape[1] + gap
    pen = _server_np.array([60, 40, 30], _server_np.float32)  # dark blue-black ink
    img = paper * (1 - ink[..., None]) + pen * ink[..., None]
    img += rng.normal(0, 3.0, img.shape)
    return _server_np.clip(img, 0, 255).astype(_server_np.uint8)


@_server_pytest.fixture(scope="session")
def server_mnist_train():
    """MNIST train digits by label (evaluation of the reader uses the test split; the UI tests use train)."""
    from digitlens.data import load_mnist

    m = load_mnist()
    return {k: m.x_train[m.y_train == k][:200] for k in range(10)}


@_server_pytest.fixture(scope="session")
def server_real_recognizer():
    """The shipped model (or $DIGITLENS_TEST_MODEL, a model file to try instead), or a skip saying why it
    is missing (the model is the lead's; the API tests use a fake)."""
    import os

    try:
        from digitlens.recognizer import Recognizer
    except ImportError as e:
        _server_pytest.skip(f"digitlens.recognizer not importable yet ({e})")
    other = os.environ.get("DIGITLENS_TEST_MODEL")
    if other:
        return Recognizer.load(other)
    if not SERVER_MODEL.is_file():
        _server_pytest.skip(f"shipped model {SERVER_MODEL} not present yet")
    return Recognizer.load()


def server_free_port() -> int:
    with _server_socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread; `url` is ready once started."""

    def __init__(self, app, ws_max_size: int = 16 * 1024 * 1024):
        import uvicorn

        self.port = server_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws_max_size=ws_max_size, lifespan="on"))
        self.thread = _server_threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = _server_time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or _server_time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            _server_time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@_server_pytest.fixture
def server_fake():
    """A fresh fake reader (class ServerFakeRecognizer); tests may set .hold to make reads wait."""
    return ServerFakeRecognizer()


@_server_pytest.fixture(scope="session")
def server_scene():
    """server_mnist_scene(digits_by_label, labels, ...) -> BGR image of the number `labels`."""
    return server_mnist_scene


@_server_pytest.fixture(scope="session")
def server_thread():
    """ServerThread(app): `with server_thread(app) as s: s.url` serves the app with uvicorn on a free port."""
    return ServerThread


# ---------------------------------------------------------------- core fixtures (data, training: tests/test_data.py, test_train.py, ...)
import pytest as _core_pytest


@_core_pytest.fixture(scope="session")
def core_mnist():
    """Verified MNIST from the cache (`make test` runs `digitlens data` first); the test split only evaluates."""
    from digitlens.data import load_mnist

    return load_mnist(mirrors=False)


@_core_pytest.fixture(scope="session")
def core_reader():
    """The shipped reader, loaded once (read is thread-safe and keeps no state between images)."""
    from digitlens import Recognizer

    return Recognizer.load()


@_core_pytest.fixture(scope="session")
def core_mnist_fast(core_mnist):
    """MNIST with only the first 2,000 test images: training's per-epoch test probes stay cheap in tests.
    The training split is whole, so train.split() holds out the same images as in a real run."""
    from digitlens.data import Mnist

    m = core_mnist
    return Mnist(m.x_train, m.y_train, m.x_test[:2000], m.y_test[:2000], m.source, m.path)
