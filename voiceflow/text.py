"""Text normalisation, the one used for matching, counting and scoring everywhere."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Lower case, accents and punctuation removed, one space between words.

    ``"Hey, Voice-Flow! Él está"`` -> ``"hey voice flow el esta"``. Intent patterns, word
    statistics, wake phrases and word error rates all compare text in this form, so
    Whisper's capitals, punctuation and accents never decide a match.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", plain).split())
