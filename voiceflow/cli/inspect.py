"""``voiceflow validate`` and ``voiceflow plugins``: what a graph and the plugins hold."""

from __future__ import annotations

import argparse
import json


def add_commands(commands: argparse._SubParsersAction) -> None:
    v = commands.add_parser("validate", help="check a graph config without loading any model")
    v.add_argument("config", help="a config file, or the name of a built-in one (default, ...)")
    v.set_defaults(func=validate)

    p = commands.add_parser("plugins", help="list installed plugins and their node types")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=plugins)


def validate(args: argparse.Namespace) -> int:
    from voiceflow.graph import load_graph

    graph = load_graph(args.config)
    print(f"{graph.path}: ok ({len(graph.nodes)} nodes, {len(graph.routes)} routes)")
    return 0


def plugins(args: argparse.Namespace) -> int:
    from voiceflow.plugins import load_registry

    registry = load_registry()
    if args.json:
        print(json.dumps(dict(registry.plugins.items())))
        return 0
    for plugin, types in registry.plugins.items():
        print(plugin)
        for t in types:
            cls = registry.nodes[t]
            io = (
                f"{', '.join(a.__name__ for a in cls.accepts)} -> "
                f"{', '.join(e.__name__ for e in cls.emits) or '-'}"
            )
            print(f"  {t:<20} {io:<40} {cls.description}")
    return 0
