"""The closed set of ``when:`` predicates a route may carry.

Only these four exist, each validated when the graph loads: no expressions, no templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from voiceflow.messages import Command, Message, Transcript

PREDICATES = ("intent", "text_matches", "language_in", "min_language_prob")
NO_INTENT = "none"


@dataclass(frozen=True)
class When:
    intent: tuple[str, ...] | None = None
    text_matches: re.Pattern[str] | None = None
    language_in: tuple[str, ...] | None = None
    min_language_prob: float | None = None

    def narrows_to(self) -> tuple[type, ...] | None:
        """Message types that can pass, when the predicate implies them."""
        if self.intent is None:
            return None
        kinds: list[type] = []
        if NO_INTENT in self.intent:
            kinds.append(Transcript)
        if any(i != NO_INTENT for i in self.intent):
            kinds.append(Command)
        return tuple(kinds)

    def __call__(self, msg: Message) -> bool:
        transcript = msg.transcript if isinstance(msg, Command) else msg
        if self.intent is not None:
            intent = msg.intent if isinstance(msg, Command) else NO_INTENT
            if intent not in self.intent or not isinstance(msg, (Command, Transcript)):
                return False
        if self.text_matches is not None and not (
            isinstance(transcript, Transcript) and self.text_matches.search(transcript.text)
        ):
            return False
        if self.language_in is not None and not (
            isinstance(transcript, Transcript) and transcript.language in self.language_in
        ):
            return False
        return self.min_language_prob is None or (
            isinstance(transcript, Transcript)
            and transcript.language_probability >= self.min_language_prob
        )


def parse_when(raw: Any) -> When:
    """Build a predicate from config; raises ValueError with the reason when it is invalid."""
    if raw is None:
        return When()
    if not isinstance(raw, dict):
        raise ValueError(f"'when' must be a mapping of predicates ({', '.join(PREDICATES)})")
    unknown = [k for k in raw if k not in PREDICATES]
    if unknown:
        raise ValueError(
            f"unknown predicate {unknown[0]!r}; known predicates: {', '.join(PREDICATES)}"
        )
    kwargs: dict[str, Any] = {}
    if "intent" in raw:
        kwargs["intent"] = _names(raw["intent"], "intent")
    if "language_in" in raw:
        kwargs["language_in"] = _names(raw["language_in"], "language_in")
    if "text_matches" in raw:
        if not isinstance(raw["text_matches"], str):
            raise ValueError("text_matches must be a regular expression string")
        try:
            kwargs["text_matches"] = re.compile(raw["text_matches"], re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"text_matches is not a valid regular expression: {e}") from None
    if "min_language_prob" in raw:
        p = raw["min_language_prob"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"min_language_prob must be a number from 0 to 1, got {p!r}")
        kwargs["min_language_prob"] = float(p)
    return When(**kwargs)


def _names(value: Any, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"{key} must be a name or a non-empty list of names")
    return tuple(items)
