"""The speech node on real audio with the shipped Whisper base weights, both engines."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import normalize
from voiceflow.errors import VoiceflowError
from voiceflow.speech.audio import load_audio

pytestmark = pytest.mark.slow

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
LEFT = (
    "he began a confused complaint against the wizard who had vanished behind the "
    "curtain on the left"
)
RIGHT = "the horizon seems extremely distant"


@pytest.fixture(params=["faster_base", "openai_base"])
def model(request):
    return request.getfixturevalue(request.param)


def test_jfk_text_language_and_word_timestamps(model, data):
    t = model.transcribe(data / "jfk.flac", word_timestamps=True)
    assert normalize(t.text) == JFK
    assert t.language == "en" and t.language_probability > 0.9
    words = [w for s in t.segments for w in s.words]
    assert len(words) >= 20
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= t.duration + 0.01 for w in words)
    assert all(isinstance(w.start, float) for w in words)


@pytest.mark.parametrize("channel, expected", [("left", LEFT), ("right", RIGHT)])
def test_stereo_channels_transcribed_separately(model, data, channel, expected):
    t = model.transcribe(data / "stereo_diarization.wav", channel=channel)
    assert normalize(t.text) == expected
    assert t.language == "en"


def test_language_changes_are_tagged_per_segment(faster_base, data):
    en = load_audio(data / "fleurs" / "fleurs-en-001.ogg")
    de = load_audio(data / "fleurs" / "fleurs-de-001.ogg")
    t = faster_base.transcribe(np.concatenate([en, de]))
    langs = [s.language for s in t.segments]
    assert langs[0] == "en" and langs[-1] == "de"
    assert langs == sorted(langs, key=lambda x: x != "en")  # English, then German
    boundary = len(en) / 16000
    assert all(s.end <= boundary + 0.5 for s in t.segments if s.language == "en")
    german = " ".join(s.text for s in t.segments if s.language == "de")
    assert "wasser" in normalize(german)


def test_chunks_decoded_two_at_a_time_give_the_sequential_transcript(data):
    """With --workers 2, faster-whisper decodes two chunks of a recording at once; the
    transcript is the one a decode at a time gives, in order, language by language."""
    from voiceflow.speech.transcriber import SpeechModel

    model = SpeechModel("base", engine="faster-whisper", threads=2, workers=2)
    gap = np.zeros(3 * 16000, dtype=np.float32)  # pauses over 2 s end a chunk
    names = ["fleurs-en-001", "fleurs-de-001", "fleurs-es-001", "fleurs-fr-001"]
    clips = [load_audio(data / "fleurs" / f"{n}.ogg") for n in names]
    audio = np.concatenate([x for clip in clips for x in (clip, gap)])
    assert model.engine.parallel == 2
    parallel = model.transcribe(audio)
    model.engine.parallel = 1  # the same weights and threads, one chunk at a time
    sequential = model.transcribe(audio)
    assert parallel == sequential
    languages = [s.language for s in parallel.segments]
    firsts = [lang for i, lang in enumerate(languages) if lang not in languages[:i]]
    assert firsts == ["en", "de", "es", "fr"]


def test_allowed_languages_restrict_identification(faster_base, data):
    t = faster_base.transcribe(
        data / "commands" / "living_room_light_es.wav", languages=["en", "de"]
    )
    assert t.language in ("en", "de")
    t = faster_base.transcribe(
        data / "commands" / "living_room_light_es.wav", languages=["en", "es", "de", "fr", "pt"]
    )
    assert t.language == "es"


def test_translate_task_gives_english(faster_base, data):
    t = faster_base.transcribe(data / "fleurs" / "fleurs-de-001.ogg", task="translate")
    assert t.language == "de" and t.task == "translate"
    words = set(normalize(t.text).split())
    assert {"the", "water"} <= words, t.text


def test_translation_alongside_transcript(faster_base, data):
    t = faster_base.transcribe(data / "fleurs" / "fleurs-es-000.ogg", translate=True)
    assert t.language == "es"
    assert t.translation and t.translation != t.text
    assert "the" in normalize(t.translation).split()
    english = faster_base.transcribe(data / "jfk.flac", translate=True)
    assert english.translation is None  # English needs no translation


def test_forced_language(faster_base, data):
    t = faster_base.transcribe(data / "jfk.flac", language="en")
    assert t.language == "en" and t.language_probability == 1.0
    assert normalize(t.text) == JFK


def test_silence_and_noise_give_empty_transcripts(model):
    silence = np.zeros(16000 * 30, dtype=np.float32)
    noise = np.random.default_rng(0).normal(0, 0.05, 16000 * 20).astype(np.float32)
    for audio in (silence, noise):
        t = model.transcribe(audio)
        assert t.text == "" and t.segments == ()


@pytest.mark.parametrize(
    "said, word",
    [
        ("Please send the report to Doctor Kowalczyk tomorrow morning.", "Kowalczyk"),
        ("The patient was given Xarelto after the surgery.", "Xarelto"),
    ],
)
def test_hotwords_fix_a_word_the_model_gets_wrong(faster_base, espeak, said, word):
    audio = espeak(said, f"hotword-{word}")
    plain = normalize(faster_base.transcribe(audio).text)
    helped = normalize(faster_base.transcribe(audio, hotwords=word).text)
    assert word.lower() not in plain.split(), plain  # misheard without help
    assert word.lower() in helped.split(), helped
    rest = normalize(said).split()
    assert len(set(rest) & set(helped.split())) >= len(rest) - 2, helped  # the rest intact


def test_python_api_is_short(data):
    import voiceflow

    t = voiceflow.load_model("base").transcribe(str(data / "jfk.flac"))
    assert normalize(t.text) == JFK


def test_a_gpu_without_ctranslate2s_cuda_libraries_is_one_clear_error(faster_base, monkeypatch):
    """Seen on a CUDA 13 machine: CTranslate2's wheels need CUDA 12's cuBLAS."""

    def missing(*args, **kwargs):
        raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    monkeypatch.setattr(faster_base.engine.model, "encode", missing)
    with pytest.raises(VoiceflowError, match="--engine openai-whisper"):
        faster_base.transcribe(np.zeros(16000, dtype=np.float32) + 0.1, vad=False)
