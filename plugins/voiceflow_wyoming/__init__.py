"""Home Assistant's Wyoming protocol: ``voiceflow wyoming`` serves speech-to-text (a drop-in
for wyoming-faster-whisper) and acts on spoken commands through the graph."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import voiceflow
from voiceflow.cli import parse_sets

log = logging.getLogger(__name__)


@voiceflow.hookimpl
def register_commands(commands: argparse._SubParsersAction) -> None:
    w = commands.add_parser(
        "wyoming", help="serve Home Assistant over the Wyoming protocol (speech to text, commands)"
    )
    w.add_argument(
        "--uri",
        default="tcp://127.0.0.1:10300",
        help="tcp://HOST:PORT, unix://PATH or stdio:// (default: %(default)s; Home Assistant "
        "on another machine needs tcp://0.0.0.0:10300)",
    )
    w.add_argument("--config", default="default", help="graph config file or built-in name")
    w.add_argument("--language", default=None, help="language when a request names none")
    w.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (value parsed as YAML)",
    )
    w.add_argument(
        "--max-seconds",
        dest="max_seconds",
        type=float,
        default=300.0,
        help="longest audio one request may send (%(default)s)",
    )
    w.add_argument(
        "--no-streaming",
        dest="streaming",
        action="store_false",
        help="send only the final transcript, not transcript-start/-chunk/-stop",
    )
    w.add_argument(
        "--zeroconf",
        nargs="?",
        const="voiceflow",
        default=None,
        metavar="NAME",
        help="announce the server on the local network for Home Assistant to discover (off)",
    )
    w.set_defaults(func=wyoming_command)


def wyoming_command(args: argparse.Namespace) -> int:
    try:
        import wyoming  # noqa: F401
    except ImportError:
        raise voiceflow.VoiceflowError(
            "the Wyoming server needs the wyoming package: pip install 'voiceflow[wyoming]'"
        ) from None
    from .server import Service, check_uri, serve

    check_uri(args.uri)
    graph = voiceflow.load_graph(args.config, overrides=parse_sets(args.set))

    def ready(uri: str) -> None:
        print(f"voiceflow wyoming: ready on {uri}", file=sys.stderr, flush=True)

    async def main() -> None:
        service = Service(graph, args.language, args.max_seconds, args.streaming)
        print("loading the speech model...", file=sys.stderr, flush=True)
        await service.start()
        try:
            if args.zeroconf:
                await _announce(args.uri, args.zeroconf)
            await serve(service, args.uri, ready)
        finally:
            await service.stop()

    asyncio.run(main())
    return 0


async def _announce(uri: str, name: str) -> None:
    from urllib.parse import urlparse

    url = urlparse(uri)
    if url.scheme != "tcp" or url.port is None:
        raise voiceflow.VoiceflowError("--zeroconf announces a tcp:// server only")
    try:
        from wyoming.zeroconf import HomeAssistantZeroconf
    except ImportError:
        raise voiceflow.VoiceflowError("--zeroconf needs the zeroconf package") from None
    host = url.hostname if url.hostname not in ("0.0.0.0", "", None) else None
    await HomeAssistantZeroconf(port=url.port, name=name, host=host).register_server()
    log.warning("announced as %r on the local network (zeroconf)", name)
