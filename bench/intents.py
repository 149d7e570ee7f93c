"""Commands understood as people say them: the phrasing set of tests/intent_phrasings.py
(commands and ordinary speech in five languages, none of them an example in the intent
table), written and spoken.

    python -m bench.intents [--written-only] [--show]

Written: the text (with Whisper's translation for non-English) goes to the recogniser.
Spoken: each phrasing is said by espeak-ng, heard by Whisper base (faster-whisper, 2
threads) with its own mistakes, translated as the speech node translates for the intent
node, and then recognised. Right = the expected intent and, for a command, an argument
holding the phrasing's key word; a false action = ordinary speech taken for a command.
Saves bench/results/intents.json.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from bench.common import parser, save, table
from tests.intent_phrasings import ORDINARY, PHRASINGS, VOICES, Judged, judge, say
from voiceflow.text import normalize


def written(recognizer: object) -> list[Judged]:
    return [judge(recognizer, p) for p in PHRASINGS]


def spoken(recognizer: object, folder: Path) -> Iterable[tuple[Judged, float]]:
    """Each phrasing as heard, with the word error rate of what Whisper heard."""
    import jiwer

    from voiceflow.speech.audio import load_audio
    from voiceflow.speech.transcriber import SpeechModel

    model = SpeechModel.shared("base")
    for i, p in enumerate(PHRASINGS):
        wav = say(p[1], p[0], folder / f"{i}.wav")
        heard = model.transcribe(wav, languages=list(VOICES))
        if heard.language != "en":
            heard = model.add_translation(load_audio(wav), heard)
        wer = jiwer.wer(normalize(p[1]), normalize(heard.text) or "-")
        yield judge(recognizer, p, heard.text, heard.language, heard.translation), wer


def rows(name: str, judged: list[Judged], wers: list[float]) -> list[tuple[object, ...]]:
    out = []
    for lang in [*VOICES, "all"]:
        some = [j for j in judged if lang in ("all", j.language)]
        wer = [w for j, w in zip(judged, wers, strict=True) if lang in ("all", j.language)]
        commands = [j for j in some if j.expected is not None]
        ordinary = [j for j in some if j.expected is None]
        out.append(
            (
                name,
                lang,
                len(some),
                f"{sum(j.right for j in some) / len(some):.1%}",
                f"{sum(j.argument_right for j in commands) / len(commands):.1%}",
                f"{sum(j.false_action for j in ordinary)}/{len(ordinary)}",
                f"{sum(j.heard_language == j.language for j in some)}/{len(some)}",
                f"{sum(wer) / len(wer):.2f}",
            )
        )
    return out


def summary(judged: list[Judged]) -> dict[str, float]:
    commands = [j for j in judged if j.expected is not None]
    ordinary = [j for j in judged if j.expected is None]
    return {
        "phrasings": len(judged),
        "right": sum(j.right for j in judged) / len(judged),
        "argument_right": sum(j.argument_right for j in commands) / len(commands),
        "false_actions": sum(j.false_action for j in ordinary) / len(ordinary),
    }


def main() -> int:
    from voiceflow.intents import IntentRecognizer

    p = parser(__doc__)
    p.add_argument("--written-only", action="store_true")
    p.add_argument("--show", action="store_true", help="print every wrong decision")
    args = p.parse_args()
    recognizer = IntentRecognizer.from_file()
    results: dict[str, list[Judged]] = {}
    wers: dict[str, list[float]] = {}
    start = time.perf_counter()
    results["written"] = written(recognizer)
    wers["written"] = [0.0] * len(PHRASINGS)
    per_phrase_ms = (time.perf_counter() - start) / len(PHRASINGS) * 1000
    if not args.written_only:
        if shutil.which("espeak-ng") is None:
            sys.exit("espeak-ng is not installed (scripts/setup.sh installs it)")
        with tempfile.TemporaryDirectory() as d:
            heard = list(spoken(recognizer, Path(d)))
        results["spoken"] = [j for j, _ in heard]
        wers["spoken"] = [w for _, w in heard]
    commands = len(PHRASINGS) - len(ORDINARY)
    print(f"\n{commands} commands and {len(ORDINARY)} ordinary sentences\n")
    lines = [row for name, judged in results.items() for row in rows(name, judged, wers[name])]
    headers = ["set", "language", "phrasings", "right", "argument right", "false actions"]
    print(table([*headers, "language heard", "WER heard"], lines))
    print(f"\nrecognition: {per_phrase_ms:.1f} ms a phrasing (written, meaning included)")
    if args.show:
        for name, judged in results.items():
            for j in judged:
                if not j.right or not (j.argument_right or j.expected is None):
                    print(f"{name}: {j.said!r} heard {j.heard!r} / {j.english!r}")
                    print(f"    expected {j.expected}, got {j.got} {j.argument!r}")
    save(
        "intents",
        args,
        {
            "ms_per_phrasing": per_phrase_ms,
            **{name: summary(judged) for name, judged in results.items()},
            "wer_heard": {n: sum(w) / len(w) for n, w in wers.items()},
            "wrong": {n: [asdict(j) for j in js if not j.right] for n, js in results.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
