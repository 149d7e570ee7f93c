"""Live listening: the capture path fed by a stand-in stream, and once through PortAudio."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, normalize
from voiceflow.graph import load_graph
from voiceflow.live import (
    Capture,
    DictationWriter,
    Listener,
    MicrophoneError,
    Segmenter,
    speech_settings,
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
def test_tentative_utterance_holds_the_final_samples(data):
    command = load_audio(data / "commands" / "living_room_light_en.wav")
    seg = Segmenter()
    out = seg.feed(np.concatenate([_gap(1), command, _gap(2)])) + seg.flush()
    finals = [u for u in out if u.final]
    assert len(finals) == 1
    tentatives = [u for u in out if not u.final and u.start == finals[0].start]
    assert tentatives, "no tentative utterance was offered before the final one"
    assert np.array_equal(tentatives[-1].samples, finals[0].samples)


def _listener(audio, tmp_path, speed=None, wake=None, dictate="d.txt"):
    graph = load_graph(ROOT / "configs/default.yaml")
    model_args, config = speech_settings(graph)
    from voiceflow.speech.transcriber import SpeechModel

    events = []
    writer = DictationWriter(tmp_path / dictate)
    listener = Listener(
        graph,
        _replay(audio, speed),
        Segmenter(),
        SpeechModel(**model_args),
        config,
        wake,
        writer,
        lambda kind, d: events.append((kind, d)),
    )
    return listener, events


@pytest.mark.slow
def test_commands_through_the_capture_path(data, tmp_path, espeak):
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
    transcripts = [d[1] for k, d in events if k == "transcript"]
    assert [t.language for t in transcripts] == ["en", "de", "es"]
    assert "lighthouse" in normalize(transcripts[0].text).replace(" ", "")
    assert "wohnzimmerlicht" in normalize(transcripts[1].text)
    results = [d.message for k, d in events if k == "result"]
    commands = [m for m in results if isinstance(m, Command)]
    assert [c.intent for c in commands] == ["paint"]
    assert "lighthouse" in commands[0].args["prompt"].replace(" ", "")
    assert stats.utterances == 3 and stats.dropped_seconds == 0
    # segment times are on the session's timeline, where the speech was
    assert transcripts[1].segments[0].start > len(paint) / 16000
    lines = (tmp_path / "d.txt").read_text().splitlines()
    assert len(lines) == 3 and "lighthouse" in lines[0].lower().replace(" ", "")


@pytest.mark.slow
def test_wake_phrase_gates_actions_not_dictation(tmp_path, espeak):
    woken = load_audio(espeak("Hey computer, generate a picture of a big red house.", "wake_yes"))
    not_woken = load_audio(espeak("Generate a picture of a green car.", "wake_no"))
    audio = np.concatenate([_gap(1), woken, _gap(2), not_woken, _gap(2)])
    listener, events = _listener(audio, tmp_path, wake="hey computer", dictate="d.json")
    asyncio.run(listener.run())
    commands = [d.message for k, d in events if k == "result" and isinstance(d.message, Command)]
    assert len(commands) == 1 and "house" in commands[0].args["prompt"]
    dictated = json.loads((tmp_path / "d.json").read_text())["segments"]
    assert len(dictated) == 2 and "car" in dictated[1]["text"].lower()


@pytest.mark.slow
def test_push_to_talk_ignores_audio_while_released(tmp_path, espeak):
    speech = load_audio(espeak("Generate a painting of a lighthouse at dawn.", "ptt"))
    listener, events = _listener(np.concatenate([_gap(1), speech, _gap(2)]), tmp_path)
    listener.set_talking(False)
    stats = asyncio.run(listener.run())
    assert stats.utterances == 0 and not [e for e in events if e[0] == "transcript"]


@pytest.mark.slow
def test_partial_text_while_speaking_then_the_final_transcript(data, tmp_path):
    speech = load_audio(data / "fleurs" / "fleurs-en-000.ogg")
    listener, events = _listener(np.concatenate([_gap(1), speech, _gap(2)]), tmp_path, speed=1.0)
    stats = asyncio.run(listener.run())
    finals = [d for k, d in events if k == "transcript"]
    heard = set(normalize(" ".join(t.text for _, t in finals)).split())
    assert stats.partials >= 2
    shown = 0
    for i, (kind, payload) in enumerate(events):
        if kind != "partial":
            continue
        shown += 1
        start, partial, _ = payload
        # each partial belongs to an utterance whose final transcript comes after it
        assert start in [d[0].start for k, d in events[i:] if k == "transcript"]
        words = normalize(partial.text).split()
        assert words and len(set(words) & heard) >= len(words) // 2, partial.text
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


def test_resampling_from_device_rate():
    capture = Capture()
    capture.rate = 48000
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
    capture.blocks.put(tone)
    out = capture.read()
    assert out is not None and abs(len(out) - 16000) < 400


def test_dictation_files_are_valid_after_each_utterance(tmp_path):
    t = Transcript("Hello there.", "en", 0.99, 1.0)
    for name in ("a.srt", "a.vtt", "a.json"):
        writer = DictationWriter(tmp_path / name)
        writer.write(t, 61.0, 62.5)
        writer.write(t, 63.0, 64.0)
    assert (tmp_path / "a.srt").read_text().startswith("1\n00:01:01,000 --> 00:01:02,500\nHello")
    assert "2\n00:01:03,000" in (tmp_path / "a.srt").read_text()
    assert (tmp_path / "a.vtt").read_text().startswith("WEBVTT\n\n01:01.000 --> 01:02.500\n")
    assert len(json.loads((tmp_path / "a.json").read_text())["segments"]) == 2


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


@pytest.fixture()
def pulse(tmp_path):
    """A private PulseAudio daemon with a null sink; its monitor is the 'microphone'."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed (scripts/setup.sh installs it)")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "rt"), "HOME": str(tmp_path)}
    (tmp_path / "rt").mkdir()
    subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-null-sink sink_name=vf_sink",
            "--load=module-native-protocol-unix",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    deadline = time.time() + 15
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        assert time.time() < deadline, "pulseaudio did not start"
        time.sleep(0.2)
    yield {**env, "PULSE_SOURCE": "vf_sink.monitor"}
    subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)


@pytest.mark.slow
def test_real_portaudio_capture_through_pulseaudio(pulse, data, tmp_path):
    wav = tmp_path / "de.wav"
    shutil.copy(data / "commands" / "living_room_light_de.wav", wav)
    en = tmp_path / "en.wav"
    shutil.copy(data / "commands" / "living_room_light_en.wav", en)
    out = tmp_path / "session.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceflow", "listen", "--device", "pulse", "--dictate", str(out)],
        cwd=ROOT,
        env=pulse,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while "loading the speech model" not in (proc.stderr.readline() or ""):
            assert time.time() < deadline and proc.poll() is None, "listen did not start"
        time.sleep(8)  # the graph starts after the model loads
        for clip in (en, wav):
            subprocess.run(["paplay", "--device=vf_sink", str(clip)], env=pulse, check=True)
            time.sleep(1.5)
        time.sleep(5)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout
    lines = out.read_text().splitlines()
    assert [normalize(x) for x in lines] == [
        "turn on the living room light",
        "schalte das wohnzimmerlicht ein",
    ], stdout
    assert "(en " in stdout and "(de " in stdout


@pytest.mark.slow
def test_dictation_session_goes_into_the_archive(tmp_path):
    import argparse

    from voiceflow.cli import _ingest_dictation
    from voiceflow.live import Utterance
    from voiceflow.messages import Segment
    from voiceflow_archive import Archive

    spoken = []
    for i, text in enumerate(["The exam is on Friday.", "Bring a calculator."]):
        seg = Segment(0, 10.0 * i, 10.0 * i + 2, text, "en")
        t = Transcript(text, "en", 0.99, 2.0, segments=(seg,), source="microphone")
        spoken.append((Utterance(np.zeros(10), 10.0 * i, 10.0 * i + 2, 0.0), t))
    args = argparse.Namespace(dictate=str(tmp_path / "class.txt"), archive=str(tmp_path / "a"))
    _ingest_dictation(args, spoken)
    archive = Archive(tmp_path / "a")
    [occurrence] = archive.occurrences("calculator")[str(tmp_path / "class.txt")]
    assert occurrence.start == 10.0 and occurrence.end == 12.0
