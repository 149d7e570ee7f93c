"""Plugin discovery with pluggy.

The whole plugin surface is one hook, ``register_nodes(register)``. Core nodes, first-party
plugins under ``plugins/`` (through the ``voiceflow`` entry-point group, like anyone's) and
files in a plugin folder all register the same way. ``VOICEFLOW_PLUGINS`` (comma-separated
plugin names) restricts which external plugins load; an empty value loads none.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy

from voiceflow.errors import ConfigError
from voiceflow.node import Node

hookspec = pluggy.HookspecMarker("voiceflow")
hookimpl = pluggy.HookimplMarker("voiceflow")
ENTRY_POINT_GROUP = "voiceflow"


class HookSpecs:
    @hookspec
    def register_nodes(self, register: Callable[[type[Node]], None]) -> None:
        """Call ``register(NodeClass)`` for each node type the plugin provides."""


@dataclass
class Registry:
    """Node types by name, with the plugin each came from."""

    nodes: dict[str, type[Node]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, list[str]] = field(default_factory=dict)  # plugin -> its node types

    def get(self, type_name: str) -> type[Node] | None:
        return self.nodes.get(type_name)


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


def load_registry(
    plugin_dirs: Iterable[str | Path] = (),
    *,
    entry_point_plugins: bool = True,
    extra: Iterable[tuple[str, object]] = (),
) -> Registry:
    """Build a fresh registry: core nodes, entry points, folder plugins and ``extra`` objects.

    A new pluggy manager per call, so tests can register plugins without global state.
    """
    from voiceflow import builtins

    pm = pluggy.PluginManager("voiceflow")
    pm.add_hookspecs(HookSpecs)
    allowed = _allowed()
    candidates: list[tuple[str, object]] = [("voiceflow", builtins)]
    if entry_point_plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is None or ep.name in allowed:
                try:
                    candidates.append((ep.name, ep.load()))
                except Exception as e:
                    raise ConfigError(
                        f"plugin {ep.name!r} ({ep.value}) failed to import: {type(e).__name__}: {e}"
                    ) from e
    for folder in plugin_dirs:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"plugin folder {folder} does not exist")
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_") and (allowed is None or path.stem in allowed):
                candidates.append((path.stem, _load_folder_module(path)))
    candidates.extend(extra)

    registry = Registry()
    for name, plugin in candidates:
        if pm.has_plugin(name):
            raise ConfigError(f"two plugins are named {name!r}; rename one of them")
        pm.register(plugin, name=name)
        registered: list[type[Node]] = []
        for impl in pm.hook.register_nodes.get_hookimpls():
            if impl.plugin_name == name:
                impl.function(registered.append)
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


def _check_node_class(cls: object, plugin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise ConfigError(f"plugin {plugin!r} registered {cls!r}, which is not a voiceflow.Node")
    if not cls.type_name or not cls.accepts:
        raise ConfigError(f"plugin {plugin!r}: node {cls.__name__} must set type_name and accepts")
