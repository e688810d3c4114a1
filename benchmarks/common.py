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
