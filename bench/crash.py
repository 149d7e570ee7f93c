"""Crashes lose nothing: SIGKILL ``voiceflow ingest`` and ``voiceflow listen --dictate`` at
random moments, resume each time, and count what was lost or duplicated.

    python -m bench.crash [--kills 20] [--listen-kills 20] [--clips N] [--seed 0]

Ingest: the reference clips (tests/data: jfk.flac, the stereo recording, the three spoken
commands and the FLEURS clips; the first --clips of them) are ingested once without
interruption into one archive, then into a second one by a run killed with SIGKILL at
--kills random moments (a random delay after each start, spread so the kills fall across
the whole run: while the model loads, while transcribing, while storing) and resumed each
time. After every kill the archive must open, pass SQLite's integrity check and answer
``voiceflow ask --no-llm``; at the end its segments (recording, index, text) and Chroma
chunk ids are compared with the uninterrupted archive: lost, duplicated.

Listen: ``voiceflow listen --dictate FILE`` (the CLI itself, its microphone replaced by the
same clips replayed in real time, via ``--listen-child``), killed at --listen-kills random
moments and restarted onto the same file (half of the kills on an .srt file, half on a
.json one). After every kill the file must parse (voiceflow can continue it) and hold
every utterance the program had printed as heard, once. Prints a table and saves
bench/results/crash.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, parser, save, table

VOICEFLOW = [sys.executable, "-m", "voiceflow"]


def clips(data: Path, n: int | None) -> list[Path]:
    found = [data / "jfk.flac", data / "stereo_diarization.wav"]
    found += sorted((data / "commands").glob("*.wav")) + sorted((data / "fleurs").glob("*.ogg"))
    return found[:n] if n else found


def _env(archive: Path) -> dict[str, str]:
    return {**os.environ, "VOICEFLOW_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


# -- ingest ---------------------------------------------------------------------------------
def segments(store: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(store / "archive.sqlite", timeout=30) as db:
        paths = dict(db.execute("SELECT id, path FROM recordings"))
        rows = db.execute("SELECT recording, idx, text FROM segments").fetchall()
    return [(Path(paths.get(r, "?")).name, i, t) for r, i, t in rows]


def check_archive(store: Path, folder: Path) -> dict[str, Any]:
    """Open the archive after a kill: integrity, states, and an answer to a question."""
    state: dict[str, Any] = {"opened": False, "answered": False}
    if not (store / "archive.sqlite").is_file():
        state.update(opened=True, answered=True, note="no archive yet")
        return state
    with sqlite3.connect(store / "archive.sqlite", timeout=30) as db:
        state["integrity"] = db.execute("PRAGMA integrity_check").fetchone()[0]
        statuses = [r[0] for r in db.execute("SELECT status FROM recordings")]
    state["complete"] = statuses.count("complete")
    state["other_states"] = sorted(s for s in statuses if s != "complete")
    state["opened"] = state["integrity"] == "ok"
    r = subprocess.run(
        [*VOICEFLOW, "ask", "what did the president ask?", "--no-llm", "--archive", str(store)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(store),
        timeout=300,
    )
    state["answered"] = r.returncode == 0 and "[ask]" in r.stdout and "Traceback" not in r.stderr
    if not state["answered"]:
        state["ask_error"] = (r.stderr or r.stdout)[-300:]
    return state


def ingest_cmd(folder: Path, store: Path) -> list[str]:
    return [*VOICEFLOW, "ingest", str(folder), "--archive", str(store), "--threads", "2"]


def run_ingest(args: Any, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    folder = tmp / "clips"
    folder.mkdir()
    for clip in clips(args.data, args.clips):
        (folder / clip.name).symlink_to(clip)
    reference = tmp / "reference"
    began = time.monotonic()
    subprocess.run(ingest_cmd(folder, reference), check=True, cwd=ROOT, env=_env(reference))
    full = time.monotonic() - began
    print(f"uninterrupted ingest of {len(list(folder.iterdir()))} clips: {full:.0f} s")
    store = tmp / "killed"
    kills: list[dict[str, Any]] = []
    # each restart repeats the start-up (process, model, archive: 25-30 s on 2 busy cores)
    # before it gets on with the work; the kills fall during it, too
    for k in range(args.kills):
        delay = rng.uniform(5, args.max_delay)
        proc = subprocess.Popen(
            ingest_cmd(folder, store),
            cwd=ROOT,
            env=_env(store),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = check_archive(store, folder)
        kills.append({"kill": k + 1, "after_s": round(delay, 2), "had_finished": finished, **state})
        state["transcripts_cached"] = len(list((store / "transcripts").glob("*.json")))
        print(
            f"kill {k + 1:2d} after {delay:5.1f} s: {state.get('complete', 0)} complete, "
            f"{state['transcripts_cached']} transcribed "
            f"{state.get('other_states', [])}, integrity {state.get('integrity', '-')}, "
            f"answered {state['answered']}",
            flush=True,
        )
    r = subprocess.run(
        ingest_cmd(folder, store), cwd=ROOT, env=_env(store), capture_output=True, text=True
    )
    final_ok = r.returncode == 0
    ref, got = segments(reference), segments(store)
    lost = len(set(ref) - set(got))
    duplicated = len(got) - len(set(got))
    extra = len(set(got) - set(ref))
    chunks = _chroma_ids(store)
    ref_chunks = _chroma_ids(reference)
    return {
        "clips": len(list(folder.iterdir())),
        "uninterrupted_s": full,
        "kills": kills,
        "final_resume_ok": final_ok,
        "final_resume_output": r.stdout.strip()[-300:],
        "segments_reference": len(ref),
        "segments_after_kills": len(got),
        "lost": lost,
        "duplicated": duplicated,
        "not_in_reference": extra,
        "chunks_reference": len(ref_chunks),
        "chunks_after_kills": len(chunks),
        "duplicated_chunk_ids": len(chunks) - len(set(chunks)),
        "opened_after_every_kill": all(k["opened"] for k in kills),
        "answered_after_every_kill": all(k["answered"] for k in kills),
    }


def _chroma_ids(store: Path) -> list[str]:
    code = (
        "import json, sys; from voiceflow_archive import Archive; "
        "print(json.dumps(Archive(sys.argv[1]).collection.get(include=[])['ids']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(store)], capture_output=True, text=True, cwd=ROOT
    )
    return list(json.loads(r.stdout)) if r.returncode == 0 else []


# -- listen --dictate -----------------------------------------------------------------------
def listen_child(audio_files: list[str], argv: list[str]) -> int:
    """``voiceflow listen`` as typed, with the microphone replaced by the files replayed in
    real time with 2 s pauses (and ended by SIGINT once they are done)."""
    import numpy as np

    import voiceflow.live
    from voiceflow.cli import main
    from voiceflow.speech.audio import load_audio
    from voiceflow.testing import ReplayStream

    gap = np.zeros(32000, dtype=np.float32)
    audio = np.concatenate([x for f in audio_files for x in (load_audio(f), gap)])
    real = voiceflow.live.Capture

    class ReplayCapture(real):  # type: ignore[misc,valid-type]
        def __init__(self, device: Any = None, **kw: Any) -> None:
            super().__init__(
                device, stream_factory=lambda **k: ReplayStream(audio, 16000, k["callback"])
            )

    voiceflow.live.Capture = ReplayCapture  # type: ignore[misc,assignment]

    def stop_at_end() -> None:
        time.sleep(len(audio) / 16000 + 10)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop_at_end, daemon=True).start()
    return main(["listen", *argv])


def dictation_entries(path: Path) -> list[str] | None:
    """The texts in a dictation file, or None when voiceflow cannot continue it."""
    from voiceflow.errors import VoiceflowError
    from voiceflow.live import DictationWriter

    if not path.exists():
        return []
    try:
        DictationWriter(path)  # what a resumed session does first; it refuses a broken file
    except VoiceflowError:
        return None
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [s["text"] for s in json.loads(text)["segments"]]
    blocks = [b.strip().splitlines() for b in text.split("\n\n") if "-->" in b]
    return [" ".join(b[2:] if path.suffix == ".srt" else b[1:]) for b in blocks]


def _read_into(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    lines.extend(proc.stdout)


def run_listen(args: Any, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    data = args.data
    audio = [data / "commands" / "living_room_light_en.wav", data / "jfk.flac"]
    audio += sorted((data / "fleurs").glob("fleurs-en-00[0-3].ogg"))
    config = tmp / "dictate.yaml"  # the default graph's speech and intent, no models beyond
    config.write_text(
        "nodes:\n  speech: {type: whisper, params: {model: base, threads: 2}}\n"
        "  intent: {type: intent}\n  archive: {type: archive.store}\n"
        "routes:\n  - {from: input, to: speech}\n  - {from: input, to: intent}\n"
        "  - {from: speech, to: intent}\n"
        "  - {from: intent, to: archive, when: {intent: none}}\n"
        "  - {from: intent, to: output}\n"
    )
    kills: list[dict[str, Any]] = []
    child = [sys.executable, "-m", "bench.crash", "--listen-child", *map(str, audio), "--"]
    for fmt in ("srt", "json"):
        target = tmp / f"dictation.{fmt}"
        heard: list[str] = []
        n = args.listen_kills // 2 + (args.listen_kills % 2 if fmt == "srt" else 0)
        for k in range(n):
            delay = rng.uniform(6, 40)
            proc = subprocess.Popen(
                [*child, "--config", str(config), "--dictate", str(target)],
                cwd=ROOT,
                env={**_env(tmp), "VOICEFLOW_ARCHIVE": str(tmp / "listen-archive")},
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            lines: list[str] = []
            reader = threading.Thread(target=_read_into, args=(proc, lines), daemon=True)
            reader.start()
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reader.join(5)
            session = [
                line.split(") ", 1)[1].strip()
                for line in lines
                if line.startswith("[") and ") " in line and "(nothing)" not in line
            ]
            heard += session
            entries = dictation_entries(target)
            parses = entries is not None
            got = entries or []
            missing = sum(1 for t in set(heard) if got.count(t) < heard.count(t))
            dupes = sum(1 for t in set(got) if got.count(t) > heard.count(t))
            kills.append(
                {
                    "format": fmt,
                    "kill": k + 1,
                    "after_s": round(delay, 1),
                    "heard_this_session": len(session),
                    "heard_total": len(heard),
                    "in_file": len(got),
                    "parses": parses,
                    "missing": missing,
                    "duplicated": dupes,
                }
            )
            print(
                f"listen {fmt} kill {k + 1:2d} after {delay:4.1f} s: heard {len(session)} "
                f"(total {len(heard)}), file holds {len(got)}, parses {parses}, "
                f"missing {missing}, duplicated {dupes}",
                flush=True,
            )
    return {
        "kills": kills,
        "missing": sum(k["missing"] for k in kills),
        "duplicated": sum(k["duplicated"] for k in kills),
        "parsed_after_every_kill": all(k["parses"] for k in kills),
    }


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs of ingest (20)")
    p.add_argument("--listen-kills", type=int, default=20, help="SIGKILLs of listen (20)")
    p.add_argument("--clips", type=int, default=None, help="only the first N clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-delay", type=float, default=60, help="longest run before a kill (60 s)")
    p.add_argument("--skip", choices=["ingest", "listen"], default=None)
    if "--listen-child" in sys.argv:
        at = sys.argv.index("--")
        files = sys.argv[sys.argv.index("--listen-child") + 1 : at]
        return listen_child(files, sys.argv[at + 1 :])
    args = p.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voiceflow-crash-") as folder:
        tmp = Path(folder)
        if args.skip != "ingest":
            results["ingest"] = run_ingest(args, tmp)
        if args.skip != "listen":
            results["listen"] = run_listen(args, tmp)
    rows = []
    if "ingest" in results:
        i = results["ingest"]
        rows.append(
            (
                f"ingest ({i['clips']} clips)",
                len(i["kills"]),
                i["segments_reference"],
                i["lost"],
                i["duplicated"] + i["duplicated_chunk_ids"],
                f"{sum(k['opened'] for k in i['kills'])}/{len(i['kills'])}",
                f"{sum(k['answered'] for k in i['kills'])}/{len(i['kills'])}",
            )
        )
    if "listen" in results:
        ks = results["listen"]["kills"]
        rows.append(
            (
                "listen --dictate (.srt, .json)",
                len(ks),
                sum(k["heard_this_session"] for k in ks),
                sum(k["missing"] for k in ks),
                sum(k["duplicated"] for k in ks),
                f"{sum(k['parses'] for k in ks)}/{len(ks)}",
                "-",
            )
        )
    print()
    print(
        table(
            [
                "run",
                "kills",
                "segments / utterances",
                "lost",
                "duplicated",
                "opens/parses",
                "answers",
            ],
            rows,
        )
    )
    saved = RESULTS / "crash.json"
    if args.skip and saved.is_file():  # keep the saved figures of the part skipped
        earlier = json.loads(saved.read_text()).get("results", {})
        results = {**{k: v for k, v in earlier.items() if k == args.skip}, **results}
    save("crash", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
