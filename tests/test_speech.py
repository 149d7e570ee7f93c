"""The speech node on real audio with the shipped Whisper base weights, both engines."""

from __future__ import annotations

import threading
import time

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
    """On a CPU faster-whisper decodes two chunks of a recording at once by default, one
    thread each; the transcript is the one a decode at a time gives, in order, language by
    language, and the encoder passes (~150 MB of buffers each) never overlap."""
    import threading

    from voiceflow.speech.transcriber import SpeechModel

    model = SpeechModel("base", engine="faster-whisper", threads=2)
    assert (model.engine.parallel, model.engine.threads) == (2, 1)
    running, most, lock = 0, 0, threading.Lock()
    encode = model.engine.model.encode

    def watched(features):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)  # widen the window another pass could enter
        try:
            return encode(features)
        finally:
            with lock:
                running -= 1

    model.engine.model.encode = watched
    gap = np.zeros(3 * 16000, dtype=np.float32)  # pauses over 2 s end a chunk
    names = ["fleurs-en-001", "fleurs-de-001", "fleurs-es-001", "fleurs-fr-001"]
    clips = [load_audio(data / "fleurs" / f"{n}.ogg") for n in names]
    audio = np.concatenate([x for clip in clips for x in (clip, gap)])
    parallel = model.transcribe(audio)
    assert most == 1
    model.engine.parallel = 1  # the same weights and threads, one chunk at a time
    sequential = model.transcribe(audio)
    assert parallel == sequential
    languages = [s.language for s in parallel.segments]
    firsts = [lang for i, lang in enumerate(languages) if lang not in languages[:i]]
    assert firsts == ["en", "de", "es", "fr"]


@pytest.mark.parametrize(
    "device, threads, workers, expected",
    [
        ("cpu", 2, 0, (2, 1)),  # two cores: a decoder on each
        ("cpu", 8, 0, (2, 4)),
        ("cpu", 1, 0, (1, 1)),
        ("cpu", 2, 1, (1, 2)),  # one at a time, on both cores
        ("cpu", 2, 3, (3, 1)),
        ("cuda", 0, 0, (1, 0)),
    ],
)
def test_threads_are_split_between_the_decoders(device, threads, workers, expected):
    from voiceflow.speech.engines import split_threads

    assert split_threads(device, threads, workers) == expected


@pytest.mark.parametrize(
    "argv, workers",
    [
        ([], 0),  # beam search: two decoders on a CPU
        (["--beam_size", "1"], 1),  # greedy: one decoder on every thread
        (["--beam_size", "1", "--workers", "2"], 2),  # asked for
        (["--workers", "1"], 1),
    ],
)
def test_greedy_transcription_decodes_one_chunk_at_a_time_unless_told(argv, workers):
    from voiceflow.cli import build_parser, model_args

    for command in ("transcribe", "subtitles"):
        args = build_parser().parse_args([command, "a.wav", *argv])
        assert model_args(args)["workers"] == workers, command


@pytest.mark.parametrize("params, workers", [({}, 1), ({"workers": 2}, 2), (None, 1)])
def test_one_utterance_at_a_time_loads_one_decoder_unless_the_graph_says(
    tmp_path, monkeypatch, params, workers
):
    """The listener and the Wyoming server ask for one decoder (``speech_node(workers=1)``);
    a graph's own setting wins, and a graph without a speech node gets a default one."""
    import asyncio

    from voiceflow.graph import load_graph
    from voiceflow.runtime import GraphRunner
    from voiceflow.speech.transcriber import SpeechModel

    loaded = []
    monkeypatch.setattr(SpeechModel, "shared", lambda *a: loaded.append(a) or object())
    if params is None:
        text = "version: 1\nnodes: {intent: {type: intent}}\n"
        text += "routes: [{from: input, to: intent}, {from: intent, to: output}]\n"
    else:
        text = f"version: 1\nnodes: {{speech: {{type: whisper, params: {params}}}}}\n"
        text += "routes: [{from: input, to: speech}, {from: speech, to: output}]\n"
    (tmp_path / "g.yaml").write_text(text)
    node = asyncio.run(GraphRunner(load_graph(tmp_path / "g.yaml")).speech_node(workers=1))
    assert node.config.workers == workers and loaded[0][-1] == workers


def test_parallel_chunks_are_taken_as_threads_free_up_and_come_out_in_order():
    """With --workers 2 the chunks were all taken before the first decoded (Executor.map
    reads its whole input), so the decoding waited for voice activity over the whole file."""
    import time

    from voiceflow.speech.transcriber import ordered_map

    taken: list[int] = []

    def chunks():
        for i in range(6):
            taken.append(i)
            yield i

    def decode(i: int) -> int:
        time.sleep(0.05 * (i % 2))  # the second of each pair finishes later
        return i * 10

    out = []
    for result in ordered_map(decode, chunks(), 2):
        out.append((result, len(taken)))
    assert [r for r, _ in out] == [0, 10, 20, 30, 40, 50]
    assert out[0][1] == 2  # the first result came when two chunks had been taken, not six
    assert list(ordered_map(decode, iter(range(3)), 1)) == [0, 10, 20]


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


def test_a_short_clip_is_encoded_over_its_minimum_window(faster_base, data, monkeypatch):
    """Short speech: 20 s of encoder input by default, 10 s for a quick look (partial text),
    and the quick look still hears the command."""
    widths = []
    encode = faster_base.engine.model.encode
    monkeypatch.setattr(
        faster_base.engine.model, "encode", lambda x: widths.append(x.shape[-1]) or encode(x)
    )
    clip = load_audio(data / "commands" / "living_room_light_en.wav")  # 2.4 s
    full = faster_base.transcribe(clip, vad=False, language="en")
    quick = faster_base.transcribe(clip, vad=False, language="en", beam_size=1, min_window_s=10)
    assert widths == [2000, 1000]
    assert "living room light" in normalize(full.text)
    assert normalize(quick.text) == normalize(full.text)


def test_voice_activity_runs_ahead_while_chunks_decode(faster_base, data, monkeypatch):
    """The model decodes the first chunk while voice activity still looks at the rest;
    the transcript is the same as in sequence, and a failure there is the caller's."""
    from voiceflow.speech import vad

    clips = [data / "fleurs" / f"fleurs-{n}.ogg" for n in ("en-001", "de-001", "en-002")]
    gap = np.zeros(3 * 16000, dtype=np.float32)  # over 2 s: three chunks
    audio = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    before = faster_base.transcribe(audio)
    events = []
    regions = vad.SileroVad.regions
    decode = faster_base._decode_chunk
    found_while_decoding = threading.Event()

    def noted_regions(self, samples):
        for r in regions(self, samples):
            events.append("region")
            if "decoding" in events:
                found_while_decoding.set()
            yield r

    def noted_decode(*args, **kwargs):
        events.append("decoding")
        try:
            # However fast the model, the first chunk waits for a region found meanwhile:
            # voice activity run in turn with decoding would find none.
            found_while_decoding.wait(timeout=20)
            return decode(*args, **kwargs)
        finally:
            events.append("decoded")

    monkeypatch.setattr(vad.SileroVad, "regions", noted_regions)
    monkeypatch.setattr(faster_base, "_decode_chunk", noted_decode)
    after = faster_base.transcribe(audio)
    assert "region" in events[events.index("decoding") : events.index("decoded")]
    languages = [s.language for s in after.segments]
    runs = [x for i, x in enumerate(languages) if i == 0 or x != languages[i - 1]]
    assert after == before and runs == ["en", "de", "en"]

    def broken(self, x):
        raise VoiceflowError("the VAD model is missing")

    monkeypatch.setattr(vad.SileroStream, "frames", broken)
    with pytest.raises(VoiceflowError, match="VAD model is missing"):
        faster_base.transcribe(audio)


def test_files_overlap_in_order_and_ctrl_c_stops_the_one_under_way(data, tmp_path):
    """`transcribe` decodes the next file while one finishes, printing in the order given;
    Ctrl-C stops a long recording under way at its next chunk, not at its end."""
    import signal
    import subprocess
    import wave

    from tests.conftest import ROOT, VOICEFLOW

    clips = sorted((data / "fleurs").glob("fleurs-*.ogg"))
    gap = np.zeros(3 * 16000, dtype=np.float32)
    speech = np.concatenate([x for c in clips for x in (load_audio(c), gap)])
    long = tmp_path / "long.wav"  # ~6 minutes: a chunk a clip, 25 of them
    with wave.open(str(long), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes())
    order = [clips[0], clips[1], long, clips[2]]
    proc = subprocess.Popen(
        [*VOICEFLOW, "transcribe", *map(str, order), "-o", str(tmp_path), "-f", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored
    )
    assert proc.stdout is not None
    heard: list[str] = []
    for line in iter(proc.stdout.readline, ""):
        if ": language " in line:
            heard.append(line)
            if len(heard) == 2:  # the two clips are out: the long recording is under way
                break
    assert [h.split(": language")[0] for h in heard] == [str(clips[0]), str(clips[1])]
    time.sleep(2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stderr, stderr
    assert time.monotonic() - sent < 15  # its remaining chunks would take over 30 s
    assert not (tmp_path / "long.json").exists()
    assert (tmp_path / f"{clips[1].stem}.json").exists()
