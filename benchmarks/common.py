"""What every benchmark records about the machine it ran on (the CPU is shared: the load is part of the result)."""
from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path
from typing import Any

from digitlens import sysinfo

ROOT = Path(__file__).resolve().parents[1]


def machine_info() -> dict[str, Any]:
    """CPU, cores, library versions, git commit, date and load average."""
    import cv2
    import onnxruntime

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {**sysinfo.machine_info(), "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__, "git_commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def install_model(arch: str, model: Path, card: dict[str, Any], logs: dict[str, Path]) -> Path:
    """Install `model` as the shipped digitlens/models/<arch>.onnx, its card (with the file's SHA-256, which the
    reader checks at load) as <arch>.json, and each log under its name beside them."""
    import hashlib
    import json
    import shutil

    models = ROOT / "digitlens" / "models"
    target = models / f"{arch}.onnx"
    shutil.copyfile(model, target)
    card = {**card, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    (models / f"{arch}.json").write_text(json.dumps(card, indent=2) + "\n")
    for name, src in logs.items():
        shutil.copyfile(src, models / name)
    print(f"shipped {target}")
    return target


def uncommitted() -> list[str]:
    """Files of the package changed since the commit machine_info() records: the reader measured is the tree's."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "digitlens"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.splitlines() if line.strip()]


def digits_by_label(source: str) -> list | None:
    """A compositor's digit images for its --source: MNIST images by label (item d: the images of digit d) from
    the *test* split for "mnist" (a benchmark's digits) or the *training* split for "mnist-train" (development
    data); None for "font" (the compositor draws Hershey fonts)."""
    if source == "font":
        return None
    from digitlens.data import load_mnist

    m = load_mnist(mirrors=False)
    x, y = (m.x_test, m.y_test) if source == "mnist" else (m.x_train, m.y_train)
    return [x[y == d] for d in range(10)]
