"""Language ID and word error rate on the 25 FLEURS clips (5 languages) with Whisper base."""

from __future__ import annotations

import pytest

from bench.wer import evaluate, table

pytestmark = pytest.mark.slow

# Measured with `python bench/wer.py` (base, faster-whisper int8, beam 5; docs/benchmarks.md):
# de 0.123, en 0.087, es 0.061, fr 0.317, pt 0.216. Each bound is that plus 0.06, so a
# change that costs a language a few words in its five clips fails here.
WER_BOUNDS = {"de": 0.18, "en": 0.15, "es": 0.12, "fr": 0.38, "pt": 0.28}


def test_language_id_and_wer_per_language(faster_base, data):
    results = evaluate(faster_base, folder=data / "fleurs")
    print("\n" + table(results))
    assert len(results) == 25
    wrong = [(r.name, r.detected) for r in results if r.detected != r.language]
    assert wrong == []
    for lang, bound in WER_BOUNDS.items():
        rs = [r for r in results if r.language == lang]
        wer = sum(r.wer * r.reference_words for r in rs) / sum(r.reference_words for r in rs)
        assert wer < bound, (lang, wer)
