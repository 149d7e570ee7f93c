"""Many recordings at once: in this process, or on a Ray cluster past one machine.

Both paths yield ``(path, Transcript or error, extra)`` as each file finishes, so the caller
(``voiceflow subtitles``, ``voiceflow ingest``) writes its outputs in one place, one writer,
whichever path ran. On Ray (Ray Data): reading and decoding are CPU tasks, Whisper runs in
actors that load the model once, and an optional second stage (``then``, e.g. embeddings)
runs in actors of its own. Ray restarts a killed actor and retries its file, and the
results flow back here, so a lost worker costs time, not output.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceflow.errors import MissingDependencyError, VoiceflowError
from voiceflow.messages import Transcript

log = logging.getLogger(__name__)

Result = tuple[Path, Transcript | VoiceflowError, Any]


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # a running cluster ("HOST:PORT"); None starts a local Ray
    actors: int = 0  # Whisper actors; 0: as many as the cluster's CPUs (or GPUs) hold
    cpus: float = 1.0  # per Whisper actor
    gpus: float = 0.0  # per Whisper actor
    then_cpus: float = 1.0  # per actor of the ``then`` stage


def audio_seconds(path: Path) -> float:
    """A file's duration from its container header (0 when it does not say): for the ETA."""
    try:
        import av

        with av.open(str(path)) as container:
            return max(0.0, (container.duration or 0) / 1e6)
    except Exception:  # unreadable files are reported when they are transcribed
        return 0.0


def transcribe_many(
    paths: Sequence[Path],
    model_args: dict[str, Any],
    options: dict[str, Any],
    ray: RayOptions | None = None,
    then: Callable[[Transcript], Any] | None = None,
) -> Iterator[Result]:
    """Transcribe ``paths`` with ``SpeechModel(**model_args).transcribe(path, **options)``,
    here or on Ray; yields ``(path, Transcript or VoiceflowError, then's result)`` as each
    file finishes, in any order. ``then`` runs on each transcript where it was made (on
    Ray: a copy in each actor of a stage of its own); it should load its model on first
    call, so each copy loads it once."""
    if ray is None:
        return transcribe_local(paths, model_args, options, then)
    return transcribe_on_ray(paths, model_args, options, ray, then)


def transcribe_local(
    paths: Sequence[Path],
    model_args: dict[str, Any],
    options: dict[str, Any],
    then: Callable[[Transcript], Any] | None = None,
) -> Iterator[Result]:
    """Each file in turn, in this process; the model loads on the first file."""
    from voiceflow.speech.transcriber import SpeechModel

    model: SpeechModel | None = None
    for path in paths:
        try:
            model = model or SpeechModel.shared(**model_args)
            transcript = model.transcribe(path, **options)
            yield path, transcript, then(transcript) if then else None
        except VoiceflowError as e:
            yield path, e, None


def transcribe_on_ray(
    paths: Sequence[Path],
    model_args: dict[str, Any],
    options: dict[str, Any],
    ray_options: RayOptions,
    then: Callable[[Transcript], Any] | None = None,
) -> Iterator[Result]:
    """The same results as ``transcribe_local``, computed on a Ray cluster."""
    ray = _connect(ray_options.address)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the caller shows one bar over files and audio hours
    ctx.execution_options.preserve_order = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)

    resources = ray.cluster_resources()
    unit, have = ("GPU", ray_options.gpus) if ray_options.gpus else ("CPU", ray_options.cpus)
    actors = ray_options.actors or max(1, int(resources.get(unit, 1) // have))
    actors = min(actors, len(paths)) or 1
    ds = ray.data.from_items(
        [{"path": str(p)} for p in paths], override_num_blocks=max(1, len(paths))
    )
    # Decoding is light next to Whisper: it takes no CPU slot, so it never waits for one;
    # as many at a time as there are actors keeps them fed without crowding them.
    ds = ds.map(_decode, num_cpus=0, concurrency=actors)
    # Whisper uses the threads its actor was given: more would crowd the other actors.
    # Whisper's results depend in the last bits on thread counts (CTranslate2's, and
    # OpenMP's and BLAS's, which Ray sets to the actor's CPUs): all follow --threads, so an
    # actor transcribes as one process with the same --threads on that many cores does.
    threads = model_args.get("threads") or max(1, int(ray_options.cpus))
    ds = ds.map(
        _WhisperActor,
        fn_constructor_kwargs={
            "model_args": {**model_args, "threads": threads},
            "options": options,
        },
        concurrency=actors,
        num_cpus=ray_options.cpus,
        num_gpus=ray_options.gpus,
        runtime_env={
            "env_vars": {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
        },
    )
    if then is not None:
        ds = ds.map(
            _ThenActor,
            fn_constructor_kwargs={"stage": then},
            concurrency=actors,
            num_cpus=ray_options.then_cpus,
        )
    for row in ds.iter_rows():
        path = Path(row["path"])
        if row["error"]:
            yield path, VoiceflowError(row["error"]), None
        else:
            extra = pickle.loads(row["extra"]) if row.get("extra") else None
            yield path, Transcript.from_dict(json.loads(row["transcript"])), extra


def _connect(address: str | None) -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("ray[data]", "ray", "--ray (batch work on Ray)") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    if ray.is_initialized():
        return ray
    try:
        if address in (None, "", "local"):
            ray.init(
                address="local",
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise VoiceflowError(
            f"could not reach the Ray cluster at {address}: {e} (start one with "
            "`ray start --head`, or give --ray without an address for a local Ray)"
        ) from None
    return ray


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    from voiceflow.speech.audio import load_audio

    try:
        samples = load_audio(row["path"])
        return {"path": row["path"], "samples": samples.tobytes(), "error": ""}
    except VoiceflowError as e:
        return {"path": row["path"], "samples": b"", "error": str(e)}


class _WhisperActor:
    """Holds one Whisper model for all the files it is given."""

    def __init__(self, model_args: dict[str, Any], options: dict[str, Any]) -> None:
        self.model_args, self.options = model_args, options
        self.model: Any = None

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from voiceflow.speech.transcriber import SpeechModel

        out = {"path": row["path"], "transcript": "", "error": row["error"]}
        if row["error"]:
            return out
        try:
            self.model = self.model or SpeechModel(**self.model_args)
            samples = np.frombuffer(row["samples"], dtype=np.float32)
            transcript = self.model.transcribe(samples, **self.options)
            data = {**transcript.to_dict(), "source": row["path"]}
            out["transcript"] = json.dumps(data, ensure_ascii=False)
        except VoiceflowError as e:
            out["error"] = f"{row['path']}: {e}"
        return out


class _ThenActor:
    """Runs the caller's second stage (e.g. embeddings), its model loaded once an actor."""

    def __init__(self, stage: Callable[[Transcript], Any]) -> None:
        self.stage = stage

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        extra = b""
        if not row["error"]:
            extra = pickle.dumps(self.stage(Transcript.from_dict(json.loads(row["transcript"]))))
        return {**row, "extra": extra}
