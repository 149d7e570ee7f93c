"""A complete voiceflow plugin: a node and a command, registered through the ``voiceflow``
entry point."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable

import voiceflow
from voiceflow.messages import Answer, Message, Transcript


class Shout(voiceflow.Node):
    type_name = "example.shout"  # what `type:` names in a graph config
    accepts = (Transcript,)
    emits = (Answer,)
    description = "repeat what was said, in capitals"

    class Config(voiceflow.NodeConfig):  # validated from the node's `params:`
        suffix: str = "!"

    config: Config

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        yield Answer(text=msg.text.upper() + self.config.suffix, language=msg.language)


def shout_command(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise voiceflow.VoiceflowError("nothing to shout: give some text")
    print(args.text.upper() + args.suffix)
    return 0


@voiceflow.hookimpl
def register_nodes(register: Callable[[type[voiceflow.Node]], None]) -> None:
    register(Shout)


@voiceflow.hookimpl
def register_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("shout", help="print TEXT in capitals (the example plugin)")
    p.add_argument("text")
    p.add_argument("--suffix", default="!")
    p.set_defaults(func=shout_command)
