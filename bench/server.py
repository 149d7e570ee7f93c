"""`voiceflow serve` measured: what the HTTP API adds to a transcription, and how it holds
up under concurrent clients.

    python -m bench.server [--clients 8] [--seconds 60]

1. Overhead: jfk.flac (11 s) through the `openai` SDK against the server, and through the
   Python API (`SpeechModel.transcribe`) in this process, the same model and settings;
   best of --repeat each.
2. Load: --clients threads each sending FLEURS clips in a loop for --seconds; every
   answer is 200 or 429 (busy, with Retry-After, which the client honours); p50/p95 of
   the 200s, the 429s counted, and the server's RSS at the end.
Saves bench/results/server.json.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, best_of, free_port, parser, save, table


def start(port: int, jobs: int, queue: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voiceflow",
            "serve",
            "--port",
            str(port),
            "--jobs",
            str(jobs),
            "--queue",
            str(queue),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VOICEFLOW_OFFLINE": "1"},
    )
    assert proc.stderr is not None
    while "ready on" not in (line := proc.stderr.readline()):
        if proc.poll() is not None:
            sys.exit(f"the server did not start: {line}")
    return proc


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    import httpx
    import openai

    from voiceflow.speech.transcriber import SpeechModel

    p = parser(__doc__)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--queue", type=int, default=8)
    args = p.parse_args()
    port = free_port()
    server = start(port, args.jobs, args.queue)
    url = f"http://127.0.0.1:{port}"
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0, timeout=600)
        clip = args.data / "jfk.flac"

        def over_http() -> str:
            with open(clip, "rb") as f:
                return client.audio.transcriptions.create(model="whisper-1", file=f).text

        model = SpeechModel.shared("base")
        model.transcribe(clip)  # load and warm, as the server's model is

        def in_process() -> str:
            return model.transcribe(clip).text

        http_s, http_text = best_of(args.repeat, over_http)
        api_s, api_text = best_of(args.repeat, in_process)
        assert http_text == api_text, (http_text, api_text)

        clips = sorted((args.data / "fleurs").glob("*.ogg"))
        latencies: list[float] = []
        busy = errors = 0
        deadline = time.monotonic() + args.seconds

        def worker(i: int) -> None:
            nonlocal busy, errors
            n = i
            while time.monotonic() < deadline:
                audio = clips[n % len(clips)].read_bytes()
                n += args.clients
                start_t = time.perf_counter()
                r = httpx.post(
                    f"{url}/v1/audio/transcriptions",
                    files={"file": ("clip.ogg", audio)},
                    data={"model": "whisper-1"},
                    timeout=600,
                )
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start_t)
                elif r.status_code == 429:
                    busy += 1
                    time.sleep(float(r.headers.get("retry-after", "1")))
                else:
                    errors += 1

        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(worker, range(args.clients)))
        server_rss = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    overhead = http_s - api_s
    print(
        f"\njfk.flac (11 s), Whisper base, 2 cores; {args.clients} clients for {args.seconds:g} s\n"
    )
    print(
        table(
            ["path", "seconds", "overhead s", "overhead %"],
            [
                ("Python API", api_s, "-", "-"),
                ("openai SDK -> voiceflow serve", http_s, overhead, f"{overhead / api_s:.1%}"),
            ],
        )
    )
    p50, p95 = (float(np.percentile(latencies, q)) if latencies else 0.0 for q in (50, 95))
    print()
    print(
        table(
            ["clients", "answered", "429 busy", "errors", "p50 s", "p95 s", "server RSS MB"],
            [(args.clients, len(latencies), busy, errors, p50, p95, round(server_rss))],
        )
    )
    save(
        "server",
        args,
        {
            "api_s": api_s,
            "http_s": http_s,
            "overhead_s": overhead,
            "answered": len(latencies),
            "busy": busy,
            "errors": errors,
            "p50_s": p50,
            "p95_s": p95,
            "server_rss_mb": server_rss,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
