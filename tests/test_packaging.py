"""voiceflow as a user installs it: a wheel (not an editable checkout), run from elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.common import venv_on_these_packages
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; the heavy dependencies come
    from the test environment's site-packages (a .pth line), so nothing is downloaded."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the tracked files: setuptools writes build metadata into the
    # source folder, and a stale copy of it in the checkout would shadow the installed one.
    source = tmp / "source"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    build = [*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist")]
    subprocess.run([*build, str(source)], check=True, capture_output=True)
    [wheel] = (tmp / "dist").glob("voiceflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "voiceflow/configs/default.yaml" in names and "voiceflow/intents.yaml" in names
    assert "voiceflow_server/static/app.js" in names  # the web page ships in the wheel
    venv = tmp / "venv"
    python = venv_on_these_packages(venv)
    subprocess.run(
        [*PIP, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def run_installed(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "voiceflow"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_the_wheel_is_what_runs(installed, tmp_path):
    r = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import voiceflow; print(voiceflow.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and r.stdout.startswith(str(installed)), r.stdout + r.stderr


def test_listen_and_run_find_the_default_graph_outside_the_repo(installed, tmp_path):
    r = run_installed(installed, tmp_path, "listen", "--help")
    assert r.returncode == 0 and "--dictate" in r.stdout and "'default'" in r.stdout
    r = run_installed(installed, tmp_path, "validate", "default")
    assert r.returncode == 0 and "ok (5 nodes" in r.stdout, r.stderr
    r = run_installed(
        installed, tmp_path, "run", "default", "--json", "--text", "Paint a red boat at sea."
    )
    assert r.returncode == 0, r.stderr
    assert '"intent": "paint"' in r.stdout and '"prompt": "a red boat at sea"' in r.stdout
    r = run_installed(installed, tmp_path, "run", "no-such-graph", "--text", "hello")
    assert r.returncode == 1 and "not a built-in config (default, lectures)" in r.stderr
