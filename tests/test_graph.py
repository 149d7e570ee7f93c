"""Graph loading, validation, routing and the runtime, with fake nodes (no models)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import voiceflow
from tests.conftest import ROOT, run_cli
from voiceflow.errors import ConfigError
from voiceflow.graph import GraphError, load_graph
from voiceflow.messages import (
    Answer,
    AudioClip,
    Command,
    Failure,
    ImageResult,
    Message,
    Transcript,
)
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


class Heavy(voiceflow.Node):
    """A node with a 'model' that counts its loads, and may refuse to load."""

    type_name = "test.heavy"
    accepts = (Transcript,)
    emits = (Answer,)
    loads = 0

    class Config(voiceflow.NodeConfig):
        broken: bool = False

    async def load(self, ctx: voiceflow.Context) -> None:
        type(self).loads += 1
        await asyncio.sleep(0.05)  # concurrent first messages must share one load
        if self.config.broken:
            raise voiceflow.VoiceflowError("model file missing")

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        yield Answer(text=f"heavy: {msg.text}")


class HeavyPlugin:
    @voiceflow.hookimpl
    def register_nodes(self, register):
        register(Heavy)
        register(Upper)


def test_models_load_when_first_needed_and_once(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          heavy: {type: test.heavy}
          light: {type: test.upper}
        routes:
          - {from: input, to: light, when: {language_in: [en]}}
          - {from: input, to: heavy, when: {language_in: [de]}}
          - {from: [light, heavy], to: output}
        """,
    )
    graph = graph_from(path, [("heavy", HeavyPlugin())])
    Heavy.loads = 0
    results = run_graph(graph, [transcript("hello")])
    assert [r.message.text for r in results] == ["HELLO"] and Heavy.loads == 0
    results = run_graph(graph, [transcript("hallo", "de"), transcript("tschüss", "de")])
    assert sorted(r.message.text for r in results) == ["heavy: hallo", "heavy: tschüss"]
    assert Heavy.loads == 1


def test_a_node_that_cannot_load_fails_each_message_not_the_graph(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          heavy: {type: test.heavy, params: {broken: true}}
          light: {type: test.upper}
        routes:
          - {from: input, to: [heavy, light]}
          - {from: [light, heavy], to: output}
        """,
    )
    Heavy.loads = 0
    results = run_graph(graph_from(path, [("heavy", HeavyPlugin())]), [transcript("a")] * 2)
    failures = [r.message for r in results if isinstance(r.message, Failure)]
    assert len(failures) == 2 and all("model file missing" in f.error for f in failures)
    assert Answer(text="A") in [r.message for r in results]
    assert Heavy.loads == 1  # a missing model stays missing: no second attempt


class Archivist(voiceflow.Node):
    type_name = "test.archivist"
    accepts = (Transcript,)
    emits = ()

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        return
        yield

    def wants_english(self, transcript: Transcript) -> bool:
        return True


class SpeechStandIn(voiceflow.Node):
    """Emits a Spanish transcript, noting whether a later node wanted it in English."""

    type_name = "test.speech"
    accepts = (AudioClip,)
    emits = (Transcript,)
    asked: ClassVar[list[bool]] = []

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        spoken = transcript("Pinta un faro", "es")
        SpeechStandIn.asked.append(ctx.needs_english(spoken))
        yield spoken


class EnglishPlugin:
    @voiceflow.hookimpl
    def register_nodes(self, register):
        register(Archivist)
        register(SpeechStandIn)


@pytest.mark.parametrize(
    "table, archive, wanted",
    [
        (None, False, True),  # the built-in table: Spanish "pinta un faro" is a command
        ("nothing.yaml", False, False),  # a custom table with no such pattern
        ("nothing.yaml", True, True),  # whatever the intents, the archive wants English
    ],
)
def test_speech_translates_when_a_later_node_needs_english(tmp_path, table, archive, wanted):
    (tmp_path / "nothing.yaml").write_text('intents: {lights: {en: ["turn on the light"]}}\n')
    params = f"{{table: {table}}}" if table else "{}"
    extra = "archive: {type: test.archivist}" if archive else ""
    route = "- {from: intent, to: archive, when: {intent: none}}" if archive else ""
    path = write(
        tmp_path,
        f"""\
        nodes:
          speech: {{type: test.speech}}
          intent: {{type: intent, params: {params}}}
          {extra}
        routes:
          - {{from: input, to: speech}}
          - {{from: speech, to: intent}}
          - {{from: intent, to: output}}
          {route}
        """,
    )
    SpeechStandIn.asked = []
    run_graph(graph_from(path, [("english", EnglishPlugin())]), [AudioClip(np.zeros(160))])
    assert SpeechStandIn.asked == [wanted]


class CommandPlugin:
    @voiceflow.hookimpl
    def register_commands(self, commands):
        p = commands.add_parser("hello", help="say hello")
        p.add_argument("name")
        p.set_defaults(func=lambda args: print(f"hello, {args.name}") or 0)


class ClashingPlugin:
    @voiceflow.hookimpl
    def register_commands(self, commands):
        commands.add_parser("transcribe", help="a second transcribe")


def test_plugins_add_commands_and_a_clash_is_reported(capsys):
    import argparse

    from voiceflow.plugins import load_plugins

    parser = argparse.ArgumentParser(prog="voiceflow")
    commands = parser.add_subparsers(dest="command", required=True)
    errors: list[str] = []
    plugins = load_plugins(
        entry_point_plugins=False, extra=[("hello", CommandPlugin()), ("dup", ClashingPlugin())]
    )
    plugins.add_commands(commands, errors.append)
    args = parser.parse_args(["hello", "world"])
    assert args.func(args) == 0 and capsys.readouterr().out == "hello, world\n"
    assert len(errors) == 1 and "plugin 'dup'" in errors[0] and "transcribe" in errors[0]
    args = parser.parse_args(["transcribe", "x.wav"])  # the core command still works
    assert args.audio == ["x.wav"]


def test_archive_commands_come_from_the_archive_plugin():
    r = run_cli("--help", env={"VOICEFLOW_PLUGINS": ""})
    assert r.returncode == 0 and "transcribe" in r.stdout
    assert "ingest" not in r.stdout and "stats" not in r.stdout
    r = run_cli("--help")
    assert "ingest" in r.stdout and "ask" in r.stdout and "stats" in r.stdout


def test_core_imports_no_plugin_and_no_private_helpers():
    """The core names no first-party plugin; plugins use only the public API."""
    import re

    core = "\n".join(p.read_text() for p in (ROOT / "voiceflow").rglob("*.py"))
    assert not re.search(r"^\s*(from|import) voiceflow_(archive|image)", core, re.M)
    public = {"voiceflow", "voiceflow.messages", "voiceflow.errors", "voiceflow.testing"}
    public |= {"voiceflow.cli"}
    for path in (ROOT / "plugins").rglob("*.py"):
        for module in re.findall(r"^\s*from (voiceflow[\w.]*) import", path.read_text(), re.M):
            assert module in public, f"{path.name} imports {module}"


def test_exit_waits_for_a_thread_letting_go_of_its_work_not_for_one_at_work(tmp_path):
    """Blocking calls run on daemon threads. A thread that has delivered its result still
    drops its references, and freeing a native object (a torch tensor) while the interpreter
    finalises aborted the process ("terminate called without an active exception", exit
    -6). Exit now waits for threads that said their work is done, and only for those."""
    done = tmp_path / "freed"
    script = textwrap.dedent(
        f"""
        import asyncio, threading, time
        from voiceflow.node import Context
        from voiceflow import threads
        from voiceflow.threads import finishing

        def letting_go():
            finishing()
            time.sleep(0.5)  # a slow destructor
            open({str(done)!r}, "w").write("freed")

        async def main():  # a node's blocking call is such a thread once it returns
            worker = await Context("n").run_blocking(threading.current_thread)
            assert worker.daemon and worker in threads._finishing

        asyncio.run(main())
        threading.Thread(target=letting_go, daemon=True).start()
        threading.Thread(target=threading.Event().wait, daemon=True).start()  # never returns
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert done.read_text() == "freed"
