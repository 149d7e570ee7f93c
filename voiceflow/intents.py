"""Intent recognition from transcripts: patterns first, then meaning.

Patterns (a YAML table, per language) run on normalised text (lower case, no accents, no
punctuation), so Whisper's capitals and punctuation never break them. Non-English speech
matches its own language's patterns; arguments then come from the English translation when
it matches too, so an image prompt reaches the image model in English.

What no pattern matches is compared by meaning: the English (Whisper's translation for other
languages) against example phrasings of each intent and of ordinary speech (``none``), with
the shipped sentence embedder. An intent is taken only when the speech is clearly nearer
its examples than anything ordinary: a false action is worse than a missed one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from voiceflow.errors import ConfigError, VoiceflowError
from voiceflow.text import normalize

DEFAULT_TABLE = Path(__file__).with_name("intents.yaml")
NONE = "none"  # the examples of ordinary speech
# Meaning: the mean cosine of the 3 nearest examples, taken when at least MEANING_MIN and
# MEANING_MARGIN above both ordinary speech and the next intent, and (for the built-in
# intents) only for speech in the form of a request: the embedder hears topics more than
# speech acts ("the meeting moved to Thursday" is near "what was said in the meeting").
# Set on the phrasings of tests/intent_phrasings.py (bench/intents.py).
MEANING_TOP = 3
MEANING_MIN = 0.25
MEANING_MARGIN = 0.05
log = logging.getLogger(__name__)

# What comes before the subject in a request for a picture, and before the question in a
# request to search the recordings (on normalised English).
_POLITE = (
    r"(?:(?:hey|ok|okay|so|now|please|pls|could you|can you|would you|will you|can i get|"
    r"i want you to|i d like you to|i would like you to|i want|i d like|i would like|"
    r"i wanted|let s|go ahead and|just|quickly)\s+)*"
)
# Verbs that ask for a picture ("generator": Whisper's frequent mishearing of "generate").
_PAINT_VERBS = (
    r"paint|draw|make|create|generate|generator|render|produce|design|illustrate|imagine|"
    r"visuali[sz]e|depict"
)
_PAINT_PREFIX = re.compile(
    rf"^{_POLITE}(?:(?:{_PAINT_VERBS}|sketch(?: out)?|show|give|picture)\s+)?"
    r"(?:(?:me|us|for me)\s+)?(?:(?:a|an|the|some|one)\s+)?"
    r"(?:(?:new|nice|quick|little|small|simple|beautiful)\s+)*"
    r"(?:(?:painting|picture|image|drawing|illustration|artwork|art)s?\s+)?"
    r"(?:(?:of|showing|with|depicting|featuring|about|for me)\s+)?"
)
# The form of a request, on normalised English: asking for a picture, asking a question.
_FORMS = {
    "paint": re.compile(
        rf"^{_POLITE}(?:{_PAINT_VERBS}|sketch|show me what|give me)\b|"
        r"\b(?:want|wanted|like|get|need) (?:a|an) (?:\w+ ){0,2}(?:painting|picture|image|"
        r"drawing|illustration|portrait|photo|sketch|poster|watercolou?r|artwork)\b"
    ),
    "question": re.compile(
        r"^(?:what|who|whom|whose|when|where|why|how|which|did|does|do|is|are|was|were|has|"
        r"have|had|can|could|according|in which|in what|remind|ask|search|check|query|quiz|"
        r"look|find|tell|go through|pull up)\b|\b(?:ask|search|check|query)\b"
    ),
}
_QUESTION_PREFIX = re.compile(
    rf"^{_POLITE}(?:(?:ask|search|check|query|quiz|look (?:in|through|up)|go through|"
    r"find|tell me from|remind me)\s+)?(?:(?:my|the|our|in|through|from)\s+)*"
    r"(?:(?:archive|recordings?|lectures?|meetings?|notes|classes|class|meeting notes|"
    r"calls?)\s+)?(?:(?:for|about|whether|if|to find out|and tell me)\s+)?"
)


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    args: dict[str, str]


class IntentRecognizer:
    def __init__(
        self,
        table: dict[str, dict[str, list[str]]],
        examples: dict[str, list[str]] | None = None,
        embedder: Any = None,
    ) -> None:
        self.table: dict[str, dict[str, list[re.Pattern[str]]]] = {}
        for intent, by_lang in table.items():
            try:
                self.table[intent] = {
                    lang: [re.compile(p) for p in patterns] for lang, patterns in by_lang.items()
                }
            except (re.error, AttributeError, TypeError) as e:
                raise ConfigError(f"intent {intent!r}: invalid pattern table: {e}") from None
        self.examples = {k: list(v) for k, v in (examples or {}).items()}
        if self.examples and NONE not in self.examples:
            raise ConfigError("intent examples need a 'none' list of ordinary speech")
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_TABLE) -> IntentRecognizer:
        try:
            data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"intent table {path}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
            raise ConfigError(f"intent table {path}: expected a mapping under 'intents'")
        examples = data.get("examples") or {}
        if not isinstance(examples, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in examples.values()
        ):
            raise ConfigError(f"intent table {path}: 'examples' maps intents to lists of text")
        return cls(data["intents"], examples)

    @property
    def understands_meaning(self) -> bool:
        """Whether what no pattern matches is still compared by meaning (needs English)."""
        return bool(self.examples)

    @property
    def intents(self) -> list[str]:
        return list(self.table)

    def _match(self, intent: str, text: str, language: str) -> re.Match[str] | None:
        by_lang = self.table[intent]
        # An unknown language (or an unlisted one) tries every table.
        tables = [by_lang[language]] if language in by_lang else list(by_lang.values())
        for patterns in tables:
            for pattern in patterns:
                if m := pattern.search(text):
                    return m
        return None

    def recognize(
        self, text: str, language: str = "en", english: str | None = None
    ) -> IntentMatch | None:
        """The intent of ``text`` (spoken in ``language``; ``english`` is its translation):
        by pattern, else by meaning; None for ordinary speech."""
        return self.by_pattern(text, language, english) or self.by_meaning(
            text if language in ("", "en") else english,
            text if language not in ("", "en") else None,
        )

    def by_pattern(
        self, text: str, language: str = "en", english: str | None = None
    ) -> IntentMatch | None:
        original = normalize(text)
        translated = normalize(english) if english and language != "en" else None
        for intent in self.table:
            m = self._match(intent, original, language)
            m_en = self._match(intent, translated, "en") if translated else None
            if m is None and m_en is None:
                continue
            args: dict[str, str] = {}
            if m is not None:
                args.update({k: v.strip() for k, v in m.groupdict().items() if v})
            if translated is not None:
                en_args = {k: v.strip() for k, v in (m_en.groupdict() if m_en else {}).items() if v}
                for key in list(args) or list(en_args):
                    args[f"{key}_original"] = args.get(key, "")
                    # Translation of a short command can be loose: keep it whole when no
                    # English pattern matched it.
                    args[key] = en_args.get(key, translated)
            return IntentMatch(intent, args)
        return None

    def meaning_scores(self, english: str) -> dict[str, float]:
        """For each intent (and ``none``), how near ``english`` is to its examples."""
        vectors = self._example_vectors()
        assert self._embedder is not None
        [v] = self._embedder.embed([english])
        scores = {}
        for intent, matrix in vectors.items():
            sims = np.sort(matrix @ v)[::-1][:MEANING_TOP]
            scores[intent] = float(sims.mean())
        return scores

    def by_meaning(self, english: str | None, original: str | None = None) -> IntentMatch | None:
        if not english or not english.strip() or not self.examples:
            return None
        try:
            scores = self.meaning_scores(english)
        except VoiceflowError as e:  # no embedder installed: patterns only
            log.warning("intents by meaning are off: %s", e)
            self.examples = {}
            return None
        ordinary = scores.pop(NONE)
        said = normalize(english)
        asked = english.strip().endswith("?")
        candidates = {
            intent: score
            for intent, score in scores.items()
            if intent not in _FORMS
            or _FORMS[intent].search(said)
            or (intent == "question" and asked)
        }
        if not candidates:
            return None
        intent = max(candidates, key=lambda k: candidates[k])
        best = scores[intent]
        runner_up = max([ordinary, *(v for k, v in scores.items() if k != intent)])
        if best < MEANING_MIN or best - runner_up < MEANING_MARGIN:
            return None
        args = {_ARGUMENT.get(intent, "text"): extract_argument(intent, english)}
        if original is not None:
            args = {**args, **{f"{k}_original": original for k in args}}
        return IntentMatch(intent, args)

    def warm(self) -> None:
        """Load the embedder and embed the examples now, not on the first utterance."""
        if self.understands_meaning:
            with contextlib.suppress(VoiceflowError):  # no embedder installed: patterns only
                self._example_vectors()

    def _example_vectors(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._vectors is None:
                if self._embedder is None:
                    from voiceflow.embeddings import TextEmbedder

                    self._embedder = TextEmbedder()
                self._vectors = {k: self._embedder.embed(v) for k, v in self.examples.items()}
            return self._vectors


_ARGUMENT = {"paint": "prompt", "question": "question"}


def extract_argument(intent: str, english: str) -> str:
    """The subject of a request: what to paint, what to ask. The request's own words
    ("could you draw me a picture of", "ask my lectures") are taken off; what is left, or
    the whole text when nothing is left, is the argument."""
    text = normalize(english)
    prefix = {"paint": _PAINT_PREFIX, "question": _QUESTION_PREFIX}.get(intent)
    rest = prefix.sub("", text, count=1).strip() if prefix else text
    return rest or text
