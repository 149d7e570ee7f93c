"""Intent recognition from transcripts, driven by patterns in a YAML table.

Matching runs on normalised text (lower case, no accents, no punctuation), so Whisper's
capitals and punctuation never break it. Non-English speech matches its own language's
patterns; arguments then come from the English translation when it matches too, so an
image prompt reaches the image model in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voiceflow.errors import ConfigError
from voiceflow.text import normalize

DEFAULT_TABLE = Path(__file__).with_name("intents.yaml")


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    args: dict[str, str]


class IntentRecognizer:
    def __init__(self, table: dict[str, dict[str, list[str]]]) -> None:
        self.table: dict[str, dict[str, list[re.Pattern[str]]]] = {}
        for intent, by_lang in table.items():
            try:
                self.table[intent] = {
                    lang: [re.compile(p) for p in patterns] for lang, patterns in by_lang.items()
                }
            except (re.error, AttributeError, TypeError) as e:
                raise ConfigError(f"intent {intent!r}: invalid pattern table: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_TABLE) -> IntentRecognizer:
        try:
            data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"intent table {path}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
            raise ConfigError(f"intent table {path}: expected a mapping under 'intents'")
        return cls(data["intents"])

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
