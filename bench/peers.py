"""CPU peers side by side: voiceflow against whisper.cpp and the stock openai-whisper CLI.

    python -m bench.peers [--threads 2] [--repeat 1] [--data DIR] [--skip-stock]
                          [--recording-only]

Every system runs Whisper base from the shipped weights, as its own process, timed from
process start to its transcripts in hand (start-up included); CPU seconds and peak RSS are
the child's own (wait4). Inputs: one long recording (the five English FLEURS clips and
jfk.flac back to back, 52 s, speakers at very different levels; WER against their
references) and the 25 FLEURS clips in one run (WER on the whole set, and how many clips
got their language right). Beam 5 and greedy, --threads threads, language detected.

- voiceflow: `voiceflow transcribe` (faster-whisper, int8), as users run it (beam search:
  two chunks of a recording decoded at once, a thread each; greedy: one chunk at a time on
  both threads), and with the other layout (`--workers 1` at beam 5, `--workers 2` greedy).
- whisper.cpp: pywhispercpp from PyPI (it bundles whisper.cpp and ggml), installed into a
  new environment on this one's packages. Its model is written here from the shipped
  weights (whisper.cpp's ggml layout: hyper-parameters, mel filters, the tiktoken
  vocabulary, tensors), in f16 and q8_0 (32-value blocks, one f16 scale each).
- openai-whisper CLI: `whisper` on the checkpoint voiceflow converts from the same weights.

Start-up: `voiceflow transcribe` of a 3 s clip, process start to file written, against
the transcription alone (the same clip in a process that has already transcribed once).
Prints Markdown tables; saves bench/results/peers.json.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, parser, save, table, venv_on_these_packages, write_wav
from voiceflow.text import normalize

WHISPER_CPP = "pywhispercpp==1.5.1"
# whisper.cpp's tensor types; its header's ftype carries the quantization version (2) * 1000
F32, F16, Q8_0 = 0, 1, 8
HEADER_FTYPE = {"f16": 1, "q8_0": 7 + 2 * 1000}

# Runs inside the whisper.cpp environment: transcribe each file, print one JSON line.
CPP_CHILD = r"""
import json, sys
import _pywhispercpp as pw
from pywhispercpp.model import Model
model_path, threads, beam, *files = sys.argv[1:]
beam = int(beam)
kw = {"params_sampling_strategy": 1, "beam_search": {"beam_size": beam, "patience": -1.0}}
kw = kw if beam > 1 else {}
m = Model(model_path, n_threads=int(threads), language="auto", print_progress=False,
          print_realtime=False, print_timestamps=False, **kw)
out = {}
for f in files:
    text = " ".join(s.text for s in m.transcribe(f))
    out[f] = {"text": text, "language": pw.whisper_lang_str(pw.whisper_full_lang_id(m._ctx))}
print(json.dumps(out))
"""


# Starts the command from a small process and reports its rusage: a child forked straight
# from this one would inherit this process's peak RSS (Linux keeps it across fork and exec).
LAUNCHER = r"""
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - start, "code": os.waitstatus_to_exitcode(status),
                  "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}),
      file=sys.stderr)
"""


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds from process start, CPU seconds, peak RSS and stdout."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, cwd=ROOT, env=env
    )
    *logs, last = done.stderr.strip().splitlines() or [""]
    try:
        r = json.loads(last)
    except json.JSONDecodeError:
        r = {"code": done.returncode}
    if r["code"] or done.returncode:
        raise RuntimeError(f"{cmd[:3]} failed: {chr(10).join(logs)[-800:]}")
    return {**r, "stdout": done.stdout}


# -- whisper.cpp's model, from the shipped weights ----------------------------------------------
def write_ggml(path: Path, kind: str) -> Path:
    """The shipped Whisper base in whisper.cpp's layout, ``kind`` "f16" or "q8_0"."""
    import whisper

    from voiceflow.speech.convert import _state_dict, read_ct2
    from voiceflow.speech.models import resolve_model

    sd, dims = _state_dict(read_ct2(resolve_model("base").path / "model.bin"))
    assets = Path(whisper.__file__).parent / "assets"
    with np.load(assets / "mel_filters.npz") as f:
        filters = f[f"mel_{dims['n_mels']}"].astype(np.float32)
    tokens = [
        base64.b64decode(line.split()[0])
        for line in (assets / "multilingual.tiktoken").read_bytes().splitlines()
        if line
    ]
    order = [
        "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
        "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels",
    ]  # fmt: skip
    with open(path, "wb") as f:
        f.write(struct.pack("<i", 0x67676D6C))
        f.write(struct.pack(f"<{len(order) + 1}i", *(dims[k] for k in order), HEADER_FTYPE[kind]))
        f.write(struct.pack("<ii", *filters.shape) + filters.tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            f.write(struct.pack("<i", len(token)) + token)
        for name, value in sd.items():
            data = np.asarray(value, dtype=np.float32).squeeze()
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(-1, 1)
            small = data.ndim < 2 or name.endswith(
                ("conv1.bias", "conv2.bias", "positional_embedding")
            )
            if small:
                ttype, raw = F32, data.tobytes()
            elif kind == "q8_0" and data.ndim == 2:
                ttype, raw = Q8_0, _q8_0(data)
            else:
                ttype, raw = F16, data.astype(np.float16).tobytes()  # f16 data under f16 type
            encoded = name.encode()
            f.write(struct.pack("<iii", data.ndim, len(encoded), ttype))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)) + encoded + raw)
    return path


def _q8_0(data: np.ndarray) -> bytes:
    """ggml's Q8_0 blocks along each row: an f16 scale (max|x| / 127), then 32 int8."""
    blocks = data.reshape(-1, 32)
    scale = np.abs(blocks).max(axis=1) / 127
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    q = np.round(blocks * inverse[:, None]).astype(np.int8)
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", 32)])
    out["d"], out["qs"] = scale.astype(np.float16), q
    return out.tobytes()


# -- the systems ---------------------------------------------------------------------------------
def voiceflow_run(
    files: list[Path], beam: int, threads: int, out: Path, workers: int = 0
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "voiceflow", "transcribe", *map(str, files), "-f", "json"]
    cmd += ["-o", str(out), "--beam_size", str(beam), "--threads", str(threads)]
    cmd += ["--workers", str(workers)] if workers else []
    r = run_child(cmd)
    r["results"] = {str(f): _read_json(out / f"{f.stem}.json") for f in files}
    return r


def stock_run(files: list[Path], beam: int, threads: int, out: Path) -> dict[str, Any]:
    from voiceflow.speech.convert import openai_checkpoint
    from voiceflow.speech.models import cache_dir, resolve_model

    checkpoint = openai_checkpoint(resolve_model("base").path, cache_dir())
    whisper = str(Path(sys.executable).parent / "whisper")
    cmd = [whisper, *map(str, files), "--model", str(checkpoint), "--fp16", "False"]
    cmd += ["--threads", str(threads), "-f", "json", "-o", str(out), "--verbose", "False"]
    cmd += ["--beam_size", str(beam), "--best_of", str(beam)] if beam > 1 else []
    r = run_child(cmd)
    r["results"] = {str(f): _read_json(out / f"{f.stem}.json") for f in files}
    return r


def cpp_run(
    python: Path, model: Path, files: list[Path], beam: int, threads: int
) -> dict[str, Any]:
    r = run_child(
        [str(python), "-c", CPP_CHILD, str(model), str(threads), str(beam), *map(str, files)]
    )
    r["results"] = json.loads(r["stdout"].strip().splitlines()[-1])
    return r


def _read_json(path: Path) -> dict[str, str]:
    d = json.loads(path.read_text(encoding="utf-8"))
    return {"text": d["text"], "language": d.get("language") or ""}


# -- inputs and scores ---------------------------------------------------------------------------
def inputs(data: Path, folder: Path) -> tuple[Path, str, list[Path], dict[str, str], Path]:
    """The long recording and its reference; the FLEURS clips as WAV and their references;
    a 3 s clip."""
    from bench.asr import clip
    from voiceflow.speech.audio import load_audio

    audio, reference = clip(data)
    long = folder / "long.wav"
    write_wav(long, audio)
    clips, refs = [], {}
    for ogg in sorted((data / "fleurs").glob("fleurs-*.ogg")):
        wav = folder / "fleurs" / f"{ogg.stem}.wav"
        wav.parent.mkdir(exist_ok=True)
        write_wav(wav, load_audio(ogg))  # whisper.cpp's reader takes 16 kHz 16-bit WAV
        clips.append(wav)
        refs[str(wav)] = ogg.with_suffix(".txt").read_text(encoding="utf-8")
    short = folder / "short.wav"
    write_wav(short, load_audio(data / "jfk.flac")[: 3 * 16000])
    return long, reference, clips, refs, short


def wer(results: dict[str, dict[str, str]], refs: dict[str, str]) -> float:
    import jiwer

    keys = sorted(refs)
    return float(
        jiwer.wer([normalize(refs[k]) for k in keys], [normalize(results[k]["text"]) for k in keys])
    )


def language_right(results: dict[str, dict[str, str]]) -> int:
    return sum(r["language"] == Path(f).stem.split("-")[1] for f, r in results.items())


def startup(short: Path, threads: int, out: Path, repeat: int) -> dict[str, float]:
    """`voiceflow transcribe` of a 3 s clip from process start, and the transcription alone."""
    total = min(
        run_child([sys.executable, "-m", "voiceflow", "transcribe", str(short), "-o", str(out),
                   "-f", "txt", "--threads", str(threads)])["wall_s"]
        for _ in range(repeat)
    )  # fmt: skip
    code = (
        "import time, sys\n"
        "from voiceflow.speech.transcriber import SpeechModel\n"
        f"m = SpeechModel(threads={threads}); m.transcribe({str(short)!r})\n"
        "best = 1e9\n"
        f"for _ in range({max(2, repeat)}):\n"
        "    t = time.perf_counter()\n"
        f"    m.transcribe({str(short)!r})\n"
        "    best = min(best, time.perf_counter() - t)\n"
        "print(best)\n"
    )
    alone = float(run_child([sys.executable, "-c", code])["stdout"].strip().splitlines()[-1])
    return {"total_s": total, "transcription_s": alone, "startup_s": total - alone}


def other(beam: int) -> int:
    """The decoders at once that voiceflow does not choose for ``beam``: two for beam
    search, one for greedy."""
    return 1 if beam > 1 else 2


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-stock", action="store_true", help="leave out the openai-whisper CLI")
    p.add_argument("--recording-only", action="store_true", help="leave out the FLEURS clips")
    p.set_defaults(repeat=1)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vf-peers-"))
    long, reference, clips, refs, short = inputs(args.data, tmp)
    long_ref = {str(long): reference}

    python = venv_on_these_packages(tmp / "cpp")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    subprocess.run([*pip, WHISPER_CPP], check=True, capture_output=True)
    models = {kind: write_ggml(tmp / f"ggml-base-{kind}.bin", kind) for kind in ("f16", "q8_0")}

    def cpp(model: Path) -> Any:
        return lambda files, beam, out: cpp_run(python, model, files, beam, args.threads)

    systems: list[tuple[str, Any]] = [
        ("voiceflow", lambda files, beam, out: voiceflow_run(files, beam, args.threads, out)),
        (  # the layout voiceflow does not pick by itself for this beam
            "voiceflow --workers {other}",
            lambda files, beam, out: voiceflow_run(files, beam, args.threads, out, other(beam)),
        ),
        *[(f"whisper.cpp {kind}", cpp(model)) for kind, model in models.items()],
    ]
    if not args.skip_stock:
        stock = ("openai-whisper CLI", lambda f, beam, out: stock_run(f, beam, args.threads, out))
        systems.append(stock)
    fleurs = f"{len(clips)} FLEURS clips"
    inputs_ = [("60 s recording", [long], long_ref), (fleurs, clips, refs)]
    inputs_ = inputs_[:1] if args.recording_only else inputs_

    rows: list[dict[str, Any]] = []
    for beam in (5, 1):
        for name, fn in systems:
            name = name.format(other=other(beam))
            for label, files, ref in inputs_:
                best: dict[str, Any] | None = None
                for i in range(args.repeat):
                    out = tmp / "out" / f"{name}-{beam}-{label}-{i}".replace(" ", "_")
                    out.mkdir(parents=True)
                    r = fn(files, beam, out)
                    best = r if best is None or r["wall_s"] < best["wall_s"] else best
                assert best is not None
                row = {
                    "system": name, "beam": beam, "input": label,
                    "wall_s": round(best["wall_s"], 2), "cpu_s": round(best["cpu_s"], 2),
                    "cpu_per_wall": round(best["cpu_s"] / best["wall_s"], 2),
                    "rss_mb": round(best["rss_mb"]), "wer": round(wer(best["results"], ref), 4),
                }  # fmt: skip
                if len(files) > 1:
                    row["language_right"] = language_right(best["results"])
                rows.append(row)
                print(f"  {name} beam {beam} {label}: {row['wall_s']} s", file=sys.stderr)
    start = startup(short, args.threads, tmp / "startup", max(3, args.repeat))

    def cell(r: dict[str, Any]) -> list[Any]:
        return [
            r["system"], r["beam"], r["input"], f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
            f"{r['cpu_per_wall']:.2f}", r["rss_mb"], f"{100 * r['wer']:.1f} %",
            f"{r['language_right']}/{len(clips)}" if "language_right" in r else "",
        ]  # fmt: skip

    headers = ["system", "beam", "input", "wall s", "CPU s", "CPU/wall", "peak RSS MB"]
    print(f"Whisper base from the shipped weights, {args.threads} threads, best of {args.repeat}")
    print(table([*headers, "WER", "language"], [cell(r) for r in rows]))
    by = {(r["system"], r["beam"], r["input"]): r for r in rows}
    ratios = []
    for beam in (5, 1):
        for system in ("voiceflow", f"voiceflow --workers {other(beam)}"):
            for label, _, _ in inputs_:
                ours, cpp = by[system, beam, label], by["whisper.cpp f16", beam, label]
                wall, rss = ours["wall_s"] / cpp["wall_s"], ours["rss_mb"] / cpp["rss_mb"]
                ratios.append([system, label, beam, f"{wall:.2f}x", f"{rss:.2f}x"])
    print("\nvoiceflow / whisper.cpp f16")
    print(table(["voiceflow", "input", "beam", "wall", "peak RSS"], ratios))
    print(
        f"\nStart-up (3 s clip): {start['total_s']:.2f} s from process start to file, "
        f"{start['transcription_s']:.2f} s of it transcription, {start['startup_s']:.2f} s start-up"
    )
    save("peers", args, {"rows": rows, "startup": start})
    return 0


if __name__ == "__main__":
    sys.exit(main())
