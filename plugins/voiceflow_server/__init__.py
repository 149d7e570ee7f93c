"""``voiceflow serve``: OpenAI's audio and image API over the graph's models, on HTTP.

Any OpenAI client (the official SDK, note apps, editors) can transcribe and translate
through it; it binds to 127.0.0.1 unless given an API key.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

import voiceflow
from voiceflow.cli import parse_sets


@voiceflow.hookimpl
def register_commands(commands: argparse._SubParsersAction) -> None:
    s = commands.add_parser(
        "serve", help="serve the OpenAI-compatible audio and image API over HTTP"
    )
    s.add_argument("--config", default="default", help="graph config file or built-in name")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    s.add_argument(
        "--api-key",
        dest="api_key",
        default=os.environ.get("VOICEFLOW_API_KEY"),
        help="required as 'Authorization: Bearer KEY' (default: $VOICEFLOW_API_KEY); "
        "binding to anything but loopback needs one",
    )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (value parsed as YAML)",
    )
    s.add_argument("--max-upload-mb", dest="max_upload_mb", type=int, default=100)
    s.add_argument("--jobs", type=int, default=1, help="requests worked on at once (1)")
    s.add_argument("--queue", type=int, default=8, help="requests waiting; beyond, 429 (8)")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds a request may take")
    s.set_defaults(func=serve_command)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn
    except ImportError:
        raise voiceflow.VoiceflowError(
            "the server needs FastAPI and uvicorn: pip install 'voiceflow[server]'"
        ) from None
    if not is_loopback(args.host) and not args.api_key:
        raise voiceflow.VoiceflowError(
            f"serving on {args.host} opens voiceflow to other machines: give an API key "
            "(--api-key or VOICEFLOW_API_KEY), or keep the default --host 127.0.0.1"
        )
    if min(args.jobs, args.max_upload_mb) < 1 or args.queue < 0 or args.timeout <= 0:
        raise voiceflow.VoiceflowError("--jobs and --max-upload-mb need at least 1, --queue 0")
    from .app import Settings, create_app

    graph = voiceflow.load_graph(args.config, overrides=parse_sets(args.set))
    settings = Settings(
        api_key=args.api_key,
        max_upload_bytes=args.max_upload_mb * 2**20,
        jobs=args.jobs,
        queue=args.queue,
        timeout_s=args.timeout,
    )

    def ready() -> None:
        url = f"http://{args.host}:{args.port}"
        print(f"voiceflow serve: ready on {url}", file=sys.stderr, flush=True)

    app = create_app(graph, settings, on_ready=ready)
    print("loading the speech model...", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
