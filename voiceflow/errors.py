"""User-facing errors: each says what went wrong and what to do, in one line."""

from __future__ import annotations


class VoiceflowError(Exception):
    """Base class. The CLI prints ``str(error)`` on one line and exits non-zero."""


class AudioError(VoiceflowError):
    """An input could not be read as audio."""


class ModelNotFoundError(VoiceflowError):
    """No weights could be found for a model name."""


class MissingDependencyError(VoiceflowError):
    """An optional library is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        install = f"voiceflow[{extra}]" if extra else package  # no extra: a core dependency
        super().__init__(f"{purpose} needs the '{package}' package: pip install '{install}'")


class ConfigError(VoiceflowError):
    """A graph or node configuration is invalid."""
