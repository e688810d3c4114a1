"""`digitlens live`: read handwritten digits from a webcam, a video file, a folder of images or a stream."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

HELP = """read handwritten digits live from a webcam, video file, image folder or stream, with an overlay

Every frame goes through the same reader as `digitlens read`; a tracker then steadies the result: a
digit appears after 3 agreeing frames and disappears 5 frames after it leaves (see TrackConfig in
digitlens/video.py). Capture runs in its own thread; cameras and streams always hand over the newest
frame (stale ones are dropped), files and folders are read frame by frame unless --realtime. A camera
or stream that fails or freezes is reported within 2 s and reopened with back-off.

Window keys: q or Esc quits, space pauses, s saves a snapshot (PNG plus its reading as JSON).
Without a display (no $DISPLAY) it runs without a window and says so.

examples:
  digitlens live                                webcam 0 with the overlay window
  digitlens live --source demo                  the shipped demo clip (handwritten numbers on paper)
  digitlens live --source 1                     the second camera
  digitlens live --source clip.mp4 --save out.mp4 --no-window
  digitlens live --source 'scans/*.png' --json  one JSON line per frame: frame, t, numbers, digits with ids
  digitlens live --source rtsp://cam.local/stream --give-up 60
  digitlens live --source demo --no-window --max-frames 50 --json
"""

log = logging.getLogger("digitlens.live")

KEY_ESC = 27


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="SRC", default=None,
                   help="camera index (default 0), video file, folder or glob of images, rtsp/http URL, or 'demo'")
    p.add_argument("--model", metavar="PATH", default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--no-window", action="store_true", help="no window (automatic when there is no display)")
    p.add_argument("--save", metavar="OUT.mp4", default=None, help="write the annotated video here")
    p.add_argument("--json", action="store_true", help="print one JSON line per frame to stdout")
    p.add_argument("--max-frames", metavar="N", type=int, default=None, help="stop after N frames")
    p.add_argument("--realtime", action="store_true",
                   help="play files and folders at their frame rate, dropping frames when behind (as a camera)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of an image folder under --realtime, and of --save when the source has none")
    p.add_argument("--snapshot-dir", metavar="DIR", default=".", help="where the s key saves snapshots (default .)")
    p.add_argument("--give-up", metavar="SECONDS", type=float, default=0.0,
                   help="end with an error when a camera/stream sends no frame for this long (default: retry forever)")
    p.add_argument("--log", metavar="FILE", default=None, help="also write the log (faults, reconnects) to FILE")


def display_available() -> tuple[bool, str]:
    """Whether a window can open, and why not. Checked before Qt, which aborts the process without one."""
    if sys.platform in ("win32", "darwin"):
        return True, ""
    if os.environ.get("WAYLAND_DISPLAY"):
        return True, ""
    display = os.environ.get("DISPLAY", "")
    if not display:
        return False, "no display found ($DISPLAY is not set)"
    host, _, rest = display.partition(":")
    number = rest.split(".")[0]
    if host in ("", "unix") and number.isdigit() and not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        return False, f"no X server on display {display}"
    return True, ""


def _qt_fonts() -> None:
    """opencv-python's Qt has no fonts of its own and complains on every window; point it at the system's."""
    if os.environ.get("QT_QPA_FONTDIR"):
        return
    for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts"):
        if os.path.isdir(d):
            os.environ["QT_QPA_FONTDIR"] = d
            return


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in handlers:
        h.setFormatter(fmt)
    log.handlers[:] = handlers
    log.setLevel(logging.INFO)
    log.propagate = False


class Window:
    """The live window: shows frames, reads keys (q/Esc quit, space pause, s snapshot)."""

    def __init__(self, title: str, snapshot_dir: str) -> None:
        import cv2
        self.cv2 = cv2
        self.title = title
        self.snapshot_dir = Path(snapshot_dir)
        self.paused = False
        self.quit = False
        _qt_fonts()
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self.shown = False

    def show(self, image: Any) -> None:
        self.cv2.imshow(self.title, image)
        self.shown = True

    def poll(self, delay_ms: int = 1) -> int:
        """Handle one key press (if any); returns the key code or -1."""
        key = self.cv2.waitKey(delay_ms)
        if key == -1:
            if self.shown and self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) < 1:
                self.quit = True  # closed with the title bar's button
            return -1
        key &= 0xFF  # the seed had `and 0xFF`, which is always false; the low byte is the key
        if key in (ord("q"), ord("Q"), KEY_ESC):
            self.quit = True
        elif key == ord(" "):
            self.paused = not self.paused
        return key

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
            self.cv2.waitKey(1)
        except Exception:  # the window may be gone already
            pass


def save_snapshot(directory: Path, frame: Any, annotated: Any, record: dict[str, Any]) -> Path:
    """frame as PNG, the overlay as -overlay.png, the reading as JSON beside them; returns the PNG path."""
    import cv2
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"digitlens-{time.strftime('%Y%m%d-%H%M%S')}-frame{record['frame']}"
    if not cv2.imwrite(str(stem) + ".png", frame) or not cv2.imwrite(str(stem) + "-overlay.png", annotated):
        raise OSError(f"cannot write snapshot {stem}.png")
    Path(str(stem) + ".json").write_text(json.dumps(record) + "\n")
    return Path(str(stem) + ".png")


def run(args: argparse.Namespace) -> int:
    _setup_logging(getattr(args, "log", None))
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C stops the loop cleanly even when we were started with SIGINT ignored (as by a shell's `cmd &`,
        # whose children Python would otherwise leave deaf to it)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # FFmpeg and OpenCV would print their own lines for every failed read or reconnect; we log those ourselves
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    from digitlens import video

    use_window = not args.no_window
    if use_window:
        ok, why = display_available()
        if not ok:
            print(f"note: {why}: running without a window (use --save OUT.mp4 or --json to see results)",
                  file=sys.stderr)
            use_window = False

    config = video.SourceConfig(give_up_s=max(0.0, args.give_up))
    spec = args.source if args.source is not None else "0"
    try:
        source = video.open_source(spec, realtime=args.realtime, config=config, fps=args.fps)
    except video.SourceError as exc:
        if args.source is None:
            print("error: no camera found (camera 0 could not be opened). Try `digitlens live --source demo` to "
                  "play the shipped sample clip, or give --source FILE, FOLDER, GLOB or URL.", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2

    from digitlens.recognizer import Recognizer
    try:
        recognizer = Recognizer.load(args.model)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2

    try:
        source.start()
    except video.SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    log.info("reading %s (%s)%s", source.name, source.kind, f", {source.fps:g} fps" if source.fps else "")
    tracker = video.Tracker()
    window: Window | None = None
    writer = None
    last: dict[str, Any] = {}
    status = "interrupted"
    frames = 0
    t_start = time.monotonic()
    last_text: str | None = None
    written, first_t, save_fps = 0, 0.0, 30.0  # --save: frames written, first frame's time, frame rate
    paced = source.kind in ("camera", "stream") or args.realtime  # frames carry wall-clock times
    try:
        if use_window:
            try:
                window = Window(f"digitlens live - {source.name}", args.snapshot_dir)
            except cv2.error as exc:  # e.g. an OpenCV built without GUI support
                print(f"note: cannot open a window ({str(exc).strip().splitlines()[-1]}): running without one",
                      file=sys.stderr)
                use_window = False

        def status_line(fps: float, ms: float) -> tuple[str, bool]:
            if source.fault:
                return f"{source.fault}", True
            return f"{fps:5.1f} fps  {ms:5.1f} ms/frame  {source.name}", False

        def idle() -> bool:
            # no new frame: keep the window responsive and show the fault, if any
            if window is not None:
                if "frame" in last and source.fault:
                    text, fault = status_line(0, 0)
                    window.show(video.draw_reading(last["frame"].image, last["steady"], text, fault=fault))
                window.poll(10)
                return not window.quit
            return True

        for lf in video.live_frames(source, recognizer.read, tracker, args.max_frames, idle):
            frames += 1
            record = video.reading_json(lf.frame, lf.steady)
            if args.json:
                print(json.dumps(record), flush=True)
            elif not use_window:
                text = lf.steady.text
                if text != last_text:
                    print(f"frame {lf.frame.index} ({lf.frame.t:.2f} s): {text or '(no digits)'}", flush=True)
                    last_text = text
            annotated = None
            if window is not None or args.save:
                text, fault = status_line(lf.fps, lf.ms)
                annotated = video.draw_reading(lf.frame.image, lf.steady, text, fault=fault)
            last.update(frame=lf.frame, steady=lf.steady, annotated=annotated, record=record)
            if args.save:
                if writer is None:
                    save_fps = source.fps or args.fps or 30.0
                    writer = _open_writer(args.save, annotated, save_fps)
                    first_t = lf.frame.t
                # live sources drop frames: repeat the last one so the saved video keeps wall-clock time
                repeats = max(1, int((lf.frame.t - first_t) * save_fps) + 1 - written) if paced else 1
                for _ in range(repeats):
                    writer.write(annotated)
                written += repeats
            if window is not None:
                window.show(annotated)
                key = window.poll(1)
                while True:
                    if key == ord("s"):
                        path = save_snapshot(window.snapshot_dir, lf.frame.image, annotated, record)
                        print(f"saved snapshot {path} (+ .json, -overlay.png)", file=sys.stderr)
                    if window.quit or not window.paused:
                        break
                    key = window.poll(30)
                if window.quit:
                    status = "quit"
                    break
        else:
            status = "ended"
        if status != "quit":
            status = "error" if source.error else ("quit" if window is not None and window.quit else "ended")
    except KeyboardInterrupt:
        status = "interrupted"
        log.info("interrupted (Ctrl-C)")
    except (video.SourceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = "failed"
    finally:
        source.close()
        if writer is not None:
            writer.release()
        if window is not None:
            window.close()
    elapsed = time.monotonic() - t_start
    log.info("%d frames in %.1f s (%.1f fps), %d dropped as stale%s", frames, elapsed, frames / max(elapsed, 1e-9),
             source.dropped, f", {getattr(source, 'reconnects', 0)} reconnects" if getattr(source, "reconnects", 0) else "")
    if args.save and writer is not None:
        log.info("wrote %s", args.save)
    if status == "error":
        print(f"error: {source.error}", file=sys.stderr)
    if status in ("error", "failed"):
        return 1
    return 130 if status == "interrupted" else 0


def _open_writer(path: str, first: Any, fps: float) -> Any:
    import cv2
    from digitlens.video import SourceError
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise SourceError(f"cannot write {path}: OpenCV could not open an mp4v writer there")
    return writer


COMMANDS = {"live": (HELP, add_arguments, run)}


def main(argv: list[str] | None = None) -> int:
    """`python digitrecognization.py [args]`: the same as `digitlens live [args]`."""
    parser = argparse.ArgumentParser(prog="digitrecognization.py", description=HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
