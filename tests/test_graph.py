"""Graph loading, validation, routing and the runtime, with fake nodes (no models)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import voiceflow
from tests.conftest import ROOT, run_cli
from voiceflow.errors import ConfigError
from voiceflow.graph import GraphError, load_graph
from voiceflow.messages import Answer, Command, Failure, ImageResult, Message, Transcript
from voiceflow.plugins import load_registry
from voiceflow.runtime import run_graph
from voiceflow.testing import graph_from, run_node, transcript


class Upper(voiceflow.Node):
    type_name = "test.upper"
    accepts = (Transcript,)
    emits = (Answer,)

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        yield Answer(text=msg.text.upper())


class Boom(voiceflow.Node):
    type_name = "test.boom"
    accepts = (Transcript,)
    emits = (Answer,)

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        raise ValueError("exploded on purpose")
        yield  # pragma: no cover


class Hang(voiceflow.Node):
    type_name = "test.hang"
    accepts = (Transcript,)
    emits = (Answer,)

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        await asyncio.sleep(3600)
        yield Answer(text="never")


class Painter(voiceflow.Node):
    type_name = "test.painter"
    accepts = (Command,)
    emits = (ImageResult,)

    class Config(voiceflow.NodeConfig):
        steps: int = 1

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Command)
        yield ImageResult(path=Path("x.png"), prompt=msg.args["prompt"], seed=1)


class FakePlugin:
    @voiceflow.hookimpl
    def register_nodes(self, register):
        for cls in (Upper, Boom, Hang, Painter):
            register(cls)


PLUGINS = [("fake", FakePlugin())]


def write(tmp_path: Path, text: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(GraphError) as e:
        graph_from(path, PLUGINS)
    return [f"{i.line}: {i.message}" for i in e.value.issues]


def test_shipped_configs_validate():
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        r = run_cli("validate", str(config))
        assert r.returncode == 0, r.stderr
        assert "ok" in r.stdout


def test_unknown_node_type_names_line(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          a: {type: test.upper}
          b:
            type: test.nope
        routes:
          - {from: input, to: a}
        """,
    )
    [issue] = issues_of(path)
    assert issue.startswith("4:") and "unknown node type 'test.nope'" in issue
    r = run_cli("validate", str(path))
    assert r.returncode == 1 and f"{path}:4:" in r.stderr


def test_type_mismatch(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          up: {type: test.upper}
          paint: {type: test.painter}
        routes:
          - {from: input, to: up}
          - {from: up, to: paint}
        """,
    )
    [issue] = issues_of(path)
    assert issue.startswith("6:") and "emits ['Answer']" in issue and "accepts ['Command']" in issue


def test_intent_predicate_narrows_types(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          intent: {type: intent}
          paint: {type: test.painter}
        routes:
          - {from: input, to: intent}
          - {from: intent, to: paint, when: {intent: none}}
        """,
    )
    [issue] = issues_of(path)
    assert "no message type can pass" in issue


def test_cycle(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          intent: {type: intent}
          intent2: {type: intent}
        routes:
          - {from: input, to: intent}
          - {from: intent, to: intent2, when: {intent: none}}
          - {from: intent2, to: intent, when: {intent: none}}
        """,
    )
    issues = issues_of(path)
    assert any("cycle: intent -> intent2 -> intent" in i for i in issues), issues


def test_unreachable_node(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          a: {type: test.upper}
          lonely: {type: test.upper}
        routes:
          - {from: input, to: a}
        """,
    )
    [issue] = issues_of(path)
    assert issue.startswith("3:") and "'lonely' is unreachable" in issue


@pytest.mark.parametrize(
    "when, needle",
    [
        ("{colour: red}", "unknown predicate 'colour'"),
        ("{text_matches: '(unclosed'}", "not a valid regular expression"),
        ("{min_language_prob: 1.5}", "from 0 to 1"),
        ("{language_in: []}", "non-empty list"),
    ],
)
def test_bad_predicates(tmp_path, when, needle):
    path = write(
        tmp_path,
        f"""\
        nodes:
          a: {{type: test.upper}}
        routes:
          - {{from: input, to: a, when: {when}}}
        """,
    )
    [issue] = issues_of(path)
    assert issue.startswith("4:") and needle in issue


def test_bad_params_and_unknown_route_node_and_missing_env(tmp_path, monkeypatch):
    monkeypatch.delenv("VF_SECRET", raising=False)
    path = write(
        tmp_path,
        """\
        nodes:
          paint:
            type: test.painter
            params:
              steps: many
              colour: blue
          a: {type: test.upper, params: {}}
        routes:
          - {from: input, to: a}
          - {from: a, to: ghost}
          - {from: input, to: paint, when: {text_matches: "${VF_SECRET}"}}
        """,
    )
    issues = issues_of(path)
    assert any(i.startswith("5:") and "params.steps" in i for i in issues), issues
    assert any(i.startswith("6:") and "params.colour" in i for i in issues), issues
    assert any("no node named 'ghost'" in i for i in issues), issues
    assert any("VF_SECRET is not set" in i for i in issues), issues


def test_env_references_are_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("VF_PATTERN", "lighthouse")
    path = write(
        tmp_path,
        """\
        nodes:
          a: {type: test.upper}
        routes:
          - {from: input, to: a, when: {text_matches: "${VF_PATTERN}"}}
          - {from: a, to: output}
        """,
    )
    results = run_graph(graph_from(path, PLUGINS), [transcript("a lighthouse"), transcript("x")])
    assert [r.message for r in results] == [Answer(text="A LIGHTHOUSE")]


def test_toml_config(tmp_path):
    path = write(
        tmp_path,
        """\
        version = 1
        [nodes.a]
        type = "test.upper"
        [[routes]]
        from = "input"
        to = "a"
        [[routes]]
        from = "a"
        to = "output"
        """,
        name="g.toml",
    )
    results = run_graph(graph_from(path, PLUGINS), [transcript("hi")])
    assert results[0].message == Answer(text="HI")


def test_fault_isolation_raise_and_timeout(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          good: {type: test.upper}
          boom: {type: test.boom}
          hang: {type: test.hang, timeout: 0.5}
        routes:
          - {from: input, to: [good, boom, hang]}
          - {from: [good, boom, hang], to: output}
        """,
    )
    results = run_graph(graph_from(path, PLUGINS), [transcript("still here")])
    by_node = {r.node: r.message for r in results}
    assert by_node["good"] == Answer(text="STILL HERE")
    assert isinstance(by_node["boom"], Failure) and "exploded on purpose" in by_node["boom"].error
    assert isinstance(by_node["hang"], Failure) and "timed out after 0.5 s" in by_node["hang"].error


def test_intent_routing_fan_out_and_default_route(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          intent: {type: intent}
          paint: {type: test.painter}
          echo: {type: test.upper}
        routes:
          - {from: input, to: intent}
          - {from: intent, to: paint, when: {intent: paint}}
          - {from: intent, to: echo, when: {intent: none}}
          - {from: intent, to: output, when: {intent: [paint, question]}}
          - {from: [paint, echo], to: output}
        """,
    )
    results = run_graph(
        graph_from(path, PLUGINS),
        [
            transcript("Generate a painting of a lighthouse at dawn."),
            transcript("Enciende la luz del salón.", "es", translation="Turn on the light."),
            transcript(
                "Qué dijo el profesor sobre la lluvia?",
                "es",
                translation="What did he say?",
                probability=0.4,
            ),
        ],
    )
    messages = [r.message for r in results]
    images = [m for m in messages if isinstance(m, ImageResult)]
    assert [i.prompt for i in images] == ["a lighthouse at dawn"]
    assert Answer(text="ENCIENDE LA LUZ DEL SALÓN.") in messages
    commands = [m for m in messages if isinstance(m, Command)]
    assert sorted(c.intent for c in commands) == ["paint", "question"]


def test_language_predicates(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          a: {type: test.upper}
        routes:
          - {from: input, to: a, when: {language_in: [de, es], min_language_prob: 0.8}}
          - {from: a, to: output}
        """,
    )
    results = run_graph(
        graph_from(path, PLUGINS),
        [transcript("hallo", "de", 0.95), transcript("hola", "es", 0.5), transcript("hi", "en")],
    )
    assert [r.message.text for r in results] == ["HALLO"]


def test_folder_plugins_and_restriction(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        f"""\
        plugins: {{paths: ["{ROOT / "tests/fixtures/plugins"}"]}}
        nodes:
          e: {{type: local.echo}}
        routes:
          - {{from: input, to: e}}
          - {{from: e, to: output}}
        """,
    )
    results = run_graph(load_graph(path), [transcript("hi")])
    assert results[0].message == Answer(text="echo: hi", language="en")
    monkeypatch.setenv("VOICEFLOW_PLUGINS", "")
    with pytest.raises(GraphError, match=r"unknown node type 'local\.echo'"):
        load_graph(path)


def test_two_plugins_claiming_one_name():
    with pytest.raises(ConfigError) as e:
        load_registry([ROOT / "tests/fixtures/plugins_clash"])
    assert "'intent' is claimed by two plugins: 'voiceflow' and 'intent_again'" in str(e.value)


def test_run_node_helper():
    out = run_node(Upper, transcript("abc"))
    assert out == [Answer(text="ABC")]


def test_cli_run_text_json_and_exit_codes(tmp_path):
    r = run_cli(
        "run", "configs/default.yaml", "--json", "--text", "Generate a painting of a red boat"
    )
    assert r.returncode == 0, r.stderr
    assert '"intent": "paint"' in r.stdout and '"prompt": "a red boat"' in r.stdout
    bad = write(tmp_path, "nodes: [1]\nroutes: []\n")
    r = run_cli("run", str(bad), "--text", "x")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "'nodes'" in r.stderr
    r = run_cli("plugins")
    assert r.returncode == 0 and "whisper" in r.stdout and "intent" in r.stdout
