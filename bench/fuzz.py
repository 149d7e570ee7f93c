"""Fuzzing the decode path and the graph config loader.

    python -m bench.fuzz [--audio 2000] [--configs 500] [--seed 0] [--timeout 5]

Audio: valid recordings in seven containers (WAV, FLAC, Ogg/Vorbis, Ogg/Opus, MP3, M4A,
MP4; made with ffmpeg from a reference clip, plus a FLEURS Ogg/Opus clip as shipped) are
mutated (bit flips, byte runs overwritten, truncation, one container's header spliced onto
another's body, header fields set to extreme values, chunks duplicated or cut out) and fed
to ``voiceflow.speech.audio.load_audio``. Configs: the shipped graph configs mutated as
text (bit flips, truncation, lines cut, repeated or swapped, values replaced by hostile
YAML: wrong types, huge numbers, anchor bombs, unset ``${ENV}``) through ``load_graph``,
what ``voiceflow validate`` runs.

Each case runs in a worker process with a --timeout (a hang: the worker is killed and
replaced). Outcomes: a valid array (1-D float32, finite), a clean ``VoiceflowError``
naming the file, or else a crash (any other exception, an invalid array, a dead worker) or
a hang. Prints a table and saves bench/results/fuzz.json.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import DATA, ROOT, parser, save, table

# -- mutations ----------------------------------------------------------------------------
INTERESTING32 = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
AUDIO_MUTATIONS: tuple[str, ...] = ("bitflip", "header_bitflip", "overwrite", "truncate")
AUDIO_MUTATIONS = (*AUDIO_MUTATIONS, "splice", "field", "duplicate", "cut")


def mutate_audio(data: bytes, rng: random.Random, donors: list[bytes]) -> tuple[str, bytes]:
    """One mutation of a recording's bytes, chosen by ``rng``: (its name, the new bytes)."""
    kind = rng.choice(AUDIO_MUTATIONS)
    b = bytearray(data)
    n = len(b)
    if kind in ("bitflip", "header_bitflip"):
        span = min(n, 512) if kind == "header_bitflip" else n
        for _ in range(rng.randint(1, 64 if kind == "bitflip" else 8)):
            i = rng.randrange(span)
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "overwrite":
        start, length = rng.randrange(n), rng.randint(1, 4096)
        fill = rng.choice([b"\x00", b"\xff", None])
        run = fill * length if fill else rng.randbytes(length)
        b[start : start + length] = run[: n - start]
    elif kind == "truncate":
        # mostly inside the header, where parsers are most fragile
        b = b[: rng.randrange(min(n, 1024)) if rng.random() < 0.5 else rng.randrange(n)]
    elif kind == "splice":
        donor = rng.choice(donors)
        cut = rng.randint(4, min(len(donor), 2048))
        b = bytearray(donor[:cut]) + b[rng.randrange(min(n, 2048)) :]
    elif kind == "field":  # a 16- or 32-bit header field set to an extreme value
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(min(n, 256) - 4)
            v = rng.choice(INTERESTING32)
            if rng.random() < 0.5:
                b[i : i + 4] = v.to_bytes(4, rng.choice(["little", "big"]))
            else:
                b[i : i + 2] = (v & 0xFFFF).to_bytes(2, rng.choice(["little", "big"]))
    elif kind == "duplicate":
        start = rng.randrange(n)
        piece = b[start : start + rng.randint(1, 8192)]
        at = rng.randrange(n)
        b[at:at] = piece
    else:  # cut a run out of the middle
        start = rng.randrange(n)
        del b[start : start + rng.randint(1, 8192)]
    return kind, bytes(b)


HOSTILE_VALUES = [
    "[]",
    "{}",
    "null",
    "~",
    "true",
    "-1",
    "0",
    "1e309",
    "-.inf",
    ".nan",
    "99999999999999999999999999",
    '"${VOICEFLOW_FUZZ_UNSET}"',
    '"${VOICEFLOW_FUZZ_UNSET:-x}"',
    "'" + "x" * 100_000 + "'",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{a: {b: {c: {d: {e: {f: 1}}}}}",
    "!!binary aGVsbG8=",
    "!!python/object:os.system {}",
    "!!set {a, b}",
    "2001-12-14",
    "*undefined_anchor",
    "&a [1, 2]",
    "[input, output, input]",
    "{type: whisper}",
    "{from: input, to: output}",
    "'\x00\x01'",
    "💥",
    "|\n    multi\n    line",
]

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    + "nodes: *i\nroutes: *i\n"
)
CONFIG_MUTATIONS: tuple[str, ...] = ("bitflip", "truncate", "drop_line", "repeat_line")
CONFIG_MUTATIONS = (*CONFIG_MUTATIONS, "swap_lines", "key")
CONFIG_MUTATIONS = (*CONFIG_MUTATIONS, "value", "value", "value", "indent", "bomb")


def mutate_config(text: str, rng: random.Random) -> tuple[str, str]:
    """One mutation of a YAML graph config, chosen by ``rng``: (its name, the new text)."""
    kind = rng.choice(CONFIG_MUTATIONS)
    lines = text.splitlines()
    if kind == "bitflip":
        b = bytearray(text.encode())
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return kind, b.decode("utf-8", errors="surrogateescape")
    if kind == "truncate":
        return kind, text[: rng.randrange(len(text))]
    i = rng.randrange(len(lines))
    if kind == "drop_line":
        del lines[i]
    elif kind == "repeat_line":
        lines.insert(i, lines[i])
    elif kind == "swap_lines":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "value":  # the value after a 'key:' becomes something hostile
        candidates = [
            k for k, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")
        ]
        k = rng.choice(candidates)
        key = lines[k].split(":", 1)[0]
        lines[k] = f"{key}: {rng.choice(HOSTILE_VALUES)}"
    elif kind == "key":
        candidates = [k for k, line in enumerate(lines) if ":" in line]
        k = rng.choice(candidates)
        new = rng.choice(
            [
                "nodes",
                "routes",
                "plugins",
                "params",
                "type",
                "timeout",
                "when",
                "x",
                "1",
                "null",
                "[a]",
                "? [b]",
            ]
        )
        lines[k] = (
            lines[k].split(":", 1)[0].replace(lines[k].strip().split(":", 1)[0], new, 1)
            + ":"
            + lines[k].split(":", 1)[1]
        )
    elif kind == "indent":
        lines[i] = " " * rng.randint(0, 8) + lines[i].lstrip()
    else:  # an alias bomb spliced in as some value
        return kind, BOMB if rng.random() < 0.5 else text + "\n" + BOMB.replace(
            "nodes: *i\nroutes: *i\n", "extra: *i\n"
        )
    return kind, "\n".join(lines) + "\n"


# -- seeds --------------------------------------------------------------------------------
CONTAINERS = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis"],
    "opus": ["-c:a", "libopus", "-b:a", "24k"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "mp4": ["-c:a", "aac", "-b:a", "64k"],
}


def audio_seeds(folder: Path, data: Path = DATA) -> dict[str, bytes]:
    """Valid recordings to mutate, by name: the English command clip in every container
    ffmpeg here can write, and a FLEURS Ogg/Opus clip as shipped."""
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is not installed (scripts/setup.sh installs it)")
    source = data / "commands" / "living_room_light_en.wav"
    seeds: dict[str, bytes] = {}
    for ext, codec in CONTAINERS.items():
        out = folder / f"seed.{ext}"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-ac", "1", *codec, str(out)],
            check=True,
        )
        seeds[ext] = out.read_bytes()
    seeds["fleurs.ogg"] = (data / "fleurs" / "fleurs-en-000.ogg").read_bytes()
    return seeds


def config_seeds() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "configs").glob("*.yaml"))}


# -- the worker: one case at a time, in a process that may be killed ----------------------
def worker() -> None:
    """Read ``audio PATH`` / ``config PATH`` lines; answer one JSON line each."""
    import numpy as np

    from voiceflow.errors import VoiceflowError
    from voiceflow.graph import load_graph
    from voiceflow.speech.audio import load_audio

    for line in sys.stdin:
        mode, path = line.rstrip("\n").split(" ", 1)
        reply: dict[str, Any]
        start = time.perf_counter()
        try:
            if mode == "audio":
                x = load_audio(path)
                ok = x.ndim == 1 and x.dtype == np.float32 and bool(np.isfinite(x).all())
                reply = {"outcome": "decoded" if ok else "crash", "samples": int(x.size)}
                if not ok:
                    reply["error"] = (
                        f"invalid array: {x.dtype} {x.shape}, finite={np.isfinite(x).all()}"
                    )
            else:
                load_graph(path)
                reply = {"outcome": "valid"}
        except VoiceflowError as e:
            named = path in str(e)
            reply = {"outcome": "error" if named else "crash", "error": str(e)[:300]}
            if not named:
                reply["error"] = "error does not name the file: " + reply["error"]
        except Exception as e:
            trace = traceback.format_exc().splitlines()[-6:]
            reply = {"outcome": "crash", "error": f"{type(e).__name__}: {e}"[:300], "trace": trace}
        reply["seconds"] = time.perf_counter() - start
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "VOICEFLOW_FUZZ_WORKER": "1"}
        env.pop("VOICEFLOW_FUZZ_UNSET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fuzz", "--worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def ask(self, mode: str, path: Path, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        self.proc.stdin.write(f"{mode} {path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return {"outcome": "hang", "seconds": time.perf_counter() - start}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {
                "outcome": "crash",
                "error": f"worker died (exit {code})",
                "seconds": time.perf_counter() - start,
            }
        return dict(json.loads(line))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class Case:
    target: str  # "audio" or "config"
    seed: str
    mutation: str
    outcome: str
    seconds: float
    error: str = ""


def validate_cli(path: Path, timeout: float, reply: dict[str, Any]) -> dict[str, Any]:
    """The same case through ``voiceflow validate``: exit 0, or 1 with ``error:`` lines and
    no traceback; the process start is not counted against ``timeout``."""
    try:
        r = subprocess.run(
            [sys.executable, "-m", "voiceflow", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout + 10,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {**reply, "outcome": "hang", "error": "voiceflow validate did not finish"}
    clean = (r.returncode == 0 and reply["outcome"] == "valid") or (
        r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    )
    if not clean:
        return {
            **reply,
            "outcome": "crash",
            "error": f"validate exit {r.returncode}: {r.stderr[-300:]}",
        }
    return reply


def run_cases(
    n_audio: int,
    n_config: int,
    seed: int = 0,
    timeout: float = 5.0,
    data: Path = DATA,
    n_cli: int = 0,
) -> list[Case]:
    """Generate and run the cases (deterministic for a ``seed``); every outcome. The first
    ``n_cli`` config cases also go through ``voiceflow validate``."""
    rng = random.Random(seed)
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="voiceflow-fuzz-") as tmp:
        folder = Path(tmp)
        seeds = audio_seeds(folder, data)
        donors = list(seeds.values())
        configs = config_seeds()
        work = Worker()
        try:
            for i in range(n_audio + n_config):
                if i < n_audio:
                    name = rng.choice(sorted(seeds))
                    kind, blob = mutate_audio(seeds[name], rng, donors)
                    path = folder / f"case{i}.{name.rsplit('.', 1)[-1]}"
                    path.write_bytes(blob)
                    target = "audio"
                else:
                    name = rng.choice(sorted(configs))
                    kind, text = mutate_config(configs[name], rng)
                    path = folder / f"case{i}.yaml"
                    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
                    target = "config"
                if work.proc.poll() is not None:
                    work = Worker()
                reply = work.ask(target, path, timeout)
                if target == "config" and i - n_audio < n_cli and reply["outcome"] != "hang":
                    reply = validate_cli(path, timeout, reply)
                if reply["outcome"] in ("hang", "crash") and work.proc.poll() is not None:
                    work = Worker()
                cases.append(
                    Case(
                        target,
                        name,
                        kind,
                        reply["outcome"],
                        reply["seconds"],
                        reply.get("error", ""),
                    )
                )
                if reply["outcome"] in ("hang", "crash"):
                    kept = (
                        folder.parent / f"voiceflow-fuzz-{reply['outcome']}-{seed}-{i}{path.suffix}"
                    )
                    shutil.copy(path, kept)
                    print(
                        f"case {i} ({target} {name} {kind}): {reply['outcome']}: "
                        f"{reply.get('error', '')} [kept {kept}]",
                        file=sys.stderr,
                    )
                path.unlink()
        finally:
            work.close()
    return cases


def summarise(cases: list[Case]) -> list[dict[str, Any]]:
    rows = []
    for target in ("audio", "config"):
        for seed in [*sorted({c.seed for c in cases if c.target == target}), "all"]:
            group = [c for c in cases if c.target == target and seed in ("all", c.seed)]
            if not group:
                continue
            count = {
                o: sum(c.outcome == o for c in group)
                for o in ("decoded", "valid", "error", "crash", "hang")
            }
            rows.append(
                {
                    "target": target,
                    "seed": seed,
                    "cases": len(group),
                    "accepted": count["decoded"] + count["valid"],
                    "clean_errors": count["error"],
                    "crashes": count["crash"],
                    "hangs": count["hang"],
                    "max_s": max(c.seconds for c in group),
                }
            )
    return rows


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--audio", type=int, default=2000, help="audio cases (2000)")
    p.add_argument("--configs", type=int, default=500, help="config cases (500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds before a case is a hang")
    p.add_argument("--cli", type=int, default=50, help="config cases also run by the CLI (50)")
    p.add_argument("--worker", action="store_true", help=argparse_suppress())
    args = p.parse_args()
    if args.worker:
        worker()
        return 0
    began = time.perf_counter()
    cases = run_cases(args.audio, args.configs, args.seed, args.timeout, args.data, args.cli)
    rows = summarise(cases)
    print(
        table(
            [
                "target",
                "seed file",
                "cases",
                "decoded/valid",
                "clean errors",
                "crashes",
                "hangs",
                "max s",
            ],
            [tuple(r.values()) for r in rows],
        )
    )
    by_mutation: dict[str, dict[str, int]] = {}
    for c in cases:
        by_mutation.setdefault(f"{c.target}:{c.mutation}", {}).setdefault(c.outcome, 0)
        by_mutation[f"{c.target}:{c.mutation}"][c.outcome] += 1
    print("\nby mutation: " + "; ".join(f"{k} {v}" for k, v in sorted(by_mutation.items())))
    failures = [c.__dict__ for c in cases if c.outcome in ("crash", "hang")]
    print(
        f"\n{len(cases)} cases in {time.perf_counter() - began:.0f} s; "
        f"{len(failures)} crashes or hangs"
    )
    save(
        "fuzz",
        args,
        {"summary": rows, "by_mutation": by_mutation, "failures": failures[:50]},
    )
    return 1 if failures else 0


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
