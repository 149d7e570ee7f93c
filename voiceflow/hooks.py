"""The plugin surface: two hooks, each given a callback or the command table.

A plugin is any module or object with functions marked ``@voiceflow.hookimpl``:

- ``register_nodes(register)``: call ``register(NodeClass)`` for each node type.
- ``register_commands(commands)``: ``commands`` is the ``voiceflow`` command line's
  ``argparse`` sub-command table; ``commands.add_parser("name", help=...)`` adds a command
  and ``parser.set_defaults(func=handler)`` names the function that runs it (it takes the
  parsed ``argparse.Namespace`` and returns the exit code).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "voiceflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    @hookspec
    def register_nodes(self, register: Callable[[type[Any]], None]) -> None:
        """Call ``register(NodeClass)`` for each node type the plugin provides."""

    @hookspec
    def register_commands(self, commands: argparse._SubParsersAction) -> None:
        """Add the plugin's sub-commands to the ``voiceflow`` command line."""
