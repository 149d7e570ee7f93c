"""Audio input: containers and codecs ffmpeg decodes, video files, channels, arrays."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tests.conftest import normalize
from voiceflow.speech.audio import expand_inputs, level_speech, load_audio


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, data):
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed (scripts/setup.sh installs it)")
    folder = tmp_path_factory.mktemp("formats")
    jfk = data / "jfk.flac"
    jobs = {
        "jfk.mp3": ["-i", str(jfk), "-c:a", "libmp3lame"],
        "jfk.m4a": ["-i", str(jfk), "-c:a", "aac"],
        "jfk.opus": ["-i", str(jfk), "-c:a", "libopus"],
        "jfk.wav": ["-i", str(jfk), "-ar", "44100", "-ac", "2"],
        "jfk.mp4": [
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=64x64:d=11",
            "-i",
            str(jfk),
            "-shortest",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
        ],
    }
    for name, args in jobs.items():
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", *args, str(folder / name)], check=True
        )
    return folder


def test_every_format_decodes_to_16k_mono(encoded):
    reference = len(load_audio(encoded / "jfk.wav"))
    for path in sorted(encoded.iterdir()):
        samples = load_audio(path)
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert abs(len(samples) - reference) < 16000 * 0.2, path.name  # within 0.2 s
        assert 0.01 < float(np.abs(samples).max()) < 1.5  # lossy codecs overshoot a little


def test_folders_expand_to_audio_and_video(encoded, tmp_path):
    (encoded / "notes.txt").write_text("not audio")
    files, errors = expand_inputs([encoded, tmp_path / "missing.wav"])
    assert sorted(f.suffix for f in files) == [".m4a", ".mp3", ".mp4", ".opus", ".wav"]
    assert errors == [f"{tmp_path / 'missing.wav'}: no such file"]


@pytest.mark.slow
def test_video_file_transcribes(encoded, faster_base):
    t = faster_base.transcribe(encoded / "jfk.mp4")
    assert "ask not what your country can do for you" in normalize(t.text)


def test_numpy_input_int16_and_stereo_arrays():
    from voiceflow.speech.transcriber import _as_samples

    stereo = np.stack([np.full(100, 16384, np.int16), np.zeros(100, np.int16)])
    mono = _as_samples(stereo)
    assert mono.shape == (100,) and mono.dtype == np.float32
    assert mono[0] == pytest.approx(0.25, abs=1e-3)


def test_numpy_input_unsigned_8_bit_is_centred():
    from voiceflow.speech.transcriber import _as_samples

    pcm = np.array([128, 128, 255, 0, 192], dtype=np.uint8)  # 128 is silence in 8-bit WAV
    assert _as_samples(pcm).tolist() == pytest.approx([0.0, 0.0, 127 / 128, -1.0, 0.5])


def test_levelling_in_blocks_matches_whole_and_works_in_place():
    rng = np.random.default_rng(1)
    n = (1 << 20) * 2 + 12345  # more than two processing blocks
    loud, quiet = rng.normal(0, 0.3, n // 2), rng.normal(0, 0.003, n - n // 2)
    audio = np.concatenate([loud, quiet]).astype(np.float32)
    levelled = level_speech(audio)
    assert levelled is not audio and levelled.dtype == np.float32
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))  # noqa: E731
    assert rms(levelled[-16000 * 10 :]) == pytest.approx(10 ** (-23 / 20), rel=0.2)
    copy = audio.copy()
    assert level_speech(copy, out=copy) is copy
    np.testing.assert_array_equal(copy, levelled)


def test_levelling_lifts_quiet_speech_and_leaves_silence():
    rng = np.random.default_rng(0)
    quiet = (rng.normal(0, 10 ** (-50 / 20), 16000 * 4)).astype(np.float32)
    out = level_speech(np.concatenate([np.zeros(16000 * 4, np.float32), quiet]))
    assert np.all(out[: 16000 * 3] == 0)
    rms = float(np.sqrt(np.mean(out[16000 * 5 :] ** 2)))
    assert 10 ** (-30 / 20) < rms < 10 ** (-18 / 20)  # about -23 dBFS


def test_a_16k_mono_wav_is_read_without_pyav_as_pyav_reads_it(data, tmp_path, monkeypatch):
    from bench.common import write_wav
    from voiceflow.speech import audio

    written = tmp_path / "written.wav"
    write_wav(written, np.sin(np.arange(16000, dtype=np.float32) / 7) * 0.5)
    files = [*sorted((data / "commands").glob("*.wav")), written]
    direct = [audio._pcm_wav(f) for f in files]
    assert all(d is not None and len(d) for d in direct)
    assert audio._pcm_wav(data / "stereo_diarization.wav") is None  # PyAV mixes stereo
    short = tmp_path / "short.wav"
    short.write_bytes(written.read_bytes()[:-100])  # the header promises more
    assert audio._pcm_wav(short) is None
    monkeypatch.setattr(audio, "_pcm_wav", lambda path: None)
    for f, d in zip(files, direct, strict=True):
        assert np.array_equal(d, load_audio(f)), f
