"""Bad input: one line naming the file and the problem, non-zero exit, batch goes on."""

from __future__ import annotations

import shutil
import subprocess
import time
import wave

import numpy as np
import pytest

from tests.conftest import run_cli
from voiceflow.errors import AudioError
from voiceflow.speech.audio import load_audio


def _wav(path, samples: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture()
def bad_files(tmp_path, data):
    files = {}
    files["missing"] = tmp_path / "nope.wav"
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "notes.txt").write_text("no audio here")
    files["folder"] = tmp_path / "empty_dir"
    files["text"] = tmp_path / "readme.mp3"
    files["text"].write_text("this is not audio at all " * 50)
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    flac = (data / "jfk.flac").read_bytes()
    files["truncated"] = tmp_path / "truncated.flac"
    files["truncated"].write_bytes(flac[: len(flac) // 2])
    files["corrupt"] = tmp_path / "corrupt.flac"
    files["corrupt"].write_bytes(
        flac[:100] + bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8))
    )
    files["zero_length"] = tmp_path / "zero.wav"
    _wav(files["zero_length"], np.zeros(0))
    return files


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("missing", "no such file"),
        ("text", "not a readable audio"),
        ("empty", "empty (0 bytes)"),
    ],
)
def test_load_audio_errors_name_file_and_problem(bad_files, kind, problem):
    with pytest.raises(AudioError) as e:
        load_audio(bad_files[kind])
    assert str(bad_files[kind]) in str(e.value) and problem in str(e.value)


def test_truncated_audio_decodes_what_is_there(bad_files):
    samples = load_audio(bad_files["truncated"])
    assert 3.0 < len(samples) / 16000 < 7.0


def test_zero_length_audio_is_empty(bad_files):
    assert load_audio(bad_files["zero_length"]).size == 0


@pytest.mark.slow
def test_cli_batch_reports_each_bad_file_and_goes_on(bad_files, data, tmp_path):
    args = [str(p) for p in bad_files.values()] + [str(data / "jfk.flac")]
    out = tmp_path / "out"
    r = run_cli(
        "transcribe",
        *args,
        "--output_dir",
        str(out),
        "--output_format",
        "txt",
        "--verbose",
        "False",
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    for kind in ("missing", "folder", "text", "empty", "corrupt"):
        assert any(str(bad_files[kind]) in line for line in errors), (kind, r.stderr)
    # the good file, the truncated one and the zero-length one still produce transcripts
    assert "ask not what your country" in (out / "jfk.txt").read_text().lower()
    assert (out / "truncated.txt").read_text().strip()
    assert (out / "zero.txt").read_text() == ""


@pytest.mark.slow
def test_one_hour_of_silence_is_an_empty_transcript_quickly(tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed (scripts/setup.sh installs it)")
    path = tmp_path / "silence.flac"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-t",
            "3600",
            str(path),
        ],
        check=True,
    )
    # an hour of digital silence skips Silero entirely: well under the two-minute limit
    r = run_cli("transcribe", str(path), "--output_dir", str(tmp_path), "-f", "json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(no speech)" in r.stdout
    assert (tmp_path / "silence.json").read_text().count('"segments": []') == 1


@pytest.mark.parametrize("offline", ["1", "0"])
def test_unavailable_model_fails_fast_with_what_was_tried(tmp_path, data, offline):
    start = time.perf_counter()
    r = run_cli(
        "transcribe",
        str(data / "jfk.flac"),
        "--model",
        "large-v3",
        env={
            "VOICEFLOW_CACHE": str(tmp_path / "cache"),
            "VOICEFLOW_OFFLINE": offline,
            "HF_HUB_OFFLINE": offline,
        },
    )
    assert r.returncode == 1
    *notice, error = r.stderr.splitlines()
    assert error.startswith("error: ") and "Traceback" not in r.stderr
    assert "large-v3" in error and "tried" in error and "--model PATH" in error
    # a download is announced in one line, and only when downloads are allowed
    assert len(notice) == (0 if offline == "1" else 1)
    assert all("downloading Whisper 'large-v3'" in line for line in notice)
    assert time.perf_counter() - start < 60
