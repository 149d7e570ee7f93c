"""The ``voiceflow`` command line, and the helpers plugin commands share with it.

Every command, the core's included, comes from a plugin's ``register_commands`` hook and
builds its own parser next to its code (``voiceflow/cli/*.py``); this module only
assembles them. Errors print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceflow.errors import ConfigError, VoiceflowError

if TYPE_CHECKING:
    from voiceflow.batch import RayOptions
    from voiceflow.speech.transcriber import SpeechModel

__all__ = [
    "EXIT_ERROR",
    "add_model_args",
    "add_ray_args",
    "csv_list",
    "describe",
    "flag",
    "jsonable",
    "main",
    "model_args",
    "parse_sets",
    "print_result",
    "ray_options",
    "speech_model",
]

log = logging.getLogger("voiceflow")
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


# -- helpers for commands (public: plugin commands use them too) -----------------------------
def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def flag(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """A boolean option that takes whisper's ``--word_timestamps True`` as well as a bare
    ``--word_timestamps``."""
    p.add_argument(name, type=_bool, nargs="?", const=True, default=default, help=help)


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The Whisper model options every speech command takes."""
    p.add_argument(
        "--model",
        default="base",
        help="model name (base, tiny.en, small, ...), a "
        "CTranslate2 folder or an openai-whisper .pt file (default: base, shipped)",
    )
    p.add_argument("--engine", default="auto", choices=["auto", "faster-whisper", "openai-whisper"])
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--compute_type", default="auto", help="faster-whisper: int8, float32, float16")
    p.add_argument("--threads", type=int, default=0, help="CPU threads in all (0: every core)")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="faster-whisper: chunks of a recording decoded at once, sharing --threads "
        "(0: two on a CPU with beam search, else one)",
    )


def add_ray_args(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and the per-actor resources (``ingest`` takes them too)."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (HOST:PORT); without an address, a local Ray",
    )
    p.add_argument("--ray_actors", type=int, default=0, help="Whisper actors (0: fill the cluster)")
    p.add_argument("--ray_cpus", type=float, default=1.0, help="CPUs per Whisper actor")
    p.add_argument("--ray_gpus", type=float, default=0.0, help="GPUs per Whisper actor")


def ray_options(args: argparse.Namespace) -> RayOptions | None:
    """The ``--ray`` options as ``RayOptions``; None when the work stays in this process."""
    from voiceflow.batch import RayOptions

    if not args.ray:
        return None
    address = None if args.ray == "local" else args.ray
    return RayOptions(address, args.ray_actors, args.ray_cpus, args.ray_gpus)


def model_args(args: argparse.Namespace) -> dict[str, Any]:
    """``SpeechModel`` keyword arguments from the ``add_model_args`` options."""
    workers = args.workers
    if not workers and getattr(args, "beam_size", None) == 1:
        # Greedy decoding is mostly the encoder's work, which gains from both threads: one
        # decoder on two was faster and 20-30 MB smaller (docs/benchmarks.md).
        workers = 1
    return {
        "model": args.model,
        "engine": args.engine,
        "device": args.device,
        "compute_type": args.compute_type,
        "threads": args.threads,
        "workers": workers,
    }


def speech_model(args: argparse.Namespace, **kwargs: Any) -> SpeechModel:
    """The model that ``add_model_args`` options name."""
    from voiceflow.speech.transcriber import SpeechModel

    return SpeechModel(**model_args(args), **kwargs)


def parse_sets(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise VoiceflowError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        out.setdefault(node, {})[param] = yaml.safe_load(value)
    return out


def jsonable(obj: Any) -> Any:
    """Messages (dataclasses) as JSON-ready dicts with a ``type``, without audio samples."""
    if is_dataclass(obj) and not isinstance(obj, type):
        data = {k: v for k, v in asdict(obj).items() if k != "samples"}
        return {"type": type(obj).__name__, **{k: jsonable(v) for k, v in data.items()}}
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def describe(node: str, message: Any) -> str:
    """One message as a person reads it, prefixed by the node that produced it."""
    from voiceflow.messages import Answer, Command, Failure, ImageResult, Transcript

    m = message
    if isinstance(m, Failure):
        return f"[{node}] FAILED: {m.error}"
    if isinstance(m, Transcript):
        return f"[{node}] ({m.language}) {m.text}"
    if isinstance(m, Command):
        args = ", ".join(f"{k}={v!r}" for k, v in m.args.items())
        return f"[{node}] {m.intent}({args}) <- ({m.transcript.language}) {m.transcript.text}"
    if isinstance(m, ImageResult):
        return f"[{node}] image: {m.path} (seed {m.seed}) <- {m.prompt!r}"
    if isinstance(m, Answer):
        cites = "".join(f"\n    [{i}] {c.label()}: {c.text}" for i, c in enumerate(m.citations, 1))
        return f"[{node}] {m.text}{cites}"
    return f"[{node}] {m!r}"


def print_result(node: str, message: Any, as_json: bool, prefix: str = "") -> None:
    if as_json:
        print(json.dumps({"node": node, **jsonable(message)}, ensure_ascii=False), flush=True)
    else:
        print(prefix + describe(node, message), flush=True)


# -- the command line --------------------------------------------------------------------------
def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from voiceflow.plugins import load_plugins

    parser = argparse.ArgumentParser(
        prog="voiceflow",
        description="Speak, or hand over recordings, and voiceflow acts on what was said.",
    )
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    try:
        plugins = load_plugins(on_error=_warn)
    except ConfigError as e:  # e.g. two plugins of one name: the core commands still work
        _warn(str(e))
        plugins = load_plugins(entry_point_plugins=False)
    plugins.add_commands(commands, on_error=_warn)
    return parser


# Core commands that need no plugin: their parser alone, without loading every plugin
# (a third of a second before `transcribe` starts). Plugins cannot take these names.
_STANDALONE = {"transcribe": "voiceflow.cli.transcribe"}


def _standalone_parser(command: str) -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="voiceflow")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    importlib.import_module(_STANDALONE[command]).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from voiceflow import malloc

    malloc.limit_arenas()  # before any thread starts: see voiceflow/malloc.py
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _standalone_parser(argv[0]) if argv and argv[0] in _STANDALONE else build_parser()
    # Files may follow options (`run CONFIG --json a.wav b.wav`): argparse leaves such
    # positionals unclaimed, so they are appended to the command's file list here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "audio") or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.audio = [*args.audio, *extra]
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except VoiceflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug, not bad input: still one line, details on request
        log.debug("unexpected error", exc_info=True)
        print(
            f"error: unexpected {type(e).__name__}: {e} (--log-level DEBUG shows where)",
            file=sys.stderr,
        )
        return EXIT_ERROR
