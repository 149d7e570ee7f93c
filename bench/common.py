"""What every benchmark shares: where the audio is, best-of timing, tables, and a JSON
record of each run (numbers, settings, git commit) in ``bench/results/NAME.json``."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"  # the reference clips (tests/data/README.md)
RESULTS = ROOT / "bench" / "results"
T = TypeVar("T")


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="folder of reference audio laid out as tests/data (default: tests/data)",
    )
    p.add_argument("--repeat", type=int, default=2, help="timed runs; the best counts (2)")
    p.add_argument("--no-save", dest="save", action="store_false", help="print only")
    return p


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``repeat`` runs of ``fn`` (seconds) and the last run's result."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result  # type: ignore[return-value]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pcm16(samples: Any) -> bytes:
    import numpy as np

    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def write_wav(path: Path, samples: Any, rate: int = 16000) -> None:
    """16-bit mono WAV with the standard library (no extra package)."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16(samples))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def save(name: str, args: argparse.Namespace, results: Any) -> None:
    """Write ``bench/results/NAME.json`` with the numbers, the settings and the commit."""
    if not getattr(args, "save", True):
        return
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record = {
        "benchmark": name,
        "commit": commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "settings": settings,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"\n(saved to {path.relative_to(ROOT)})")


def free_port() -> int:
    """A free TCP port on loopback (for servers the tests and benchmarks start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_on_these_packages(folder: Path) -> Path:
    """A new virtual environment at ``folder`` that sees this one's installed packages
    (a .pth line), so installing into it downloads nothing; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "parent.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python
