"""Fuzzing, a fixed-seed slice of bench/fuzz.py: mutated recordings through the audio
loader and mutated graph configs through the config loader (and ``voiceflow validate``),
plus one regression test for each crash and hang the fuzzing found."""

from __future__ import annotations

import random
import textwrap
import time

import pytest

from bench.fuzz import BOMB, mutate_audio, mutate_config, run_cases, summarise
from tests.conftest import ROOT, run_cli
from voiceflow.errors import AudioError, ConfigError
from voiceflow.graph import load_graph
from voiceflow.speech.audio import load_audio


def test_two_hundred_mutated_recordings_and_configs_never_crash_or_hang(data):
    start = time.perf_counter()
    cases = run_cases(200, 100, seed=15, timeout=5.0, data=data, n_cli=5)
    failures = [c for c in cases if c.outcome in ("crash", "hang")]
    assert not failures, failures[:5]
    rows = {r["target"]: r for r in summarise(cases) if r["seed"] == "all"}
    assert rows["audio"]["cases"] == 200 and rows["config"]["cases"] == 100
    # both outcomes occur: the mutations reach past the header checks and break things
    assert rows["audio"]["accepted"] > 20 and rows["audio"]["clean_errors"] > 20
    assert rows["config"]["clean_errors"] > 20
    assert {c.seed for c in cases if c.target == "audio"} >= {"wav", "flac", "mp3", "m4a"}
    assert time.perf_counter() - start < 120


def test_mutations_are_deterministic_for_a_seed():
    blob = bytes(range(256)) * 40
    a = [mutate_audio(blob, random.Random(3), [blob]) for _ in range(2)]
    assert a[0] == a[1]
    text = (ROOT / "configs" / "default.yaml").read_text()
    assert mutate_config(text, random.Random(4)) == mutate_config(text, random.Random(4))


def test_an_mp4_whose_codec_is_unknown_is_an_audio_error():
    # found by fuzzing: PyAV gives such a stream no codec context (an AttributeError before)
    path = ROOT / "tests" / "fixtures" / "bad_audio" / "unknown_codec.mp4"
    with pytest.raises(AudioError, match="unknown or damaged codec") as e:
        load_audio(path)
    assert str(path) in str(e.value)


def write(tmp_path, text: str, name: str = "g.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    path = write(tmp_path, BOMB)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        load_graph(path)
    assert time.perf_counter() - start < 2  # it hung (exponential expansion) before


def test_a_few_aliases_are_still_fine(tmp_path):
    path = write(
        tmp_path,
        """\
        common: &p {prefix: "> "}
        nodes:
          intent: {type: intent}
        routes:
          - &out {from: input, to: intent}
          - {from: intent, to: output}
        """,
    )
    assert set(load_graph(path).nodes) == {"intent"}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("plugins: 1\nnodes: {i: {type: intent}}\nroutes: [{from: input, to: i}]\n", "'plugins'"),
        ("plugins: {paths: [3]}\nnodes: {i: {type: intent}}\nroutes: []\n", "'plugins'"),
        ("nodes: {i: {type: {type: intent}}}\nroutes: [{from: input, to: i}]\n", "'type'"),
        ("nodes: {i: {type: intent, params: [1]}}\nroutes: [{from: input, to: i}]\n", "params"),
        ("nodes: {i: {type: intent, params: 2001-12-14}}\nroutes: []\n", "params"),
        ("nodes: {i: {type: intent, params: {null: 1}}}\nroutes: []\n", "params"),
        ("nodes: {1: {type: intent}}\nroutes: [{from: input, to: 1}]\n", "node names"),
        ("nodes: {i: {type: intent, 1: a, x: b}}\nroutes: [{from: input, to: i}]\n", "unknown"),
        ("nodes: {i: {type: intent}}\nroutes: [{from: {a: 1}, to: i}]\n", "node names"),
        ("nodes: {i: {type: intent}}\n? [a]\n: 1\nroutes: []\n", "a key must be a name"),
        ("nodes: {i: {type: intent, timeout: true}}\nroutes: [{from: input, to: i}]\n", "timeout"),
        ("nodes: {i: {type: intent, timeout: .nan}}\nroutes: [{from: input, to: i}]\n", "timeout"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deep"),
    ],
)
def test_configs_of_the_wrong_shape_are_config_errors(tmp_path, text, needle):
    # each of these raised TypeError, AttributeError or RecursionError before
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=needle):
        load_graph(path)


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("nodes: {i: {type: intent}}  # café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_graph(path)
    r = run_cli("validate", str(path), timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {path}: not UTF-8 text")
