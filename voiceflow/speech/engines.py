"""Speech engines: the seam between voiceflow and a Whisper implementation.

An engine knows how to load its weights, score languages on a clip, and decode one clip of
at most 30 s. Everything else (audio, voice activity, chunking, language per chunk,
translation, hallucination filters) lives once in ``transcriber.py`` for all engines.
"""

from __future__ import annotations

import logging
import os
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voiceflow import malloc
from voiceflow.errors import MissingDependencyError, VoiceflowError
from voiceflow.messages import Segment, Word
from voiceflow.speech.models import ModelSource, cache_dir

log = logging.getLogger(__name__)

# A clip shorter than Whisper's 30 s window is encoded over its length plus this margin, and
# at least DecodeOptions.min_window_s; see FasterWhisperEngine._encode_fitted.
FIT_MARGIN_FRAMES = 300
_PROBE = np.zeros(1600, dtype=np.float32)  # a moment of silence: see FasterWhisperEngine.decode


@dataclass(frozen=True)
class DecodeOptions:
    task: str = "transcribe"
    beam_size: int = 5
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    hotwords: str | None = None
    word_timestamps: bool = False
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    # Conditioning on earlier text lets one hallucination seed the next: off by default.
    condition_on_previous_text: bool = False
    # The shortest encoder input for a short clip (faster-whisper): 10 s encodes twice as
    # fast as 20 s but changed words in short commands, so it is for partial text only.
    min_window_s: float = 20.0


@dataclass(frozen=True)
class Decoding:
    """One clip's language and its segments; decoding runs when ``segments()`` is called,
    so a caller that rejects the detected language pays only for detection."""

    language: str
    language_probs: dict[str, float]
    segments: Callable[[], list[Segment]]


class SpeechEngine(Protocol):
    name: str
    multilingual: bool
    parallel: int  # decodes that may run at once (the chunks of one recording)

    def language_probs(self, audio: np.ndarray) -> dict[str, float]: ...

    def decode(
        self, audio: np.ndarray, language: str | None, options: DecodeOptions
    ) -> Decoding: ...


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _int8_copy(path: Path) -> Path:
    """A float16 model's int8 copy (made once; loads 1 s sooner on 2 cores, same results),
    or the folder itself where the copy cannot be written."""
    from voiceflow.speech.convert import int8_model

    try:
        return int8_model(path, cache_dir())
    except OSError:
        return path


class FasterWhisperEngine:
    """CTranslate2 through faster-whisper: int8 on CPU by default, the fastest engine here."""

    name = "faster-whisper"
    fit_window = True  # see _encode_fitted

    def __init__(
        self,
        source: ModelSource,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        workers: int = 0,
    ) -> None:
        if source.kind != "ct2":
            raise VoiceflowError(
                f"faster-whisper needs a CTranslate2 model, {source.path} is an openai-whisper "
                "checkpoint: use --engine openai-whisper"
            )
        try:
            _import_on_first_use("av")  # faster-whisper imports PyAV for files; it is given arrays
            from faster_whisper import WhisperModel
        except ImportError:
            raise MissingDependencyError(
                "faster-whisper", "faster", "the faster-whisper engine"
            ) from None
        if device == "auto":  # asked of CTranslate2, not torch: torch may not be loaded
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() else "cpu"
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        if workers < 0:
            raise VoiceflowError(f"workers must be 0 (automatic) or more, not {workers}")
        self.multilingual = source.multilingual
        self.compute_type = compute_type
        path = source.path
        if device == "cpu" and compute_type in ("int8", "int8_float32"):
            path = _int8_copy(path)
        self.parallel, self.threads = split_threads(device, threads, workers)
        # One encoder pass at a time: each holds ~150 MB of attention buffers for a moment,
        # and the second worker's decoding keeps the other core busy meanwhile.
        self._encoding = threading.Lock()
        self.model = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=self.threads,
            num_workers=self.parallel,
            local_files_only=True,
        )

    def language_probs(self, audio: np.ndarray) -> dict[str, float]:
        return self._language_scores(self._encode(audio, DecodeOptions.min_window_s)[1])

    def _encode(self, audio: np.ndarray, min_window_s: float) -> tuple[np.ndarray, Any]:
        try:
            return self._encode_fitted(audio, min_window_s)
        except RuntimeError as e:
            if "libcublas" in str(e) or "libcudnn" in str(e):
                # CTranslate2's wheels are built against CUDA 12; a CUDA 13 machine lacks them
                raise VoiceflowError(
                    f"faster-whisper cannot run on this GPU ({e}): CTranslate2 needs CUDA 12's "
                    "cuBLAS and cuDNN 9 (pip install nvidia-cublas-cu12 nvidia-cudnn-cu12), or "
                    "use --engine openai-whisper, or --device cpu"
                ) from None
            raise

    def _encode_fitted(self, audio: np.ndarray, min_window_s: float) -> tuple[np.ndarray, Any]:
        """Log-mel features of the clip and the encoding of its first window.

        A clip shorter than the window is encoded over its own length plus a margin, at
        least ``min_window_s`` (``fit_window``), rather than padded to 30 s: the encoder's
        cost grows faster than linearly with its input, so short utterances encode over
        twice as fast, with the same word error and language ID on the reference clips at
        20 s (docs/benchmarks.md).
        """
        from faster_whisper.audio import pad_or_trim

        features = self.model.feature_extractor(audio)
        window = self.model.feature_extractor.nb_max_frames
        if not self.fit_window:
            return features, self._encode_window(pad_or_trim(features[:, :window]))
        fitted = -(-(features.shape[-1] + FIT_MARGIN_FRAMES) // 100) * 100
        frames = min(window, max(int(min_window_s * 100), fitted))  # 100 frames a second
        padded = pad_or_trim(features[:, :window], frames)
        # Pad with the log-mel of silence, as Whisper saw in training (openai-whisper pads
        # the audio with zeros), not with 0.0: short inputs are sensitive to it.
        padded[:, features.shape[-1] :] = max(-1.5, float(features.max()) - 2.0)
        return features, self._encode_window(padded)

    def _encode_window(self, features: np.ndarray) -> Any:
        with self._encoding:
            encoded = self.model.encode(features)
            if self.parallel > 1:
                malloc.trim()  # the attention buffers, before another thread's pass
            return encoded

    def _language_scores(self, encoded: Any) -> dict[str, float]:
        return {token[2:-2]: float(p) for token, p in self.model.model.detect_language(encoded)[0]}

    def decode(self, audio: np.ndarray, language: str | None, options: DecodeOptions) -> Decoding:
        o = options
        lang, probs = language or "en", {language or "en": 1.0}
        try:
            # transcribe() validates and assembles the options; given a moment of silence it
            # costs nothing (its generator is not started): the clip's features come from
            # _encode, computed once.
            _, info = self.model.transcribe(_PROBE, language=lang, **_kwargs(o))
            # Detection and decoding share one encoder pass (faster-whisper alone would
            # encode the first window twice), and that pass is fitted to the clip.
            from faster_whisper.tokenizer import Tokenizer

            features, encoded = self._encode(audio, o.min_window_s)
            if language is None and self.multilingual:
                probs = self._language_scores(encoded)
                lang = max(probs, key=lambda k: probs[k])
            tokenizer = Tokenizer(
                self.model.hf_tokenizer, self.multilingual, task=o.task, language=lang
            )
            segments = self.model.generate_segments(
                features, tokenizer, info.transcription_options, False, encoded
            )
        except (AttributeError, TypeError, ImportError):  # another faster-whisper version
            log.debug("decoding through faster-whisper's internals failed", exc_info=True)
            if language is None and self.multilingual:
                _, info = self.model.transcribe(audio, language=None, vad_filter=False)
                lang, probs = info.language, dict(info.all_language_probs or ())
            segments, _ = self.model.transcribe(audio, language=lang, **_kwargs(o))

        def collect() -> list[Segment]:
            return [
                _segment(s, lang, [(w.start, w.end, w.word, w.probability) for w in s.words or ()])
                for s in segments  # a lazy generator: decoding happens here
            ]

        return Decoding(lang, probs, collect)


class _LoadedOnFirstUse(types.ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is asked for.

    importlib's LazyLoader does not serve here: an ``import`` of the module reads its
    ``__spec__``, which loads it. This has ``__spec__`` of its own and loads the real module
    (under a lock) only for other attributes."""

    def __init__(self, name: str, spec: Any) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self._lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:  # only for attributes not set on the stand-in
        import importlib
        import sys

        with self._lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
        return getattr(real, attr)


def _import_on_first_use(name: str) -> None:
    """Put a stand-in for module ``name`` in ``sys.modules`` unless it is loaded already:
    importing it then costs nothing until it is used."""
    import importlib.util
    import sys

    if name not in sys.modules and (spec := importlib.util.find_spec(name)) is not None:
        sys.modules[name] = _LoadedOnFirstUse(name, spec)


def split_threads(device: str, threads: int, workers: int) -> tuple[int, int]:
    """(decodes at once, threads each) from the total ``threads`` (0: every core here) and
    ``workers`` (0: automatic).

    On a CPU a decoder step is too small to share: one decode ran 35 % faster on one thread
    than on two (OpenMP's hand-offs cost more than the second core gives), while the
    encoder gains from two. So by default each of two workers gets half the cores, and the
    chunks of a recording decode side by side (docs/benchmarks.md). A GPU runs one.
    """
    if device != "cpu":
        return workers or 1, threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    total = threads or cores or 1
    parallel = workers or min(2, total)
    return parallel, max(1, total // parallel)


def _kwargs(o: DecodeOptions) -> dict[str, Any]:
    """DecodeOptions as faster-whisper's transcribe() arguments (its own VAD off)."""
    return {
        "task": o.task,
        "beam_size": o.beam_size,
        "best_of": o.beam_size,
        "temperature": list(o.temperature),
        "initial_prompt": o.initial_prompt,
        "hotwords": o.hotwords,
        "word_timestamps": o.word_timestamps,
        "no_speech_threshold": o.no_speech_threshold,
        "log_prob_threshold": o.log_prob_threshold,
        "compression_ratio_threshold": o.compression_ratio_threshold,
        "condition_on_previous_text": o.condition_on_previous_text,
        "vad_filter": False,
    }


def _segment(s: Any, language: str, words: list[tuple[Any, Any, str, Any]]) -> Segment:
    """A library segment (object or dict) as voiceflow's Segment, with plain floats."""

    def get(key: str) -> Any:
        return s[key] if isinstance(s, dict) else getattr(s, key)

    return Segment(
        id=int(get("id")),
        start=float(get("start")),
        end=float(get("end")),
        text=get("text"),
        language=language,
        avg_logprob=float(get("avg_logprob")),
        no_speech_prob=float(get("no_speech_prob")),
        compression_ratio=float(get("compression_ratio")),
        temperature=float(get("temperature") or 0.0),
        words=tuple(Word(float(a), float(b), w, float(p)) for a, b, w, p in words),
    )


class OpenAIWhisperEngine:
    """The reference implementation; CTranslate2 weights are converted to a checkpoint once."""

    name = "openai-whisper"
    parallel = 1  # torch already spreads one decode over the cores

    def __init__(self, source: ModelSource, device: str = "auto", threads: int = 0) -> None:
        try:
            import torch
            import whisper
        except ImportError:
            raise MissingDependencyError(
                "openai-whisper", "all", "the openai-whisper engine"
            ) from None
        from voiceflow.speech.convert import alignment_heads, openai_checkpoint

        self.device = resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        checkpoint = source.path
        if source.kind == "ct2":
            checkpoint = openai_checkpoint(source.path, cache_dir())
        self.model = whisper.load_model(str(checkpoint), device=self.device)
        if source.kind == "ct2" and (heads := alignment_heads(source.path)):
            mask = torch.zeros(
                self.model.dims.n_text_layer, self.model.dims.n_text_head, dtype=torch.bool
            )
            for layer, head in heads:
                mask[layer, head] = True
            self.model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        self.multilingual = bool(self.model.is_multilingual)

    def language_probs(self, audio: np.ndarray) -> dict[str, float]:
        import whisper

        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), self.model.dims.n_mels).to(
            self.device
        )
        _, probs = self.model.detect_language(mel)
        return {k: float(v) for k, v in probs.items()}

    def decode(self, audio: np.ndarray, language: str | None, options: DecodeOptions) -> Decoding:
        import whisper

        probs = self.language_probs(audio) if language is None else {language: 1.0}
        lang = language or max(probs, key=lambda k: probs[k])
        o = options
        prompt = " ".join(p for p in (o.hotwords, o.initial_prompt) if p) or None
        kwargs: dict[str, Any] = {}
        if o.beam_size > 1:
            kwargs.update(beam_size=o.beam_size, best_of=o.beam_size)

        def collect() -> list[Segment]:
            result = whisper.transcribe(
                self.model,
                audio,
                language=lang,
                task=o.task,
                temperature=o.temperature,
                initial_prompt=prompt,
                word_timestamps=o.word_timestamps,
                verbose=None,
                no_speech_threshold=o.no_speech_threshold,
                logprob_threshold=o.log_prob_threshold,
                compression_ratio_threshold=o.compression_ratio_threshold,
                condition_on_previous_text=o.condition_on_previous_text,
                fp16=self.device == "cuda",
                **kwargs,
            )
            return [
                _segment(
                    s,
                    lang,
                    [
                        (w["start"], w["end"], w["word"], w["probability"])
                        for w in s.get("words", ())
                    ],
                )
                for s in result["segments"]
            ]

        return Decoding(lang, probs, collect)


def create_engine(
    source: ModelSource,
    engine: str = "auto",
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
    workers: int = 0,
) -> SpeechEngine:
    threads = threads or int(os.environ.get("VOICEFLOW_THREADS", "0") or 0)
    if engine == "auto":
        engine = (
            "faster-whisper"
            if source.kind == "ct2" and _has("faster_whisper")
            else "openai-whisper"
        )
    if engine == "faster-whisper":
        return FasterWhisperEngine(source, device, compute_type, threads, workers)
    if engine == "openai-whisper":
        return OpenAIWhisperEngine(source, device, threads)
    raise VoiceflowError(f"unknown engine {engine!r}: use auto, faster-whisper or openai-whisper")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
