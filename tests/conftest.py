from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VOICEFLOW = [sys.executable, "-m", "voiceflow"]

# Models come from installed packages; nothing may reach a network during the tests.
os.environ.setdefault("VOICEFLOW_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Graphs that archive utterances must not write into the user's own archive.
os.environ.setdefault("VOICEFLOW_ARCHIVE", tempfile.mkdtemp(prefix="voiceflow-test-archive-"))


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s']", " ", text).replace("'", "").split())


@pytest.fixture(scope="session")
def data() -> Path:
    if not (DATA / "jfk.flac").is_file():
        pytest.fail(f"reference audio missing: expected {DATA} (the shared data folder)")
    return DATA


@pytest.fixture(scope="session")
def faster_base():
    from voiceflow.speech.transcriber import SpeechModel

    return SpeechModel("base", engine="faster-whisper", threads=2)


@pytest.fixture(scope="session")
def openai_base():
    from voiceflow.speech.transcriber import SpeechModel

    return SpeechModel("base", engine="openai-whisper", threads=2)


@pytest.fixture(scope="session")
def espeak(tmp_path_factory):
    """Synthesise English speech to a 16 kHz WAV with espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/setup.sh installs it)")
    folder = tmp_path_factory.mktemp("espeak")

    def say(text: str, name: str, voice: str = "en-us") -> Path:
        path = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "130", "-w", str(path), text], check=True)
        return path

    return say


def run_cli(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VOICEFLOW, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
    )
