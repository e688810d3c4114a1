"""The page in a real headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser), driven by
Playwright against `digitlens serve`'s app on a free localhost port, with the shipped model:

- Draw: MNIST *train* digits are written on the canvas with mouse strokes; the page must show the number.
- Camera: Chromium's fake camera plays the demo clip (MNIST train digits filmed by a moving camera);
  the page must show the clip's numbers, with readings/s and latency.
- Upload: a photo of MNIST train digits is uploaded; the page must show its number and offer the JSON.

Screenshots go to benchmarks/results/serve-*.png (one is in the README).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
DEMO_CLIP = Path(__file__).resolve().parents[1] / "digitlens" / "models" / "demo.mp4"
Y4M_FRAMES = 60  # 3 s of the 20 fps clip, played in a loop by the fake camera
BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                       "(apt-get install -y chromium); the browser tests need it and never download one"),
    pytest.mark.timeout(240),
]


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def live_server(server_real_recognizer, server_thread):
    from digitlens.server.app import create_app
    from digitlens.server.limits import ServeConfig

    with server_thread(create_app(ServeConfig(), recognizer=server_real_recognizer)) as srv:
        yield srv


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _launch(p, extra_args: list[str], **context_kw):
    """A persistent context in a fresh temporary profile: Debian's chromium, our flags, nothing downloaded."""
    profile = tempfile.mkdtemp(prefix="digitlens-chromium-")
    ctx = p.chromium.launch_persistent_context(
        profile, executable_path=str(CHROMIUM), headless=True, args=BASE_ARGS + extra_args,
        viewport={"width": 1280, "height": 860}, accept_downloads=True, **context_kw)
    return ctx, profile


def _close(ctx, profile: str) -> None:
    ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(playwright_instance):
    ctx, profile = _launch(playwright_instance, ["--deny-permission-prompts"])
    yield ctx
    _close(ctx, profile)


def _screenshot(page, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / f"serve-{name}.png"), full_page=True)


def _confident_train_digits(recognizer, m, labels: str) -> list[np.ndarray]:
    """For each label, the first MNIST train digit the classifier gets right with p > 0.99 on its own crop:
    the test is about the page, so it writes digits that are unambiguous on their own."""
    out = []
    for ch in labels:
        k = int(ch)
        pool = m[k][:50]
        probs = recognizer.classify(pool)
        good = [i for i in range(len(pool)) if probs[i].argmax() == k and probs[i, k] > 0.99]
        out.append(pool[good[0] if good else 0])
    return out


def _write_digit(page, canvas_box: dict, digit: np.ndarray, x0: float, y0: float, cell: float) -> None:
    """Write one 28x28 MNIST digit with the mouse: one horizontal stroke per run of ink in each row
    (rows `cell` px apart on screen, the pen as wide as a row), i.e. the digit as a bold pen drawing."""
    ink = digit > 110
    for r in range(28):
        row = ink[r]
        c = 0
        while c < 28:
            if not row[c]:
                c += 1
                continue
            start = c
            while c < 28 and row[c]:
                c += 1
            y = canvas_box["y"] + y0 + (r + 0.5) * cell
            xa = canvas_box["x"] + x0 + (start + 0.5) * cell
            xb = canvas_box["x"] + x0 + (c - 0.5) * cell
            page.mouse.move(xa, y)
            page.mouse.down()
            page.mouse.move(xb, y, steps=max(2, int((xb - xa) / 8)))
            page.mouse.up()


def _wait_text(page, selector: str, want: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page.inner_text(selector).strip()
        if text == want:
            return text
        page.wait_for_timeout(150)
    return text


# ---------------------------------------------------------------------------------------------- Draw

def test_draw_digits_with_the_mouse(browser, live_server, server_real_recognizer, server_mnist_train):
    labels = "47"
    digits = _confident_train_digits(server_real_recognizer, server_mnist_train, labels)
    page = browser.new_page()
    page.goto(live_server.url + "/#draw")
    canvas = page.locator("#draw-canvas")
    box = canvas.bounding_box()
    # pen width in canvas pixels to match the stroke rows: the canvas is scaled to its CSS box
    cell = box["height"] * 0.75 / 28
    page.evaluate(f"document.getElementById('draw-pen').value = {cell * 960 / box['width'] * 1.3:.1f}")
    x = box["width"] * 0.2
    for d in digits:
        _write_digit(page, box, d, x, box["height"] * 0.12, cell)
        x += 28 * cell * 0.9
    shown = _wait_text(page, "#draw-text", labels)
    assert shown == labels, f"the page shows {shown!r} for the drawn {labels!r}"
    bars = page.locator("#draw-digits .digit-card")
    assert bars.count() == len(labels)
    assert page.locator("#draw-digits .digit-card").first.locator(".bar").count() == 10
    top = page.locator("#draw-digits .digit-card").first.locator(".bar.top b").inner_text()
    assert top == labels[0], "the highest bar is the digit read"
    _screenshot(page, "draw")
    page.click("#draw-clear")
    assert _wait_text(page, "#draw-text", "—", 5) == "—"
    page.close()


def test_camera_refused_or_missing_gives_a_clear_message(browser, live_server):
    page = browser.new_page()
    page.goto(live_server.url + "/#camera")
    page.click("#cam-start")
    page.wait_for_selector("#cam-message:not([hidden])", timeout=10_000)
    text = page.inner_text("#cam-message")
    assert re.search(r"refused|No camera|could not be started", text), text
    page.close()


# ---------------------------------------------------------------------------------------------- Camera

def _demo_truth(m_all) -> list[str]:
    """The numbers written on the demo clip's page (the same generator and seed as the shipped clip)."""
    from digitlens.demo import ClipConfig, write_page

    cfg = ClipConfig()
    _, _, numbers = write_page(m_all.x_train, m_all.y_train, np.random.default_rng(2026), cfg)
    return [n if isinstance(n, str) else n[0] for n in numbers]


def _write_y4m(frames: list[np.ndarray], path: Path, fps: int) -> None:
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """A y4m of the demo clip's first frames (Chromium's fake camera plays y4m or mjpeg, not mp4)."""
    if not DEMO_CLIP.exists():
        pytest.fail(f"the demo clip {DEMO_CLIP} is missing (python -m digitlens.demo writes it)")
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    fps = int(round(cap.get(cv2.CAP_PROP_FPS) or 20))
    frames = []
    while len(frames) < Y4M_FRAMES:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert frames, f"cannot decode {DEMO_CLIP}"
    path = tmp_path_factory.mktemp("camera") / "clip.y4m"
    _write_y4m(frames, path, fps)
    return path


def test_camera_shows_the_clips_numbers(playwright_instance, live_server, camera_clip):
    from digitlens.data import load_mnist

    truth = set(_demo_truth(load_mnist()))
    ctx, profile = _launch(playwright_instance, [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_clip}"])
    try:
        page = ctx.new_page()
        page.goto(live_server.url + "/#camera")
        page.click("#cam-start")
        seen: set[str] = set()
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not truth <= seen:
            seen.update(page.inner_text("#cam-text").split())
            page.wait_for_timeout(100)
        assert page.locator("#cam-message").is_hidden(), page.inner_text("#cam-message")
        right = seen & truth
        # the clip pans and zooms, so numbers at the edge leave the view; most must be read, none invented
        assert len(right) >= len(truth) // 2 + 1, f"read {sorted(seen)}; the clip holds {sorted(truth)}"
        assert len(seen - truth) <= 1, f"read {sorted(seen - truth)}, which the clip does not hold"
        fps = float(page.inner_text("#cam-fps"))
        latency = float(page.inner_text("#cam-latency"))
        assert fps > 1 and latency > 0
        _screenshot(page, "camera")
        page.click("#cam-stop")
    finally:
        _close(ctx, profile)


# ---------------------------------------------------------------------------------------------- Upload

def test_upload_a_photo(browser, live_server, server_mnist_train, server_scene, tmp_path):
    labels = "2053"
    img = server_scene(server_mnist_train, labels, size=(600, 800), digit_px=110, seed=3)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    page = browser.new_page()
    page.goto(live_server.url + "/#upload")
    page.set_input_files("#upload-input", str(photo))
    shown = _wait_text(page, "#upload-text", labels)
    assert shown == labels, f"the page shows {shown!r} for a photo of {labels!r}"
    page.wait_for_selector("#upload-stage:not([hidden])")
    assert page.locator("#upload-numbers li").count() == 1
    with page.expect_download() as info:
        page.click("#upload-download")
    reading = json.loads(Path(info.value.path()).read_text())
    assert reading["width"] == 800 and " ".join(n["text"] for n in reading["numbers"]) == labels
    _screenshot(page, "upload")
    page.close()
