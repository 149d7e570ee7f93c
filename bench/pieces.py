"""What bounds live latency: the compute left once an utterance ends, whole or in pieces.

    python -m bench.pieces [--data ../shared/data] [--min_piece 2] [--tail_window 0]

Each reference clip goes through the listener's segmenter (clips it keeps as one
utterance only). For each utterance, with the listener's model layout (Whisper base, one
decoder on 2 threads, beam 5, the default graph's languages), best of --repeat:
- the encoder pass over its fitted input (at least 20 s) and the whole transcription:
  what a transcript waits for after the pause that ends speech;
- piece by piece: cut at the pauses the segmenter offers early (200 ms) that leave a
  piece of at least --min_piece s, each piece transcribed as its pause is heard, with the
  first piece's language and the text so far as prompt; once speech ends only the last
  piece is left (--tail_window S: its shortest encoder input, 0 keeps the default).
Prints both waits (p50 / p95) and the word error of both texts where a clip has a
reference; saves bench/results/pieces.json.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import best_of, parser, save, table

LANGUAGES = ["en", "es", "de", "fr", "pt"]  # the default graph's


def utterance(samples: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
    """The clip's one utterance as the listener hears it, and where its early pauses fall
    (sample offsets into it); None when the segmenter makes more than one of it."""
    from voiceflow.live.segmenter import Segmenter, SegmenterOptions

    seg = Segmenter(SegmenterOptions())
    audio = np.concatenate([samples, np.zeros(16000, np.float32)])
    heard = [u for i in range(0, len(audio), 1600) for u in seg.feed(audio[i : i + 1600])]
    heard += seg.flush()
    finals = [u for u in heard if u.final]
    if len(finals) != 1:
        return None
    whole = finals[0]
    early = [len(u.samples) for u in heard if not u.final and u.start == whole.start]
    return whole.samples, [k for k in early if k < len(whole.samples)]


def cuts(pauses: list[int], min_piece_s: float) -> list[int]:
    kept, last = [], 0
    for k in pauses:
        if (k - last) / 16000 >= min_piece_s:
            kept.append(k)
            last = k
    return kept


def measure(
    samples: np.ndarray, pauses: list[int], transcribe: Any, engine: Any, args: Any
) -> dict[str, Any]:
    """One utterance's waits, whole and in pieces, and both texts."""
    encode_s, _ = best_of(args.repeat, lambda: engine._encode_fitted(samples, 20.0))
    whole_s, whole = best_of(args.repeat, lambda: transcribe(samples))
    bounds = [0, *cuts(pauses, args.min_piece), len(samples)]
    texts: list[str] = []
    language = None
    for a, b in itertools.pairwise(bounds):
        kw: dict[str, Any] = {}
        if language:
            kw = {"language": language, "initial_prompt": " ".join(texts)}
            if args.tail_window:
                kw["min_window_s"] = args.tail_window
        start = time.perf_counter()
        t = transcribe(samples[a:b], **kw)
        tail_s = time.perf_counter() - start  # the last piece's is what counts
        language = language or t.language
        texts.append(t.text.strip())
    return {
        "seconds": round(len(samples) / 16000, 2),
        "pieces": len(bounds) - 1,
        "encode_s": encode_s,
        "whole_s": whole_s,
        "last_piece_s": tail_s,
        "language_whole": whole.language,
        "language_pieces": language,
        "text_whole": whole.text.strip(),
        "text_pieces": texts,
    }


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--min_piece", type=float, default=2.0, help="shortest piece, seconds")
    p.add_argument("--tail_window", type=float, default=0.0, help="last piece's encoder input")
    args = p.parse_args()

    import jiwer

    from voiceflow.speech.audio import load_audio
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.text import normalize

    data: Path = args.data
    clips = [*sorted((data / "commands").glob("*.wav")), data / "jfk.flac"]
    clips += sorted((data / "fleurs").glob("fleurs-*.ogg"))
    model = SpeechModel.shared("base", "auto", "auto", "auto", 2, 1)
    engine: Any = model.engine

    def transcribe(x: np.ndarray, **kw: Any) -> Any:
        return model.transcribe(x, languages=LANGUAGES, beam_size=5, vad=False, **kw)

    transcribe(np.zeros(16000, np.float32))  # loads the model
    rows, skipped = [], []
    for clip in clips:
        found = utterance(load_audio(clip))
        if found is None:
            skipped.append(clip.name)
            continue
        row = {"clip": clip.name, **measure(*found, transcribe, engine, args)}
        reference = clip.with_suffix(".txt")
        if reference.exists():
            ref = normalize(reference.read_text(encoding="utf-8"))
            row["words"] = len(ref.split())
            row["wer_whole"] = jiwer.wer(ref, normalize(row["text_whole"]) or "-")
            pieces = normalize(" ".join(row["text_pieces"]))
            row["wer_pieces"] = jiwer.wer(ref, pieces or "-")
        rows.append(row)
        print(
            f"{clip.name:28} {row['seconds']:5.1f} s, {row['pieces']} pieces: encode "
            f"{row['encode_s']:.2f} s, whole {row['whole_s']:.2f} s, "
            f"last piece {row['last_piece_s']:.2f} s",
            flush=True,
        )

    def pct(key: str, q: float) -> float:
        return float(np.percentile([r[key] for r in rows], q))

    scored = [r for r in rows if "words" in r]
    words = sum(r["words"] for r in scored)

    def wer(key: str) -> str:
        return f"{100 * sum(r[key] * r['words'] for r in scored) / words:.1f} %"

    disagree = sum(r["language_whole"] != r["language_pieces"] for r in rows)
    print(f"\n{len(rows)} utterances ({len(skipped)} clips heard as more than one, left out)")
    print(
        table(
            ["after speech ends", "p50 s", "p95 s", "WER", "languages differ"],
            [
                ["encoder pass alone", pct("encode_s", 50), pct("encode_s", 95), "", ""],
                ["whole utterance", pct("whole_s", 50), pct("whole_s", 95), wer("wer_whole"), ""],
                [
                    f"last piece (>= {args.min_piece:g} s pieces)",
                    pct("last_piece_s", 50),
                    pct("last_piece_s", 95),
                    wer("wer_pieces"),
                    disagree,
                ],
            ],
        )
    )
    save("pieces", args, {"rows": rows, "skipped": skipped})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
