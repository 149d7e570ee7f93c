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


def test_int8_copy_transcribes_exactly_as_the_float16_source(data, tmp_path):
    """The int8 copy (which saves CTranslate2 quantizing on every load) holds the weights
    CTranslate2 would quantize to: the same encoder output, the same beam-5 transcripts."""
    import ctranslate2
    from faster_whisper import WhisperModel

    from voiceflow.speech.convert import _weight_dtype, int8_model

    source = resolve_model("base").path
    copy = int8_model(source, tmp_path)
    assert copy != source and _weight_dtype(copy / "model.bin") == np.int8
    assert int8_model(source, tmp_path) == copy  # made once
    assert int8_model(copy, tmp_path) == copy  # an int8 folder is used as it is
    assert (copy / "model.bin").stat().st_size < 0.6 * (source / "model.bin").stat().st_size

    features = np.zeros((1, 80, 3000), dtype=np.float32)
    features[0, :, :1100] = np.random.default_rng(0).standard_normal((80, 1100))
    encoded = [
        np.asarray(
            ctranslate2.models.Whisper(str(path), compute_type="int8").encode(
                ctranslate2.StorageView.from_array(features)
            )
        )
        for path in (source, copy)
    ]
    assert np.array_equal(*encoded)
    for clip in (data / "jfk.flac", data / "fleurs" / "fleurs-de-000.ogg"):
        texts = []
        for path in (source, copy):
            model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)
            segments, info = model.transcribe(str(clip), beam_size=5)
            texts.append([(s.text, s.avg_logprob) for s in segments] + [info.language])
        assert texts[0] == texts[1] and len(texts[0]) > 1
