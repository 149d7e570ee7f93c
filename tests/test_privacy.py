"""Private by default: with no network feature configured, no network connection attempt."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the CLI under strace; returns the result and every inet connect/send it tried."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (scripts/setup.sh installs it)")
    trace = tmp_path / "trace"
    # The test suite's offline switches are removed: the default must be private by itself.
    env = {k: v for k, v in os.environ.items() if k not in ("VOICEFLOW_OFFLINE", "HF_HUB_OFFLINE")}
    r = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect,sendto,sendmsg",
            "-o",
            str(trace),
            sys.executable,
            "-m",
            "voiceflow",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    inet = [
        line for line in trace.read_text().splitlines() if re.search(r"AF_INET6?|sin6?_port", line)
    ]
    return r, inet


@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_transcription_opens_no_network_socket(data, tmp_path, engine):
    r, inet = traced(
        tmp_path,
        "transcribe",
        str(data / "jfk.flac"),
        "--engine",
        engine,
        "--output_dir",
        str(tmp_path),
        "--word_timestamps",
        "True",
    )
    assert r.returncode == 0, r.stderr
    assert "ask not what your country" in r.stdout.lower()
    assert inet == [], "network attempts:\n" + "\n".join(inet[:10])


def test_ingest_and_ask_open_no_network_socket(data, tmp_path):
    folder = tmp_path / "talks"
    folder.mkdir()
    (folder / "jfk.flac").symlink_to(data / "jfk.flac")
    store = str(tmp_path / "store")
    for args in (["ingest", str(folder)], ["ask", "what can you do for your country"]):
        r, inet = traced(tmp_path, *args, "--archive", store)
        assert r.returncode == 0, r.stderr
        assert inet == [], f"{args[0]}: network attempts:\n" + "\n".join(inet[:10])
    assert "jfk.flac" in r.stdout
