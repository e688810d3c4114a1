"""The `digitlens` command for data and training, run for real as a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("data", "train", "evaluate", "import-keras", "read", "live", "serve")


def digitlens(*args: str, timeout: float = 600, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digitlens.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


NO_HEAVY_IMPORTS = """
import sys
from digitlens.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit as e:
        assert e.code in (0, None), e.code
heavy = sorted(m for m in ("torch", "onnx", "fastapi", "uvicorn", "matplotlib", "h5py") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_help_lists_every_subcommand_without_importing_torch():
    argvs = [["--help"], ["train", "--help"], ["data", "--help"]]
    proc = subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS.format(argvs=argvs)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    top = proc.stdout.split("usage: digitlens train")[0]
    for name in SUBCOMMANDS:
        assert f"\n    {name}" in top, f"{name} missing from --help"
    heavy = proc.stdout.rsplit("HEAVY=", 1)[1].strip()
    assert "torch" not in heavy.split(","), f"--help imported {heavy}"
    assert heavy == "", f"--help imported heavy modules: {heavy}"
    # The train help shows its quick mode and every option the issue names.
    train_help = proc.stdout.split("usage: digitlens train")[1]
    for option in ("--arch", "--epochs", "--limit", "--seed", "--resume", "--target-acc", "--data-dir", "--out"):
        assert option in train_help


def test_console_script_help():
    exe = Path(sys.executable).parent / "digitlens"
    if not exe.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_data_prints_cache_path_and_verified(core_mnist):
    """`digitlens data` with no options: the default cache (where core_mnist came from), verified."""
    from digitlens.data import MNIST_CONTENT_SHA256

    proc = digitlens("data", "--offline", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"cached: {core_mnist.path}" in proc.stdout
    assert f"verified: content SHA-256 {MNIST_CONTENT_SHA256}" in proc.stdout


def test_data_dir_missing_is_a_clear_error(tmp_path):
    proc = digitlens("data", "--data-dir", "/nonexistent/mnist", "--cache-dir", str(tmp_path), "--offline", timeout=120)
    assert proc.returncode != 0
    assert "/nonexistent/mnist" in proc.stderr and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mnist.npz").exists()


def test_unknown_arch_is_a_clear_error(tmp_path):
    proc = digitlens("train", "--arch", "resnet", "--out", str(tmp_path), timeout=120)
    assert proc.returncode != 0 and "resnet" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def quick_cli_run(tmp_path_factory, core_mnist):
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = digitlens("train", "--epochs", "1", "--limit", "2000", "--out", str(out), "--threads", "1", "--amp", "off",
                     "--offline", timeout=900)
    return proc, out


def test_train_quick_mode_writes_model_checkpoint_log_summary(quick_cli_run, core_mnist):
    proc, out = quick_cli_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("model.onnx", "checkpoint.pt", "log.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == "lens" and summary["epochs"] == 1
    assert summary["config"]["limit"] == 2000 and summary["config"]["seed"] == 0
    assert summary["data_sha256"] == core_mnist.sha256
    assert set(summary["time_to_accuracy_s"]) == {"0.990", "0.995", "0.997"}
    assert "MNIST test accuracy" in proc.stdout and str(out / "model.onnx") in proc.stdout
    assert "epoch 1/1" in proc.stderr  # the progress bar
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["kind"] == "epoch" and "val_acc" in log[-1]
    assert any(e["kind"] == "probe" for e in log), "time-to-accuracy probes during the first epochs"


def test_train_quick_model_loads_without_torch(quick_cli_run):
    """The written model is read by the no-torch loader (torch blocked from importing)."""
    proc, out = quick_cli_run
    assert proc.returncode == 0
    code = ("import sys; sys.modules['torch'] = None\n"
            "from digitlens.modelfile import load_model\n"
            f"m = load_model({str(out / 'model.onnx')!r})\n"
            "print(m.metadata['arch'], len(m.classes))")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["lens", "11"]


def test_train_resume_with_other_settings_is_a_clear_error(quick_cli_run):
    proc, out = quick_cli_run
    assert proc.returncode == 0
    before = (out / "checkpoint.pt").read_bytes()
    again = digitlens("train", "--epochs", "2", "--limit", "1000", "--out", str(out), "--threads", "1", "--amp", "off",
                      "--offline", "--resume", timeout=300)
    assert again.returncode != 0
    assert "other settings" in again.stderr and "Traceback" not in again.stderr
    assert (out / "checkpoint.pt").read_bytes() == before


def test_root_train_py_help():
    script = ROOT / "train.py"
    if not script.exists():
        pytest.skip("train.py at the repository root not written yet")
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--arch" in proc.stdout and "--epochs" in proc.stdout and "--resume" in proc.stdout
