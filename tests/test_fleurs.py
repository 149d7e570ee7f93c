"""Language ID and word error rate on the 25 FLEURS clips (5 languages) with Whisper base."""

from __future__ import annotations

import pytest

from bench.wer import evaluate, table

pytestmark = pytest.mark.slow


def test_language_id_and_wer_per_language(faster_base, data):
    results = evaluate(faster_base, folder=data / "fleurs")
    print("\n" + table(results))
    assert len(results) == 25
    correct = sum(r.detected == r.language for r in results)
    assert correct >= 23, [(r.name, r.detected) for r in results if r.detected != r.language]
    for lang in ("en", "de", "es", "fr", "pt"):
        rs = [r for r in results if r.language == lang]
        wer = sum(r.wer * r.reference_words for r in rs) / sum(r.reference_words for r in rs)
        # Whisper base's published FLEURS WERs are 10-30 % on these languages.
        assert wer < 0.45, (lang, wer)
