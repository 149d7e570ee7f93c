"""The CTranslate2 -> openai-whisper conversion: same weights, same greedy tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceflow.speech.audio import load_audio
from voiceflow.speech.convert import convert_ct2_to_openai, openai_checkpoint, read_ct2
from voiceflow.speech.models import resolve_model

pytestmark = pytest.mark.slow


def test_greedy_tokens_identical_on_jfk(data, tmp_path):
    import ctranslate2
    import whisper

    source = resolve_model("base")
    checkpoint = convert_ct2_to_openai(source.path, tmp_path / "base.pt")
    model = whisper.load_model(str(checkpoint), device="cpu")
    audio = load_audio(data / "jfk.flac")
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), model.dims.n_mels)

    options = whisper.DecodingOptions(
        language="en", temperature=0.0, without_timestamps=True, fp16=False
    )
    reference = whisper.decode(model, mel, options)
    tokenizer = whisper.tokenizer.get_tokenizer(True, language="en", task="transcribe")

    # The same features go to CTranslate2, so only the weights and decoder differ.
    ct2 = ctranslate2.models.Whisper(str(source.path), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()[None]))
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    out = ct2.generate(features, [prompt], beam_size=1, max_length=448)[0].sequences_ids[0]
    tokens = [t for t in out if t != tokenizer.eot]

    assert len(reference.tokens) > 15
    assert tokens == reference.tokens
    assert "ask not what your country" in reference.text.lower()


def test_converted_weights_match_and_cache_is_reused(tmp_path):
    source = resolve_model("tiny.en")
    first = openai_checkpoint(source.path, tmp_path)
    mtime = first.stat().st_mtime_ns
    assert openai_checkpoint(source.path, tmp_path) == first
    assert first.stat().st_mtime_ns == mtime  # not converted twice

    state = torch.load(first, map_location="cpu")
    ct2 = read_ct2(source.path / "model.bin")
    assert state["dims"]["n_vocab"] == 51864 and state["dims"]["n_mels"] == 80
    d = state["dims"]["n_text_state"]
    qkv = ct2["decoder/layer_0/self_attention/linear_0/weight"]
    sd = state["model_state_dict"]
    np.testing.assert_array_equal(sd["decoder.blocks.0.attn.key.weight"].numpy(), qkv[d : 2 * d])
    np.testing.assert_array_equal(
        sd["encoder.ln_post.weight"].numpy(), ct2["encoder/layer_norm/gamma"]
    )
