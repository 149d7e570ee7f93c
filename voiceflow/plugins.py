"""Plugin discovery with pluggy.

Core nodes and commands (``voiceflow.builtins``), first-party plugins under ``plugins/``
(through the ``voiceflow`` entry-point group, like anyone's) and files in a plugin folder
all register through the same hooks (``voiceflow.hooks``). ``VOICEFLOW_PLUGINS``
(comma-separated plugin names) restricts which external plugins load; an empty value loads
none. Every call builds a fresh plugin manager, so tests register plugins without global
state.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from voiceflow import builtins
from voiceflow.errors import ConfigError
from voiceflow.hooks import PROJECT, HookSpecs, hookimpl
from voiceflow.node import Node

__all__ = ["ENTRY_POINT_GROUP", "Plugins", "Registry", "hookimpl", "load_plugins", "load_registry"]

ENTRY_POINT_GROUP = PROJECT
CORE = "voiceflow"


@dataclass
class Registry:
    """Node types by name, with the plugin each came from."""

    nodes: dict[str, type[Node]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, list[str]] = field(default_factory=dict)  # plugin -> its node types

    def get(self, type_name: str) -> type[Node] | None:
        return self.nodes.get(type_name)


@dataclass
class Plugins:
    """The loaded plugins, by name, behind one pluggy manager."""

    manager: pluggy.PluginManager
    names: list[str]

    def _callers(self, hook: str) -> Iterator[tuple[str, Any]]:
        """One hook caller per plugin, so whatever a call registers is known to be its own."""
        plugins = {name: self.manager.get_plugin(name) for name in self.names}
        for name in self.names:
            others = [p for n, p in plugins.items() if n != name]
            yield name, self.manager.subset_hook_caller(hook, remove_plugins=others)

    def registry(self) -> Registry:
        registry = Registry()
        for name, call in self._callers("register_nodes"):
            registered: list[type[Node]] = []
            call(register=registered.append)
            registry.plugins[name] = []
            for cls in registered:
                _check_node_class(cls, name)
                if cls.type_name in registry.nodes:
                    raise ConfigError(
                        f"node type {cls.type_name!r} is claimed by two plugins: "
                        f"{registry.origins[cls.type_name]!r} and {name!r}; uninstall one or "
                        "restrict loading with VOICEFLOW_PLUGINS"
                    )
                registry.nodes[cls.type_name] = cls
                registry.origins[cls.type_name] = name
                registry.plugins[name].append(cls.type_name)
        return registry

    def add_commands(
        self,
        commands: argparse._SubParsersAction,
        on_error: Callable[[str], None],
    ) -> None:
        """Let each plugin add its sub-commands; one that clashes or fails is reported and
        left out, so a broken plugin never takes the core commands down with it."""
        for name, call in self._callers("register_commands"):
            try:
                call(commands=commands)
            except Exception as e:  # argparse.ArgumentError for a name clash, or a bug
                on_error(f"plugin {name!r}: its commands could not be added ({e})")


def _allowed() -> set[str] | None:
    value = os.environ.get("VOICEFLOW_PLUGINS")
    if value is None:
        return None
    return {p.strip() for p in value.split(",") if p.strip()}


def _load_folder_module(path: Path) -> ModuleType:
    name = f"voiceflow_local_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a plugin")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ConfigError(f"plugin file {path} failed to import: {type(e).__name__}: {e}") from e
    return module


def _candidates(
    plugin_dirs: Iterable[str | Path], entry_point_plugins: bool, on_error: Callable[[str], None]
) -> Iterator[tuple[str, object]]:
    allowed = _allowed()
    if entry_point_plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is None or ep.name in allowed:
                try:
                    yield ep.name, ep.load()
                except Exception as e:
                    on_error(
                        f"plugin {ep.name!r} ({ep.value}) failed to import: {type(e).__name__}: {e}"
                    )
    for folder in plugin_dirs:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"plugin folder {folder} does not exist")
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_") and (allowed is None or path.stem in allowed):
                yield path.stem, _load_folder_module(path)


def _raise(message: str) -> None:
    raise ConfigError(message)


def load_plugins(
    plugin_dirs: Iterable[str | Path] = (),
    *,
    entry_point_plugins: bool = True,
    extra: Iterable[tuple[str, object]] = (),
    on_error: Callable[[str], None] = _raise,
) -> Plugins:
    """Load the core, entry-point plugins, folder plugins and ``extra`` (name, plugin) pairs.

    A plugin that fails to import raises ``ConfigError``, or is reported to ``on_error``
    and skipped when one is given.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    names: list[str] = []
    found = [(CORE, builtins), *_candidates(plugin_dirs, entry_point_plugins, on_error), *extra]
    for name, plugin in found:
        if pm.has_plugin(name):
            raise ConfigError(f"two plugins are named {name!r}; rename one of them")
        pm.register(plugin, name=name)
        names.append(name)
    return Plugins(pm, names)


def load_registry(
    plugin_dirs: Iterable[str | Path] = (),
    *,
    entry_point_plugins: bool = True,
    extra: Iterable[tuple[str, object]] = (),
) -> Registry:
    """Node types of the core, entry-point plugins, folder plugins and ``extra`` objects."""
    return load_plugins(
        plugin_dirs, entry_point_plugins=entry_point_plugins, extra=extra
    ).registry()


def _check_node_class(cls: object, plugin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise ConfigError(f"plugin {plugin!r} registered {cls!r}, which is not a voiceflow.Node")
    if not cls.type_name or not cls.accepts:
        raise ConfigError(f"plugin {plugin!r}: node {cls.__name__} must set type_name and accepts")
