"""Spoken commands through `voiceflow run configs/default.yaml`, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import wave

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def results(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_spoken_commands_route_to_intents(espeak, data, tmp_path):
    paint = espeak("Generate a painting of a lighthouse at dawn.", "paint")
    ask = espeak("What did the lecturer say about neural networks?", "ask")
    silence = tmp_path / "silence.wav"
    noise = tmp_path / "noise.wav"
    for path, samples in (
        (silence, np.zeros(16000 * 5)),
        (noise, np.random.default_rng(0).normal(0, 0.1, 16000 * 5)),
    ):
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    commands = sorted((data / "commands").glob("*.wav"))
    r = run_cli(
        "run",
        "configs/default.yaml",
        "--json",
        str(paint),
        str(ask),
        str(silence),
        str(noise),
        *map(str, commands),
    )
    assert r.returncode == 0, r.stderr
    everything = results(r.stdout)
    out = [o for o in everything if o["node"] == "intent"]
    by_source = {
        o["transcript"]["source"] if o["type"] == "Command" else o["source"]: o for o in out
    }
    assert len(out) == 5  # silence and noise route nowhere

    p = by_source[str(paint)]
    assert p["intent"] == "paint" and "lighthouse" in p["args"]["prompt"]
    q = by_source[str(ask)]
    assert q["intent"] == "question" and "neural networks" in q["args"]["question"]
    answers = [o for o in everything if o["type"] == "Answer"]
    assert len(answers) == 1 and answers[0]["node"] == "ask"
    for cmd in commands:
        lang = cmd.stem.rsplit("_", 1)[1]
        t = by_source[str(cmd)]
        assert t["type"] == "Transcript" and t["language"] == lang  # neither intent


def test_custom_plugin_installs_and_runs_from_its_entry_point(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "examples/custom_plugin"),
        ],
        check=True,
    )
    env = {"PYTHONPATH": str(target)}
    r = run_cli("plugins", env=env)
    assert r.returncode == 0 and "shout" in r.stdout and "example.shout" in r.stdout
    r = run_cli("run", "examples/custom_plugin/shout.yaml", "--text", "hello there", env=env)
    assert r.returncode == 0, r.stderr
    assert "HELLO THERE!!" in r.stdout
    r = run_cli("shout", "hello there", "--suffix", "?!", env=env)
    assert r.returncode == 0 and r.stdout == "HELLO THERE?!\n", r.stderr
    r = run_cli("shout", " ", env=env)
    assert r.returncode == 1 and r.stderr == "error: nothing to shout: give some text\n"
    r = run_cli("plugins", env={**env, "VOICEFLOW_PLUGINS": "image"})
    assert "example.shout" not in r.stdout
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "examples/custom_plugin/tests"),
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout


def test_the_demo_answers_its_spoken_question_from_its_spoken_lecture(tmp_path):
    """`make demo`'s steps: samples, the lecture ingested, the graph run on the commands."""
    subprocess.run(["bash", "scripts/make_samples.sh", str(tmp_path)], cwd=ROOT, check=True)
    archive = str(tmp_path / "archive")
    r = run_cli("ingest", str(tmp_path / "lectures"), "--archive", archive)
    assert r.returncode == 0, r.stderr
    question = tmp_path / "audio" / "question_lecture.wav"
    r = run_cli("run", "default", "--json", str(question), env={"VOICEFLOW_ARCHIVE": archive})
    assert r.returncode == 0, r.stderr
    (answer,) = [o for o in results(r.stdout) if o["type"] == "Answer"]
    assert "Frank Rosenblatt" in answer["text"]
    (citation,) = answer["citations"]
    assert citation["source"].endswith("neural_networks.wav")
    assert "Rosenblatt in 1958" in citation["text"]
