"""Live listening: the capture path fed by a stand-in stream, and once through PortAudio."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, listen_through_pulse, normalize, run_cli
from voiceflow.errors import ConfigError, VoiceflowError
from voiceflow.graph import load_graph
from voiceflow.live import (
    Acted,
    Capture,
    DictationWriter,
    Heard,
    Listener,
    MicrophoneError,
    Overflowed,
    PartialText,
    Problem,
    Segmenter,
    SegmenterOptions,
    strip_wake_phrase,
)
from voiceflow.messages import Command, Transcript
from voiceflow.speech.audio import load_audio
from voiceflow.testing import ReplayStream


def _replay(audio: np.ndarray, speed: float | None = None, rate: int = 16000) -> Capture:
    return Capture(
        queue_seconds=600,
        stream_factory=lambda **kw: ReplayStream(audio, rate, kw["callback"], speed=speed),
    )


def _gap(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def test_strip_wake_phrase():
    assert strip_wake_phrase("Hey, Voiceflow! Paint a cat.", "hey voiceflow") == "Paint a cat."
    assert strip_wake_phrase("Paint a cat.", "hey voiceflow") is None
    assert strip_wake_phrase("Hey there", "hey voiceflow") is None
    assert strip_wake_phrase("Hey voice flow, what time is it?", "hey voiceflow") == (
        "what time is it?"
    )
    assert strip_wake_phrase("Hey, Voiceflo. Stop.", "hey voiceflow") == "Stop."


@pytest.mark.slow
def test_segmenter_cuts_speech_and_ignores_silence_and_noise(data):
    jfk = load_audio(data / "jfk.flac")
    seg = Segmenter()
    utterances = []
    audio = np.concatenate([_gap(1), jfk, _gap(1)])
    for i in range(0, len(audio), 1000):  # blocks of an odd size, as devices deliver
        utterances += seg.feed(audio[i : i + 1000])
    utterances = [u for u in utterances + seg.flush() if u.final]
    assert 1 <= len(utterances) <= 6
    assert utterances[0].start == pytest.approx(1.0, abs=0.5)
    assert utterances[-1].end == pytest.approx(1 + len(jfk) / 16000, abs=0.6)
    assert all(b.start >= a.end for a, b in itertools.pairwise(utterances))

    quiet = Segmenter()
    noise = np.random.default_rng(0).normal(0, 0.05, 16000 * 15).astype(np.float32)
    assert quiet.feed(np.concatenate([_gap(15), noise])) + quiet.flush() == []


@pytest.mark.slow
def _scheduler():
    """A listener whose model jobs are recorded, not run: the scheduler's rules alone."""
    from types import SimpleNamespace

    from voiceflow.live import listener as L

    loop = asyncio.new_event_loop()
    lis = Listener(load_graph(ROOT / "configs/default.yaml"), _replay(_gap(1)), Segmenter())
    lis.speech = SimpleNamespace(recognise=None, translate=None)
    started = []

    def run(kind, u, fn, *args, whole=True, **kwargs):
        started.append(kind)
        lis._job = L._Job(kind, u, loop.create_future(), whole)

    lis._run = run

    def done():  # the job in progress finishes
        future = lis._job.future
        future.set_result(Transcript("x", "en", 1.0, 1.0))
        lis._handle(L._Done(future))

    return lis, started, done, L


def _said(seconds: float, start: float = 0.0):
    from voiceflow.live.segmenter import Utterance

    return Utterance(_gap(seconds) + 0.1, start, start + seconds, 0.0)


def test_a_pause_heard_while_the_model_is_busy_is_transcribed_when_it_is_free():
    lis, started, done, L = _scheduler()
    lis._handle(L._Tick(True, True, _said(1.0)))  # a partial of the speech so far
    lis._handle(L._Tentative(_said(2.0)))  # speech pauses while the partial runs
    lis._handle(L._Tick(True, False, None))
    assert started == ["partial"]
    done()
    assert started == ["partial", "speculative"]  # not left for the final
    lis._handle(L._Final(_said(2.0)))  # the pause was the end: that job is the final
    assert lis._job is not None and lis._job.kind == "final"
    # speech that goes on after a pause is not transcribed for it
    lis, started, done, L = _scheduler()
    lis._handle(L._Tick(True, True, _said(1.0)))
    lis._handle(L._Tentative(_said(2.0)))
    lis._handle(L._Tick(True, True, None))  # speaking again
    done()
    assert started == ["partial"]


@pytest.mark.parametrize("early_ms, silence_ms", [(200, 500), (320, 700), (96, 300)])
def test_tentative_utterance_holds_the_final_samples(data, early_ms, silence_ms):
    """Whatever the settings, a tentative utterance and its final one hold the same audio,
    so the speculative transcription is never wasted."""
    command = load_audio(data / "commands" / "living_room_light_en.wav")
    seg = Segmenter(SegmenterOptions(early_ms=early_ms, silence_ms=silence_ms))
    out = seg.feed(np.concatenate([_gap(1), command, _gap(2)])) + seg.flush()
    finals = [u for u in out if u.final]
    assert len(finals) == 1
    tentatives = [u for u in out if not u.final and u.start == finals[0].start]
    assert tentatives, "no tentative utterance was offered before the final one"
    assert tentatives[-1].same_audio(finals[0])
    assert np.array_equal(tentatives[-1].samples, finals[0].samples)
    kept = len(finals[0].samples) / 16000 - (finals[0].end - finals[0].start)
    assert kept == pytest.approx(early_ms // 32 * 0.032, abs=1e-6)  # the closing silence


def test_early_ms_must_fit_inside_the_closing_silence():
    with pytest.raises(ConfigError, match="early_ms"):
        SegmenterOptions(early_ms=500, silence_ms=500)
    r = run_cli("listen", "--early_ms", "800", "--silence_ms", "500", timeout=120)
    assert r.returncode == 1 and "early_ms (800)" in r.stderr and "Traceback" not in r.stderr


def _listener(audio, tmp_path, speed=None, wake=None, dictate="d.txt", **kwargs):
    graph = load_graph(ROOT / "configs/default.yaml")
    events = []
    listener = Listener(
        graph,
        _replay(audio, speed),
        Segmenter(),
        events.append,
        wake=wake,
        dictation=DictationWriter(tmp_path / dictate),
        **kwargs,
    )
    return listener, events


def _heard(events) -> list[Transcript]:
    return [e.transcript for e in events if isinstance(e, Heard)]


def _commands(events) -> list[Command]:
    return [
        e.result.message
        for e in events
        if isinstance(e, Acted) and isinstance(e.result.message, Command)
    ]


@pytest.mark.slow
def test_commands_through_the_capture_path_with_one_model(data, tmp_path, espeak, monkeypatch):
    from voiceflow.speech.transcriber import SpeechModel

    loads = []
    real_init = SpeechModel.__init__

    def counting_init(self, *args, **kwargs):
        loads.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(SpeechModel, "_shared", {})
    monkeypatch.setattr(SpeechModel, "__init__", counting_init)
    paint = load_audio(espeak("Generate a painting of a lighthouse at dawn.", "live_paint"))
    de = load_audio(data / "commands" / "living_room_light_de.wav")
    es = load_audio(data / "commands" / "living_room_light_es.wav")
    audio = np.concatenate(
        [
            _gap(1),
            paint,
            _gap(2),
            de,
            _gap(2),
            es,
            _gap(2),
            _gap(20),  # 20 s of silence, then 10 s of noise: no utterance
            np.random.default_rng(1).normal(0, 0.03, 160000).astype(np.float32),
            _gap(1),
        ]
    )
    listener, events = _listener(audio, tmp_path)
    stats = asyncio.run(listener.run())
    transcripts = _heard(events)
    assert [t.language for t in transcripts] == ["en", "de", "es"]
    assert "lighthouse" in normalize(transcripts[0].text).replace(" ", "")
    assert "wohnzimmerlicht" in normalize(transcripts[1].text)
    commands = _commands(events)
    assert [c.intent for c in commands] == ["paint"]
    assert "lighthouse" in commands[0].args["prompt"].replace(" ", "")
    assert stats.utterances == 3 and stats.dropped_seconds == 0 and stats.failed == 0
    # segment times are on the session's timeline, where the speech was
    assert transcripts[1].segments[0].start > len(paint) / 16000
    lines = (tmp_path / "d.txt").read_text().splitlines()
    assert len(lines) == 3 and "lighthouse" in lines[0].lower().replace(" ", "")
    # the graph's speech node did the transcribing: Whisper was loaded once
    assert len(loads) == 1 and listener.speech is not None and listener.speech.name == "speech"
    # one utterance at a time: one decoder on every thread, not two with a thread each
    assert listener.speech.config.workers == 1 and listener.speech.model.engine.parallel == 1
    # the default graph archives what matches no intent, so foreign speech got its English,
    # after its transcript was out (the English is for the graph, not for the speaker)
    delivered = [h.transcript for h in listener.delivered]
    assert [t.text for t in delivered] == [t.text for t in transcripts]
    assert transcripts[1].translation is None and delivered[1].translation
    assert delivered[2].translation and delivered[0].translation is None
    assert delivered[2].translation != delivered[2].text
    # the session keeps what was said, not the audio: hours of listening stay small
    assert all(h.utterance.samples.size == 0 for h in listener.delivered)
    assert [h.utterance.end for h in listener.delivered] == [
        e.utterance.end for e in events if isinstance(e, Heard)
    ]


@pytest.mark.slow
def test_an_utterance_that_fails_is_reported_and_listening_goes_on(data, tmp_path, monkeypatch):
    from voiceflow.builtins import WhisperNode

    real = WhisperNode.recognise
    calls = []

    def flaky(self, samples, *args, **kwargs):
        calls.append(kwargs.get("quick"))
        if len(calls) == 1:
            raise RuntimeError("decoder fell over")
        return real(self, samples, *args, **kwargs)

    monkeypatch.setattr(WhisperNode, "recognise", flaky)
    en = load_audio(data / "commands" / "living_room_light_en.wav")
    audio = np.concatenate([_gap(1), en, _gap(2), en, _gap(2)])
    listener, events = _listener(audio, tmp_path, partial_every=0)
    stats = asyncio.run(listener.run())
    problems = [e.message for e in events if isinstance(e, Problem)]
    assert len(problems) == 1 and "decoder fell over" in problems[0]
    assert "listening goes on" in problems[0]
    assert stats.failed == 1 and stats.utterances == 1
    assert [normalize(t.text) for t in _heard(events)] == ["turn on the living room light"]


@pytest.mark.slow
def test_wake_phrase_gates_actions_not_dictation(tmp_path, espeak):
    woken = load_audio(espeak("Hey computer, generate a picture of a big red house.", "wake_yes"))
    not_woken = load_audio(espeak("Generate a picture of a green car.", "wake_no"))
    audio = np.concatenate([_gap(1), woken, _gap(2), not_woken, _gap(2)])
    listener, events = _listener(audio, tmp_path, wake="hey computer", dictate="d.json")
    asyncio.run(listener.run())
    commands = _commands(events)
    assert len(commands) == 1 and "house" in commands[0].args["prompt"]
    dictated = json.loads((tmp_path / "d.json").read_text())["segments"]
    assert len(dictated) == 2 and "car" in dictated[1]["text"].lower()


@pytest.mark.slow
def test_push_to_talk_ignores_audio_while_released(tmp_path, espeak):
    speech = load_audio(espeak("Generate a painting of a lighthouse at dawn.", "ptt"))
    listener, events = _listener(np.concatenate([_gap(1), speech, _gap(2)]), tmp_path)
    listener.set_talking(False)
    stats = asyncio.run(listener.run())
    assert stats.utterances == 0 and not _heard(events)


@pytest.mark.slow
def test_partial_text_while_speaking_then_the_final_transcript(data, tmp_path):
    speech = load_audio(data / "fleurs" / "fleurs-en-000.ogg")
    listener, events = _listener(np.concatenate([_gap(1), speech, _gap(2)]), tmp_path, speed=1.0)
    stats = asyncio.run(listener.run())
    finals = [e for e in events if isinstance(e, Heard)]
    heard = set(normalize(" ".join(h.transcript.text for h in finals)).split())
    assert stats.partials >= 2
    shown = 0
    for i, event in enumerate(events):
        if not isinstance(event, PartialText):
            continue
        shown += 1
        # each partial belongs to an utterance whose final transcript comes after it
        assert event.start in [e.utterance.start for e in events[i:] if isinstance(e, Heard)]
        words = normalize(event.transcript.text).split()
        assert words and len(set(words) & heard) >= len(words) // 2, event.transcript.text
    assert shown == stats.partials
    # partial text is for the screen: dictation and the graph get finals only
    assert len((tmp_path / "d.txt").read_text().splitlines()) == len(finals) == stats.utterances


def test_full_capture_queue_is_counted_not_hidden():
    capture = Capture(queue_seconds=0.1)
    block = np.zeros((512, 1), dtype=np.float32)
    for _ in range(20):
        capture.callback(block, 512, None, None)
    assert capture.blocks.qsize() == 3
    assert capture.dropped_seconds == pytest.approx(17 * 512 / 16000)


def test_portaudio_input_overflows_are_counted_and_reported():
    import sounddevice as sd

    capture = Capture()
    status = sd.CallbackFlags()
    block = np.zeros((512, 1), dtype=np.float32)
    capture.callback(block, 512, None, status)
    status.input_overflow = True
    capture.callback(block, 512, None, status)
    capture.callback(block, 512, None, status)
    assert capture.overflows == 2 and capture.blocks.qsize() == 3

    events = []
    listener = Listener(None, capture, Segmenter(), events.append)  # type: ignore[arg-type]
    from voiceflow.live.listener import _Tick

    listener._handle(_Tick(False, False, None))
    listener._handle(_Tick(False, False, None))  # reported once per new overflow, not per tick
    assert [e for e in events if isinstance(e, Overflowed)] == [Overflowed(2)]


def test_resampling_from_device_rate():
    capture = Capture()
    capture.rate = 48000
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    capture.blocks.put(tone)
    out = capture.read()
    assert out is not None and abs(len(out) - 16000) < 400


def test_dictation_files_are_valid_after_each_utterance(tmp_path):
    t = Transcript("Hello there.", "en", 0.99, 1.0)
    for name in ("a.srt", "a.vtt", "a.json", "a.tsv"):
        writer = DictationWriter(tmp_path / name)
        writer.write(t, 61.0, 62.5)
        writer.write(t, 63.0, 64.0)
    assert (tmp_path / "a.srt").read_text().startswith("1\n00:01:01,000 --> 00:01:02,500\nHello")
    assert "2\n00:01:03,000" in (tmp_path / "a.srt").read_text()
    assert (tmp_path / "a.vtt").read_text().startswith("WEBVTT\n\n01:01.000 --> 01:02.500\n")
    assert len(json.loads((tmp_path / "a.json").read_text())["segments"]) == 2
    assert (tmp_path / "a.tsv").read_text().splitlines() == [
        "start\tend\ttext",
        "61000\t62500\tHello there.",
        "63000\t64000\tHello there.",
    ]


@pytest.mark.parametrize("name", ["class.txt", "class.srt", "class.vtt", "class.json", "class.tsv"])
def test_dictation_continues_an_existing_file(tmp_path, name):
    first = Transcript("First lesson.", "en", 0.99, 1.0)
    second = Transcript("Second lesson.", "en", 0.99, 1.0)
    path = tmp_path / name
    writer = DictationWriter(path)
    writer.write(first, 10.0, 12.4)
    again = DictationWriter(path)  # a new session onto the same file
    assert again.offset == (14.0 if not name.endswith(".txt") else 0.0)
    again.write(second, 1.0, 2.0)
    text = path.read_text()
    assert "First lesson." in text and "Second lesson." in text
    if name.endswith(".srt"):
        assert "2\n00:00:15,000 --> 00:00:16,000\nSecond lesson." in text
    if name.endswith(".json"):
        items = json.loads(text)["segments"]
        assert [i["start"] for i in items] == [10.0, 15.0]
    fresh = DictationWriter(path, overwrite=True)
    fresh.write(second, 1.0, 2.0)
    assert "First lesson." not in path.read_text()


def test_dictation_refuses_a_file_it_cannot_continue(tmp_path):
    for name, content in [("notes.json", "not json"), ("talk.vtt", "hello"), ("x.srt", "junk")]:
        (tmp_path / name).write_text(content)
        with pytest.raises(VoiceflowError, match="--overwrite"):
            DictationWriter(tmp_path / name)
        assert (tmp_path / name).read_text() == content  # untouched


def test_missing_portaudio_and_device_errors(monkeypatch):
    import builtins

    from voiceflow.live import import_sounddevice

    real_import = builtins.__import__

    def no_portaudio(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(MicrophoneError, match="apt-get install libportaudio2"):
        import_sounddevice()


def test_cli_listen_without_a_device_fails_with_one_line(tmp_path):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    r = subprocess.run(
        [sys.executable, "-m", "voiceflow", "listen", "--device", "nonexistent-mic"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: no input device 'nonexistent-mic'")


@pytest.mark.slow
def test_real_portaudio_capture_through_pulseaudio(pulse, data, tmp_path):
    clips = [data / "commands" / "living_room_light_en.wav"]
    clips.append(data / "commands" / "living_room_light_de.wav")
    out = tmp_path / "session.txt"
    out.write_text("an earlier class\n")
    proc, stdout = listen_through_pulse(pulse, clips, "--dictate", str(out))
    assert proc.returncode == 0, stdout
    lines = out.read_text().splitlines()
    assert [normalize(x) for x in lines] == [
        "an earlier class",  # continued, not truncated
        "turn on the living room light",
        "schalte das wohnzimmerlicht ein",
    ], stdout
    assert "(en " in stdout and "(de " in stdout
