"""Transcripts in the OpenAI audio API's response formats."""

from __future__ import annotations

import json
from typing import Any

from voiceflow import LANGUAGES, format_timestamp, render_transcript
from voiceflow.messages import Segment, Transcript

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def language_name(code: str) -> str:
    """OpenAI names the language in full ("english"); an unknown code stays as it is."""
    return LANGUAGES.get(code, code)


def segment_json(s: Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "seek": int(s.start * 100),  # 10 ms frames, as Whisper counts them
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "tokens": [],  # voiceflow keeps text, not token ids
        "temperature": s.temperature,
        "avg_logprob": s.avg_logprob,
        "compression_ratio": s.compression_ratio,
        "no_speech_prob": s.no_speech_prob,
        "language": s.language,  # voiceflow's per-segment language (an extra field)
    }


def verbose_json(t: Transcript, task: str, words: bool, segments: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task": task,
        "language": language_name(t.language),
        "duration": t.duration,
        "text": t.text,
    }
    if segments:
        out["segments"] = [segment_json(s) for s in t.segments]
    if words:
        out["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in t.segments
            for w in s.words
        ]
    return out


def webvtt(t: Transcript) -> str:
    """WebVTT as OpenAI writes it: hours always shown (the whisper CLI's file omits them)."""
    cues = []
    for s in t.segments:
        start = format_timestamp(s.start, always_include_hours=True)
        end = format_timestamp(s.end, always_include_hours=True)
        cues.append(f"{start} --> {end}\n{s.text.strip().replace('-->', '->')}\n\n")
    return "WEBVTT\n\n" + "".join(cues)


def render(t: Transcript, response_format: str, task: str, granularities: set[str]) -> str:
    """The response body for ``response_format`` (one of FORMATS)."""
    if response_format == "text":
        return t.text + "\n"
    if response_format == "srt":
        return render_transcript(t, "srt")
    if response_format == "vtt":
        return webvtt(t)
    if response_format == "verbose_json":
        body = verbose_json(t, task, "word" in granularities, "segment" in granularities)
    else:
        body = {"text": t.text}
    return json.dumps(body, ensure_ascii=False)


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as the OpenAI SDK reads it."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
