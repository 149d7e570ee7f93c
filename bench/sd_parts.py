"""Stable Diffusion parts built from configs, for tests and benchmarks that have no weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _byte_chars() -> list[int]:
    """GPT-2's byte-to-unicode table: printable bytes as themselves, the rest shifted."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return cs


def byte_level_tokenizer(folder: Path, max_length: int = 77) -> Any:
    """A CLIP tokenizer over the 256-symbol byte alphabet CLIP's BPE starts from (no merges).

    No installed package ships CLIP's vocabulary files; this one is enough to drive a
    pipeline, and generation speed does not depend on it.
    """
    from transformers import CLIPTokenizer

    symbols = [chr(c) for c in _byte_chars()]
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length
    )


def text_encoder_config(tokenizer: Any, **overrides: Any) -> Any:
    from transformers import CLIPTextConfig

    vocab = tokenizer.get_vocab()
    settings = {
        "vocab_size": len(vocab),
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
        "max_position_embeddings": 77,
        **overrides,
    }
    return CLIPTextConfig(**settings)
