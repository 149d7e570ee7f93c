"""The docs name only files that exist."""

from __future__ import annotations

import re

from tests.conftest import ROOT

TOP = ("voiceflow/", "plugins/", "configs/", "tests/", "examples/", "bench/", "docs/")
TOP += ("scripts/", ".ci/", "speech/", "live/", "cli/")
MADE_BY_COMMANDS = {"examples/audio", "examples/lectures", "examples/archive"}  # `make demo`


def named_paths(text: str) -> set[str]:
    """Paths in `code` spans that point into the repository (first word of the span)."""
    found = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        for word in span.split():
            word = word.strip("(),;:")
            placeholder = re.search(r"[A-Z]{3,}", word)  # bench/NAME.py
            if word.startswith(TOP) and not placeholder:
                found.add(word.rstrip("/"))
    return found


def exists(path: str) -> bool:
    for base in (ROOT, ROOT / "voiceflow"):
        if any(base.glob(path)) if any(c in path for c in "*[{") else (base / path).exists():
            return True
    return False


def test_docs_name_only_files_that_exist():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs += [
        ROOT / "examples" / "custom_plugin" / "README.md",
        ROOT / "tests" / "data" / "README.md",
    ]
    missing = {
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in docs
        for path in named_paths(doc.read_text(encoding="utf-8"))
        if not exists(path) and path not in MADE_BY_COMMANDS
    }
    assert not missing, "\n".join(sorted(missing))
