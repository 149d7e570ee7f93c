"""Private by default: with no network feature configured, no network connection attempt.

Each command runs under strace with the test suite's offline switches removed, so the
defaults alone must keep it private; a DNS lookup counts as an attempt.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, VOICEFLOW, listen_through_pulse

pytestmark = pytest.mark.slow

OFFLINE = ("VOICEFLOW_OFFLINE", "HF_HUB_OFFLINE")


def strace(trace: Path) -> list[str]:
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (scripts/setup.sh installs it)")
    # --seccomp-bpf: only the traced calls stop the program, so it runs at nearly full speed
    trace_calls = ["-e", "trace=connect,sendto,sendmsg", "-o", str(trace)]
    return ["strace", "-f", "--seccomp-bpf", "-qq", *trace_calls]


def inet_attempts(trace: Path) -> list[str]:
    return [
        line for line in trace.read_text().splitlines() if re.search(r"AF_INET6?|sin6?_port", line)
    ]


def traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the CLI under strace; returns the result and every inet connect/send it tried."""
    trace = tmp_path / "trace"
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    r = subprocess.run(
        [*strace(trace), *VOICEFLOW, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    return r, inet_attempts(trace)


def test_the_trace_sees_a_connection_attempt(tmp_path):
    """The control: a child process that reaches for the network is caught."""
    trace = tmp_path / "trace"
    code = "import socket, subprocess, sys; socket.socket().connect_ex(('127.0.0.1', 9))"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {code!r}])"
    subprocess.run([*strace(trace), sys.executable, "-c", child], check=True, timeout=60)
    assert any("127.0.0.1" in line for line in inet_attempts(trace))


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


def test_the_default_graph_opens_no_network_socket(data, tmp_path):
    """The assistant graph names a hub image model that is not on this machine: as long as
    nobody asks for a picture, nothing reaches for it."""
    for args in (["--text", "the meeting moved to Thursday"], [str(data / "jfk.flac")]):
        r, inet = traced(tmp_path, "run", "default", "--json", *args)
        assert r.returncode == 0, r.stderr
        assert '"intent"' in r.stdout and "Failure" not in r.stdout, r.stdout
        assert inet == [], f"run {args}: network attempts:\n" + "\n".join(inet[:10])


def test_listening_opens_no_network_socket(pulse, data, tmp_path):
    trace = tmp_path / "trace"
    env = {k: v for k, v in pulse.items() if k not in OFFLINE}
    proc, stdout = listen_through_pulse(
        env, [data / "commands" / "living_room_light_en.wav"], prefix=tuple(strace(trace))
    )
    assert proc.returncode == 0, stdout
    assert "living room light" in stdout.lower()
    inet = inet_attempts(trace)
    assert inet == [], "network attempts:\n" + "\n".join(inet[:10])


def test_voice_activity_sends_no_onnxruntime_telemetry(data, tmp_path):
    """onnxruntime uploads its usage report some seconds after a session starts (measured:
    four DNS lookups of its collector within 15 s when nothing switches it off)."""
    trace = tmp_path / "trace"
    code = (
        "import time\n"
        "from voiceflow.speech.audio import load_audio\n"
        "from voiceflow.speech.vad import SileroVad\n"
        f"assert list(SileroVad().regions(load_audio({str(data / 'jfk.flac')!r})))\n"
        "time.sleep(20)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*OFFLINE, "ORT_DISABLE_TELEMETRY")}
    subprocess.run([*strace(trace), sys.executable, "-c", code], check=True, env=env, timeout=120)
    inet = inet_attempts(trace)
    assert inet == [], "network attempts:\n" + "\n".join(inet[:10])
