"""Graph configs (YAML or TOML): load, resolve ``${ENV}``, and validate without loading models.

Validation finds unknown node types, invalid params, routes between unknown nodes, routes
whose message types cannot meet, cycles, nodes unreachable from ``input`` and invalid
``when:`` predicates, and names the config line of each.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voiceflow.errors import ConfigError
from voiceflow.messages import AudioClip, Failure, Transcript
from voiceflow.node import NodeConfig
from voiceflow.plugins import Registry, load_registry
from voiceflow.routing import When, parse_when

INPUT, OUTPUT = "input", "output"
INPUT_EMITS: tuple[type, ...] = (AudioClip, Transcript)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Issue:
    line: int | None
    message: str


class GraphError(ConfigError):
    def __init__(self, path: Path, issues: list[Issue]) -> None:
        self.path, self.issues = path, issues
        super().__init__("\n".join(f"{path}:{i.line or '?'}: {i.message}" for i in issues))


@dataclass(frozen=True)
class NodeSpec:
    name: str
    type: str
    config: NodeConfig
    timeout: float | None
    line: int | None
    # How much the process may grow while this node works, summed over its messages after
    # the first (which may warm caches); past it the node is stopped: a leak in a plugin
    # must not take a long listening session down with it.
    memory_mb: float = 2048


@dataclass(frozen=True)
class Route:
    source: str
    target: str
    when: When
    line: int | None


@dataclass
class Graph:
    path: Path
    nodes: dict[str, NodeSpec]
    routes: list[Route]
    registry: Registry
    plugin_dirs: list[Path] = field(default_factory=list)

    def successors(self, name: str) -> list[Route]:
        return [r for r in self.routes if r.source == name]


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    data = _Lines()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict)):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a name, not a list or mapping", key_node.start_mark
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1
    data.line = node.start_mark.line + 1
    return data


class _Lines(dict[Any, Any]):
    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.line: int | None = None


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(d: Any, key: str | None = None) -> int | None:
    if isinstance(d, _Lines):
        return d.lines.get(key, d.line) if key is not None else d.line
    return None


def _expand_env(value: Any, missing: list[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) in os.environ:
                return os.environ[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            missing.append(m.group(1))
            return ""

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        for k in value:
            value[k] = _expand_env(value[k], missing)
    if isinstance(value, list):
        return [_expand_env(v, missing) for v in value]
    return value


def builtin_configs() -> dict[str, Path]:
    """The configs that ship with voiceflow, by name (``default``, ``lectures``, ...)."""
    folder = importlib.resources.files("voiceflow.configs")
    return {
        Path(f.name).stem: Path(str(f))
        for f in folder.iterdir()
        if f.name.endswith((".yaml", ".yml", ".toml"))
    }


def find_config(config: str | Path) -> Path:
    """A config file's path, or the built-in config of that name (``voiceflow run default``)."""
    path = Path(config).expanduser()
    if path.is_file():
        return path
    builtin = builtin_configs()
    if path.parent == Path(".") and path.stem in builtin and path.suffix in ("", ".yaml"):
        return builtin[path.stem]
    raise ConfigError(
        f"{config}: no such config file, and not a built-in config ({', '.join(sorted(builtin))})"
    )


MAX_VALUES = 100_000  # values in a config once YAML aliases are expanded


def read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.load(text, Loader=_LineLoader)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, RecursionError) as e:
        if isinstance(e, RecursionError):
            reason = "nested too deeply"
        elif isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
            where = f"line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1}"
            reason = f"{e.problem or e.context} at {where}"
        else:
            reason = " ".join(str(e).split())  # one line
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.').upper()}: {reason}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a graph config must be a mapping with 'nodes' and 'routes'")
    try:
        size = _expanded_size(data, {})
    except RecursionError:
        raise ConfigError(f"{path}: values are nested too deeply") from None
    if size > MAX_VALUES:
        raise ConfigError(
            f"{path}: the config expands to more than {MAX_VALUES:,} values (YAML aliases "
            "nested inside each other?); write the values out instead"
        )
    return data


def _expanded_size(value: Any, seen: dict[int, int]) -> int:
    """How many values ``value`` holds with every shared (aliased) part counted each time
    it appears; each distinct container is walked once, so a YAML alias bomb is cheap."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) not in seen:
        seen[id(value)] = 0  # an alias cycle counts as nothing more
        items = value.values() if isinstance(value, dict) else value
        seen[id(value)] = min(MAX_VALUES + 1, 1 + sum(_expanded_size(v, seen) for v in items))
    return seen[id(value)]


def load_graph(
    path: str | Path,
    registry: Registry | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Graph:
    """Load and validate a graph (a file, or a built-in config by name); raises
    ``GraphError`` listing every problem found.

    ``overrides`` merges extra params into named nodes (``{"paint": {"model": "..."}}``).
    """
    path = find_config(path)
    data = read_config(path)
    issues: list[Issue] = []
    missing: list[str] = []
    data = _expand_env(data, missing)
    for var in dict.fromkeys(missing):
        issues.append(
            Issue(None, f"environment variable {var} is not set (referenced as ${{{var}}})")
        )

    plugins = data.get("plugins") or {}
    paths = plugins.get("paths", []) if isinstance(plugins, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise GraphError(
            path,
            [Issue(_line(data, "plugins"), "'plugins' must be a mapping like {paths: [folder]}")],
        )
    plugin_dirs = [(path.parent / p).resolve() for p in paths]
    if registry is None:
        try:
            registry = load_registry(plugin_dirs)
        except ConfigError as e:
            raise GraphError(path, [Issue(_line(data, "plugins"), str(e))]) from None

    nodes = _parse_nodes(data, registry, issues, overrides or {})
    routes = _parse_routes(data, nodes, registry, issues)
    if not issues:
        _check_cycles(routes, issues)
        _check_reachable(nodes, routes, issues)
    if issues:
        raise GraphError(path, issues)
    return Graph(path, nodes, routes, registry, plugin_dirs)


def _parse_nodes(
    data: dict[str, Any],
    registry: Registry,
    issues: list[Issue],
    overrides: dict[str, dict[str, Any]],
) -> dict[str, NodeSpec]:
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        issues.append(Issue(_line(data, "nodes"), "'nodes' must be a non-empty mapping"))
        return {}
    nodes: dict[str, NodeSpec] = {}
    for name, spec in raw_nodes.items():
        line = _line(raw_nodes, name)
        if name in (INPUT, OUTPUT):
            issues.append(Issue(line, f"node name {name!r} is reserved"))
            continue
        if not isinstance(name, str) or not name:
            issues.append(Issue(line, f"node names must be text, not {name!r}"))
            continue
        if not isinstance(spec, dict) or "type" not in spec:
            issues.append(Issue(line, f"node {name!r} needs a 'type'"))
            continue
        if not isinstance(spec["type"], str):
            issues.append(Issue(_line(spec, "type"), f"node {name!r}: 'type' must be a name"))
            continue
        cls = registry.get(spec["type"])
        if cls is None:
            known = ", ".join(sorted(registry.nodes)) or "none"
            issues.append(
                Issue(
                    _line(spec, "type"),
                    f"node {name!r}: unknown node type {spec['type']!r} (known: {known})",
                )
            )
            continue
        extra = set(spec) - {"type", "params", "timeout", "memory_mb"}
        if extra:
            issues.append(Issue(line, f"node {name!r}: unknown key(s) {sorted(map(str, extra))}"))
        raw_params = spec.get("params") or {}
        if not isinstance(raw_params, dict) or not all(isinstance(k, str) for k in raw_params):
            issues.append(
                Issue(_line(spec, "params") or line, f"node {name!r}: 'params' must be a mapping")
            )
            continue
        params = {**raw_params, **overrides.get(name, {})}
        try:
            config = cls.Config(**params)
        except ValidationError as e:
            for err in e.errors():
                where = ".".join(str(x) for x in err["loc"]) or "params"
                issues.append(
                    Issue(
                        _line(spec.get("params"), str(err["loc"][0]) if err["loc"] else None)
                        or _line(spec, "params")
                        or line,
                        f"node {name!r}: params.{where}: {err['msg']}",
                    )
                )
            continue
        timeout, memory = spec.get("timeout"), spec.get("memory_mb", NodeSpec.memory_mb)
        bad = [
            Issue(_line(spec, key), f"node {name!r}: {key} must be > 0 {unit}")
            for key, value, unit in (("timeout", timeout, "seconds"), ("memory_mb", memory, "MB"))
            if value is not None and not _positive(value)
        ]
        if bad:
            issues.extend(bad)
            continue
        nodes[name] = NodeSpec(name, spec["type"], config, timeout, line, memory)
    return nodes


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _emits(name: str, nodes: dict[str, NodeSpec], registry: Registry) -> tuple[type, ...]:
    if name == INPUT:
        return INPUT_EMITS
    cls = registry.nodes[nodes[name].type]
    return (*cls.emits, Failure)


def _parse_routes(
    data: dict[str, Any], nodes: dict[str, NodeSpec], registry: Registry, issues: list[Issue]
) -> list[Route]:
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        issues.append(Issue(_line(data, "routes"), "'routes' must be a non-empty list"))
        return []
    routes: list[Route] = []
    for raw in raw_routes:
        line = _line(raw)
        if not isinstance(raw, dict) or "from" not in raw or "to" not in raw:
            issues.append(Issue(line, "each route needs 'from' and 'to'"))
            continue
        try:
            when = parse_when(raw.get("when"))
        except ValueError as e:
            issues.append(Issue(_line(raw, "when"), f"route {raw['from']} -> {raw['to']}: {e}"))
            continue
        sources = raw["from"] if isinstance(raw["from"], list) else [raw["from"]]
        targets = raw["to"] if isinstance(raw["to"], list) else [raw["to"]]
        if not all(isinstance(n, str) for n in (*sources, *targets)):
            issues.append(Issue(line, "a route's 'from' and 'to' are node names or lists of them"))
            continue
        for src in sources:
            for dst in targets:
                bad = [
                    n
                    for n, ok in (
                        (src, src == INPUT or src in nodes),
                        (dst, dst == OUTPUT or dst in nodes),
                    )
                    if not ok
                ]
                if bad:
                    issues.append(Issue(line, f"route {src} -> {dst}: no node named {bad[0]!r}"))
                    continue
                if dst == INPUT or src == OUTPUT:
                    issues.append(
                        Issue(
                            line,
                            f"route {src} -> {dst}: input has no inbound and "
                            "output no outbound routes",
                        )
                    )
                    continue
                if not _types_meet(src, dst, when, nodes, registry):
                    issues.append(Issue(line, _mismatch(src, dst, when, nodes, registry)))
                    continue
                routes.append(Route(src, dst, when, line))
    return routes


def _types_meet(
    src: str, dst: str, when: When, nodes: dict[str, NodeSpec], registry: Registry
) -> bool:
    if dst == OUTPUT:
        return True
    emitted = _emits(src, nodes, registry)
    narrowed = when.narrows_to()
    if narrowed is not None:
        emitted = tuple(t for t in emitted if issubclass(t, narrowed))
    accepts = registry.nodes[nodes[dst].type].accepts
    return any(issubclass(e, a) for e in emitted for a in accepts if e is not Failure)


def _mismatch(
    src: str, dst: str, when: When, nodes: dict[str, NodeSpec], registry: Registry
) -> str:
    emitted = [t.__name__ for t in _emits(src, nodes, registry) if t is not Failure]
    accepts = [t.__name__ for t in registry.nodes[nodes[dst].type].accepts]
    extra = f" (narrowed by when: intent {list(when.intent)})" if when.intent else ""
    return (
        f"route {src} -> {dst}: {src} emits {emitted}{extra} but {dst} accepts {accepts}; "
        "no message type can pass"
    )


def _check_cycles(routes: list[Route], issues: list[Issue]) -> None:
    graph: dict[str, list[Route]] = {}
    for r in routes:
        graph.setdefault(r.source, []).append(r)
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for r in graph.get(node, []):
            if state.get(r.target) == 1:
                cycle = (
                    [*path[path.index(r.target) :], r.target]
                    if r.target in path
                    else [node, r.target]
                )
                issues.append(Issue(r.line, f"cycle: {' -> '.join(cycle)}"))
            elif state.get(r.target) is None:
                visit(r.target, [*path, r.target])
        state[node] = 2

    for start in [INPUT, *graph]:
        if state.get(start) is None:
            visit(start, [start])


def _check_reachable(nodes: dict[str, NodeSpec], routes: list[Route], issues: list[Issue]) -> None:
    seen, todo = {INPUT}, [INPUT]
    while todo:
        cur = todo.pop()
        for r in routes:
            if r.source == cur and r.target not in seen:
                seen.add(r.target)
                todo.append(r.target)
    for name, spec in nodes.items():
        if name not in seen:
            issues.append(Issue(spec.line, f"node {name!r} is unreachable from input"))


def validate(path: str | Path) -> list[Issue]:
    try:
        load_graph(path)
    except GraphError as e:
        return e.issues
    return []
