"""A complete voiceflow plugin: one node, registered through the ``voiceflow`` entry point."""

from __future__ import annotations

from collections.abc import AsyncIterator

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


@voiceflow.hookimpl
def register_nodes(register):  # type: ignore[no-untyped-def]
    register(Shout)
