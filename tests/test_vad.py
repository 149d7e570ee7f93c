"""Voice activity in numpy: the same decisions as Silero's own torch path, without torch or
onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import heavy_imports
from voiceflow.speech.audio import expand_inputs, load_audio
from voiceflow.speech.vad import SileroStream, SileroVad, VadOptions, _active_ranges, speech_regions


def silero_options(o: VadOptions) -> dict[str, float]:
    """``o`` as silero-vad's own keyword arguments."""
    return {
        "threshold": o.threshold,
        "min_speech_duration_ms": o.min_speech_ms,
        "min_silence_duration_ms": o.min_silence_ms,
        "speech_pad_ms": o.speech_pad_ms,
        "max_speech_duration_s": o.max_speech_s,
    }


def silero_torch_regions(audio: np.ndarray, o: VadOptions) -> list[tuple[int, int]]:
    """What voiceflow's VAD answered before: silero-vad's TorchScript model and rules."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    model = load_silero_vad(onnx=False)
    out = []
    for a, b in _active_ranges(audio, o.energy_floor_db):
        model.reset_states()
        with torch.inference_mode():
            stamps = get_speech_timestamps(torch.from_numpy(audio[a:b]), model, **silero_options(o))
        out += [(a + s["start"], a + s["end"]) for s in stamps]
    return out


def test_regions_match_silero_torch_on_every_reference_clip(data):
    clips, _ = expand_inputs([data])
    assert len(clips) >= 28
    long = np.concatenate([load_audio(c) for c in clips])  # over 29 s: cut at pauses
    for name, audio in [(c.name, load_audio(c)) for c in clips] + [("all", long)]:
        ours = list(SileroVad().regions(audio))
        assert ours, name
        assert ours == silero_torch_regions(audio, VadOptions()), name


def test_frame_probabilities_match_silero_torch(data):
    import torch
    from silero_vad import load_silero_vad

    audio = load_audio(data / "jfk.flac")
    model = load_silero_vad(onnx=False)
    with torch.inference_mode():
        ref = [
            float(model(torch.from_numpy(f), 16000))
            for f in audio[: len(audio) // 512 * 512].reshape(-1, 512)
        ]
    ours = list(SileroStream().probabilities(audio))[: len(ref)]
    assert np.abs(np.array(ours) - np.array(ref)).max() < 1e-3
    assert sum(p >= 0.5 for p in ours) > len(ours) / 2  # JFK speaks most of the clip


@pytest.mark.parametrize("max_speech_s", [29.0, 2.0])
def test_region_rules_match_silero_on_random_probabilities(max_speech_s):
    from silero_vad import get_speech_timestamps_from_probs

    rng = np.random.default_rng(7)
    o = VadOptions(max_speech_s=max_speech_s)
    for _ in range(200):
        probs: list[float] = []
        while len(probs) < 2000:  # runs of one value: speech, pauses, flicker
            probs += [float(rng.random())] * int(rng.integers(1, 60))
        n = len(probs) * 512 - int(rng.integers(0, 512))
        ref = get_speech_timestamps_from_probs(probs, audio_length_samples=n, **silero_options(o))
        assert list(speech_regions(probs, n, o)) == [(s["start"], s["end"]) for s in ref]


@pytest.mark.parametrize("clip", ["jfk.flac", "commands/living_room_light_en.wav"])
def test_transcribe_command_imports_no_torch(data, tmp_path, clip):
    """torch costs seconds of start-up and hundreds of MB; only the openai-whisper engine
    and images need it. onnxruntime (35 MB) is for Chroma's embedder; PyAV (0.15 s) only
    decodes what is not a 16 kHz mono WAV."""
    code = (
        "from voiceflow.cli import main\n"
        "try:\n"
        f"    main(['transcribe', {str(data / clip)!r}, '-o', {str(tmp_path)!r}, '-f', 'txt'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "import sys\n"
        "if type(sys.modules['av']).__name__ == '_LoadedOnFirstUse':\n"  # never loaded
        "    del sys.modules['av']\n"
    )
    heavy = {"torch", "transformers", "onnxruntime"} | ({"av"} if clip.endswith(".wav") else set())
    assert heavy_imports(code, heavy) == []
    said = (tmp_path / f"{clip.split('/')[-1].rsplit('.', 1)[0]}.txt").read_text().lower()
    assert ("country" if clip == "jfk.flac" else "light") in said


@pytest.mark.parametrize("cut", [0, 1000, 400_000])
def test_a_damaged_model_file_says_to_reinstall(tmp_path, monkeypatch, cut):
    import importlib.util
    from types import SimpleNamespace

    from voiceflow.errors import VoiceflowError
    from voiceflow.speech import vad

    real = importlib.util.find_spec("silero_vad")
    assert real is not None and real.submodule_search_locations
    shipped = next(iter(real.submodule_search_locations)) + "/data/silero_vad.onnx"
    (tmp_path / "data").mkdir()
    with open(shipped, "rb") as f:  # the shipped file cut short
        (tmp_path / "data" / "silero_vad.onnx").write_bytes(f.read()[:cut])
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(VoiceflowError, match="reinstall silero-vad"):
        vad._load_weights()
