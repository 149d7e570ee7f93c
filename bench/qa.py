"""Archive answers, measured: the QA set of tests/qa_set.py on an archive of the reference
recordings.

    python -m bench.qa [--llm local|none] [--archive DIR] [--data DIR]

The archive holds the 25 FLEURS clips (five languages) and jfk.flac, ingested once into
--archive (kept for the next run; default: a temporary folder). For each question:
right (the expected fact stated and the right recording cited; for a question the
recordings cannot answer, an honest "they do not say" citing nothing), cited right,
unsupported (a stated fact, or for an unanswerable question any answer at all, that the
cited words do not hold), and the seconds `answer()` took. Saves bench/results/qa.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DATA, parser, save, table
from tests.qa_set import QA
from voiceflow.text import normalize


@dataclass
class Graded:
    question: str
    clip: str | None
    answer: str
    cited: list[str]
    right: bool
    cited_right: bool
    unsupported: bool
    seconds: float


def build_archive(folder: Path, data: Path = DATA) -> Any:
    """The reference recordings in an archive at ``folder`` (ingested once)."""
    from voiceflow_archive import Archive
    from voiceflow_archive.ingest import ingest

    archive = Archive(folder)
    clips = [*sorted((data / "fleurs").glob("*.ogg")), data / "jfk.flac"]
    report = ingest(clips, archive, {"model": "base"}, progress=False)
    assert not report.errors, report.errors
    return archive


def cited_words(archive: Any, citation: Any) -> str:
    """The original words of a cited span and their English, as the archive holds them."""
    rows = archive.db.execute(
        "SELECT s.text, s.text_en FROM segments s JOIN recordings r ON r.id = s.recording "
        "WHERE r.path = ? AND s.end > ? AND s.start < ?",
        (citation.source, citation.start, citation.end),
    ).fetchall()
    return normalize(" ".join(f"{a} {b}" for a, b in rows) + " " + citation.text)


_COMMON = """
the a an it its this that these those there they he she we you i in on at of to for by with
from as is are was were be been yes no not answer recordings recording according however
also and but or so if when where who what which why how
"""
COMMON = set(_COMMON.split())


def invented(answer: str, cited: str, question: str) -> list[str]:
    """Names and numbers in an answer that neither its cited words nor the question hold:
    facts the answer states without support (citation labels aside)."""
    import re

    held = set(cited.split()) | set(normalize(question).split()) | COMMON
    text = re.sub(r"\([^()]*\d\d:\d\d[^()]*\)", " ", answer)  # "(talk.wav 01:02-01:05)"
    words = re.findall(r"\b([A-Z][\w'-]{2,}|\d+)\b", text)
    return [w for w in words if not set(normalize(w).split()) <= held]


def grade(
    archive: Any, llm: Any, entries: list[tuple[str, str | None, tuple[str, ...]]]
) -> list[Graded]:
    from voiceflow_archive import answer

    out = []
    for question, clip, facts in entries:
        start = time.perf_counter()
        result = answer(question, archive, llm)
        seconds = time.perf_counter() - start
        text = normalize(result.text)
        cited = [Path(c.source).stem for c in result.citations]
        held = " ".join(cited_words(archive, c) for c in result.citations)
        if clip is None:
            right = cited_right = not result.citations
            unsupported = bool(result.citations)
        else:
            stated = [f for f in facts if normalize(f) in text]
            cited_right = clip in cited
            right = bool(stated) and cited_right
            unsupported = any(normalize(f) not in held for f in stated)
        unsupported = unsupported or bool(invented(result.text, held, question))
        out.append(
            Graded(question, clip, result.text, cited, right, cited_right, unsupported, seconds)
        )
    return out


def summary(graded: list[Graded]) -> dict[str, float]:
    answerable = [g for g in graded if g.clip is not None]
    refusals = [g for g in graded if g.clip is None]
    seconds = [g.seconds for g in graded]
    return {
        "questions": len(graded),
        "right": sum(g.right for g in graded) / len(graded),
        "answerable_right": sum(g.right for g in answerable) / max(1, len(answerable)),
        "cited_right": sum(g.cited_right for g in answerable) / max(1, len(answerable)),
        "refusals_right": sum(g.right for g in refusals) / max(1, len(refusals)),
        "unsupported": sum(g.unsupported for g in graded),
        "p50_s": float(np.percentile(seconds, 50)),
        "p95_s": float(np.percentile(seconds, 95)),
    }


def main() -> int:
    from voiceflow_archive import LLMConfig

    p = parser(__doc__)
    p.add_argument("--llm", default="local", choices=["local", "none"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--archive", type=Path, default=None)
    p.add_argument("--show", action="store_true", help="print every answer")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        archive = build_archive(args.archive or Path(d) / "archive", args.data)
        llm = LLMConfig(args.llm, threads=args.threads)
        graded = grade(archive, llm, QA)
    if args.show:
        for g in graded:
            mark = "ok " if g.right else "BAD"
            print(f"{mark} {g.question}\n    -> {g.answer}\n    cites {g.cited}")
    s = summary(graded)
    print(f"\n{s['questions']} questions, LLM {args.llm} ({args.threads} threads)\n")
    rows = [
        (
            f"{s['right']:.0%}",
            f"{s['answerable_right']:.0%}",
            f"{s['cited_right']:.0%}",
            f"{s['refusals_right']:.0%}",
            s["unsupported"],
            f"{s['p50_s']:.2f}",
            f"{s['p95_s']:.2f}",
        )
    ]
    headers = ["right", "answerable right", "cited right", "refusals right", "unsupported"]
    print(table([*headers, "p50 s", "p95 s"], rows))
    save(f"qa-{args.llm}", args, {"summary": s, "answers": [asdict(g) for g in graded]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
