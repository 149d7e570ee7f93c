"""`voiceflow serve` as a user runs it, driven by the official `openai` SDK on loopback."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import wave

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import SERVER_KEY as KEY
from tests.conftest import normalize, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(voiceflow_server):
    return voiceflow_server.url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=300)


def test_transcription_json_and_text(client, data):
    with open(data / "jfk.flac", "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert "ask not what your country can do for you" in normalize(r.text)
    with open(data / "jfk.flac", "rb") as f:
        text = client.audio.transcriptions.create(model="base", file=f, response_format="text")
    assert isinstance(text, str) and "fellow americans" in normalize(text)


def test_verbose_json_has_openai_shape_with_words_and_segments(client, data):
    with open(data / "jfk.flac", "rb") as f:
        r = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert r.language == "english" and 10.5 < r.duration < 11.5
    assert r.segments and r.words
    first = r.segments[0].model_dump()
    for key in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob"):
        assert key in first
    assert {"compression_ratio", "no_speech_prob"} <= set(first)
    assert first["language"] == "en"  # voiceflow's extra: the language of each segment
    words = [w.word.lower().strip(",.") for w in r.words]
    assert "country" in words
    assert all(a.start <= b.start for a, b in zip(r.words, r.words[1:], strict=False))


def test_requested_language_is_honoured(client, data):
    clip = data / "fleurs" / "fleurs-de-000.ogg"
    with open(clip, "rb") as f:
        r = client.audio.transcriptions.create(
            model="whisper-1", file=f, language="de", response_format="verbose_json"
        )
    assert r.language == "german"
    reference = (clip.with_suffix(".txt")).read_text().split()
    heard = set(normalize(r.text).split())
    assert len(heard & {normalize(w) for w in reference}) >= len(reference) // 2


def test_subtitle_formats(client, data):
    with open(data / "jfk.flac", "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "," in srt.split("\n")[1]
    with open(data / "jfk.flac", "rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:0") and "country" in vtt


def test_streamed_transcription_events(client, data):
    with open(data / "jfk.flac", "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.strip() == events[-1].text.strip()
    assert "ask not" in normalize(events[-1].text)


def test_translation_to_english(client, data):
    with open(data / "fleurs" / "fleurs-es-000.ogg", "rb") as f:
        r = client.audio.translations.create(model="whisper-1", file=f)
    words = normalize(r.text).split()
    assert len(words) > 5 and sum(w in {"the", "of", "and", "to", "a", "is"} for w in words) >= 2


def test_models_are_listed(client):
    ids = [m.id for m in client.models.list().data]
    assert "whisper-1" in ids and "base" in ids
    assert any("tiny-sd" in i for i in ids)  # the image node's model


def test_image_generation_through_the_graph(client):
    r = client.images.generate(prompt="a lighthouse at dawn", response_format="b64_json")
    png = base64.b64decode(r.data[0].b64_json)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(prompt="a lighthouse", size="1024x1024")
    assert "64x64" in e.value.message


# -- errors, in OpenAI's shape -----------------------------------------------------------
def test_bad_audio_is_a_400_naming_the_file(client, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with open(fake, "rb") as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    body = e.value.body
    assert body["param"] == "file" and "notes.wav" in body["message"]
    with open(fake, "rb") as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-9", file=f)
    assert e.value.body["param"] == "model"


def test_bad_parameters_are_400s(client, data):
    for kwargs, param in (
        ({"response_format": "docx"}, "response_format"),
        ({"language": "xx"}, "language"),
        ({"temperature": 3.0}, "temperature"),
    ):
        with open(data / "jfk.flac", "rb") as f, pytest.raises(openai.BadRequestError) as e:
            client.audio.transcriptions.create(model="whisper-1", file=f, **kwargs)
        assert e.value.body["param"] == param


def test_a_missing_or_wrong_key_is_a_401(server, data):
    for key in ("wrong", ""):
        c = openai.OpenAI(base_url=f"{server}/v1", api_key=key or "x", max_retries=0)
        if not key:
            c = c.with_options(default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as e:
            c.models.list()
        assert e.value.body["code"] == "invalid_api_key"


def test_an_upload_over_the_cap_is_a_413(client, tmp_path):
    big = tmp_path / "big.wav"
    with wave.open(str(big), "wb") as w:  # 80 s at 16 kHz: 2.6 MB, over the 2 MB cap
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 80, dtype="<i2").tobytes())
    with open(big, "rb") as f, pytest.raises(openai.APIStatusError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    assert e.value.status_code == 413 and "2 MB" in e.value.message


def test_busy_server_answers_429_with_retry_after(server, data):
    """One job at a time and one waiting: of four at once, some are turned away."""
    audio = (data / "jfk.flac").read_bytes()

    def post() -> httpx.Response:
        return httpx.post(
            f"{server}/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {KEY}"},
            files={"file": ("jfk.flac", audio)},
            data={"model": "whisper-1"},
            timeout=300,
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: post(), range(4)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 2 and set(codes) <= {200, 429}, codes
    busy = [r for r in responses if r.status_code == 429]
    assert busy and busy[0].headers["retry-after"] == "5"
    assert busy[0].json()["error"]["type"] == "rate_limit_error"


def test_other_hosts_need_a_key():
    r = run_cli("serve", "--host", "0.0.0.0", env={"VOICEFLOW_API_KEY": ""})
    assert r.returncode != 0 and "API key" in r.stderr


def test_files_are_served_by_id_only_and_the_api_needs_the_key(server):
    for path in ("/api/files/..%2F..%2Fetc%2Fpasswd", "/api/files/%2Fetc%2Fpasswd", "/api/files/x"):
        r = httpx.get(server + path)
        assert r.status_code == 404 and "root:" not in r.text
    r = httpx.post(f"{server}/api/run", data={"text": "hello"})
    assert r.status_code == 401
    r = httpx.get(server + "/")  # the page itself asks for the key
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]


def test_run_streams_the_graphs_results(server):
    with httpx.stream(
        "POST",
        f"{server}/api/run",
        headers={"Authorization": f"Bearer {KEY}"},
        data={"text": "generate a painting of a red boat at sea"},
        timeout=300,
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    kinds = [(e.get("node"), e["type"]) for e in events]
    assert kinds[0] == ("intent", "Command") and kinds[-1] == (None, "done")
    image = next(e for e in events if e["type"] == "ImageResult")
    png = httpx.get(server + image["url"])  # by its id, without the key, as an <img> fetches
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_uploads_are_ingested_in_the_background_and_counted(server, data):
    auth = {"Authorization": f"Bearer {KEY}"}
    clip = data / "fleurs" / "fleurs-en-001.ogg"
    r = httpx.post(
        f"{server}/api/ingest",
        headers=auth,
        files=[("files", (clip.name, clip.read_bytes())), ("files", ("bad.wav", b"junk"))],
    )
    assert r.status_code == 200 and r.json()["files"] == 2
    job = r.json()["id"]
    deadline = time.monotonic() + 300
    while (progress := httpx.get(f"{server}/api/jobs/{job}", headers=auth).json())[
        "state"
    ] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert progress["done"] == 2 and progress["added"] == 1
    assert len(progress["errors"]) == 1 and "bad.wav" in progress["errors"][0]
    word = max(clip.with_suffix(".txt").read_text().split(), key=len)
    stats = httpx.get(f"{server}/api/stats", params={"phrase": word}, headers=auth).json()
    assert stats["total"] >= 1 and clip.name in stats["recordings"][0]["source"]
    audio = httpx.get(server + stats["recordings"][0]["url"], headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.content) == 100  # seekable for the player
