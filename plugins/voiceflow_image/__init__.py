"""Text-to-image with diffusers: the ``image.generate`` node.

Any diffusers text-to-image checkpoint loads through the standard path
(``AutoPipelineForText2Image.from_pretrained``): a hub id or a local folder. The pipeline
loads when the first paint command arrives (a graph that is never asked for a picture never
touches the model or the network) and then serves every command. A hub model comes from
the local Hugging Face cache; it is downloaded only when it is not there and downloads are
allowed (neither ``VOICEFLOW_OFFLINE`` nor ``HF_HUB_OFFLINE`` is set), with a one-line
notice.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import unicodedata
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

import voiceflow
from voiceflow.errors import ConfigError, MissingDependencyError, ModelNotFoundError
from voiceflow.messages import Command, ImageResult, Message

log = logging.getLogger(__name__)

# (steps, guidance) that work for each model family; a user's values always win.
FAMILY_DEFAULTS = {"turbo": (1, 0.0), "lcm": (4, 1.0), "lightning": (4, 0.0)}
DEFAULT_STEPS, DEFAULT_GUIDANCE = 25, 7.5


def family_defaults(model: str) -> tuple[int, float]:
    name = model.lower()
    for key, value in FAMILY_DEFAULTS.items():
        if key in name:
            return value
    return DEFAULT_STEPS, DEFAULT_GUIDANCE


def safe_stem(prompt: str, limit: int = 60) -> str:
    """A file name from a prompt: ASCII letters, digits and dashes only, never a path."""
    ascii_ = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    return slug[:limit].rstrip("-") or "image"


def unique_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    path = folder / f"{stem}{suffix}"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


class ImageNode(voiceflow.Node):
    type_name = "image.generate"
    accepts = (Command,)
    emits = (ImageResult,)
    description = "generate an image from a paint command (diffusers)"

    class Config(voiceflow.NodeConfig):
        model: str = "stabilityai/sd-turbo"
        output_dir: str = "images"
        steps: int | None = Field(default=None, ge=1, le=200)
        guidance_scale: float | None = Field(default=None, ge=0.0, le=50.0)
        width: int = Field(default=512, ge=64, le=2048)
        height: int = Field(default=512, ge=64, le=2048)
        seed: int | None = Field(default=None, ge=0, lt=2**32)
        negative_prompt: str | None = None
        scheduler: str | None = None  # a diffusers scheduler class, e.g. EulerDiscreteScheduler
        device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
        attention_slicing: bool = False
        cpu_offload: bool = False
        intent: str = "paint"

        @field_validator("width", "height")
        @classmethod
        def _multiple_of_8(cls, v: int) -> int:
            if v % 8:
                raise ValueError(f"must be a multiple of 8 (the VAE works on 8x8 blocks), got {v}")
            return v

        @field_validator("scheduler")
        @classmethod
        def _scheduler_name(cls, v: str | None) -> str | None:
            if v is not None and not re.fullmatch(r"[A-Z][A-Za-z0-9]*Scheduler", v):
                raise ValueError(f"{v!r} is not a diffusers scheduler class name")
            return v

    config: Config

    def __init__(self, config: voiceflow.NodeConfig | None = None, name: str = "") -> None:
        super().__init__(config, name)
        self.pipeline: Any = None
        self.device = "cpu"
        self.loads = 0

    async def load(self, ctx: voiceflow.Context) -> None:
        await ctx.run_blocking(self._load, ctx.base_dir)

    def _load(self, base_dir: Path) -> None:
        # transformers warns about optional image backends diffusers never uses here
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            import diffusers
            import torch
        except ImportError:
            raise MissingDependencyError("diffusers", "image", "image generation") from None
        c = self.config
        self.device = c.device
        if c.device == "auto":
            self.device = (
                "cuda"
                if torch.cuda.is_available()
                else "mps"
                if torch.backends.mps.is_available()
                else "cpu"
            )
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        local = Path(c.model).expanduser()
        if not local.is_absolute() and (base_dir / local).is_dir():
            local = base_dir / local
        source = str(local) if local.is_dir() else c.model
        if not local.is_dir() and ("/" not in c.model or c.model.startswith((".", "/", "~"))):
            raise ModelNotFoundError(
                f"image model {c.model!r}: no such folder, and not a hub id (owner/name)"
            )
        try:
            pipe = self._from_pretrained(diffusers, source, dtype)
        except (OSError, ValueError) as e:
            hint = (
                "downloads are off (VOICEFLOW_OFFLINE or HF_HUB_OFFLINE): unset it once to "
                "download the model"
                if not voiceflow.network_allowed()
                else "connect to the network once to download it"
            )
            raise ModelNotFoundError(
                f"image model {c.model!r} could not be loaded ({type(e).__name__}); {hint}, or "
                "set params.model to a local diffusers folder"
            ) from None
        if c.scheduler:
            cls = getattr(diffusers, c.scheduler, None)
            if cls is None:
                raise ConfigError(f"unknown scheduler {c.scheduler!r} in diffusers")
            pipe.scheduler = cls.from_config(pipe.scheduler.config)
        if c.attention_slicing:
            pipe.enable_attention_slicing()
        if c.cpu_offload and self.device == "cuda":
            pipe.enable_model_cpu_offload()
        else:
            pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=not os.isatty(2), leave=False, desc="denoising")
        self.pipeline = pipe
        self.loads += 1

    @staticmethod
    def _from_pretrained(diffusers: Any, source: str, dtype: Any) -> Any:
        """The local copy first; the hub only when that is missing and downloads are allowed."""
        load = diffusers.AutoPipelineForText2Image.from_pretrained
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # hub deprecation chatter
            try:
                return load(source, dtype=dtype, local_files_only=True)
            except (OSError, ValueError):
                if Path(source).is_dir() or not voiceflow.network_allowed():
                    raise
            os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")  # an offline machine answers soon
            log.warning(
                "downloading image model %r from the Hugging Face hub, once (several GB; "
                "VOICEFLOW_OFFLINE=1 forbids downloads)",
                source,
            )
            return load(source, dtype=dtype)

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Command)
        if msg.intent != self.config.intent:
            return
        prompt = msg.args.get("prompt", "").strip()
        if not prompt:
            raise ValueError("the paint command has no prompt")
        yield await ctx.run_blocking(self._generate, prompt, msg)

    def _generate(self, prompt: str, msg: Command) -> ImageResult:
        import torch
        from PIL.PngImagePlugin import PngInfo

        c = self.config
        steps, guidance = family_defaults(c.model)
        steps = c.steps or steps
        guidance = c.guidance_scale if c.guidance_scale is not None else guidance
        seed = c.seed if c.seed is not None else random.SystemRandom().randrange(2**32)
        start = time.perf_counter()
        image = self.pipeline(
            prompt,
            negative_prompt=c.negative_prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=c.width,
            height=c.height,
            generator=torch.Generator("cpu").manual_seed(seed),
        ).images[0]
        t = msg.transcript
        metadata = {
            "prompt": prompt,
            "prompt_original": msg.args.get("prompt_original", prompt),
            "transcript": t.text,
            "language": t.language,
            "source": t.source,
            "model": c.model,
            "seed": seed,
            "steps": steps,
            "guidance_scale": guidance,
            "width": c.width,
            "height": c.height,
            "negative_prompt": c.negative_prompt,
            "device": self.device,
            "seconds": round(time.perf_counter() - start, 3),
        }
        folder = Path(c.output_dir).expanduser().resolve()  # relative to where voiceflow runs
        folder.mkdir(parents=True, exist_ok=True)
        path = unique_path(folder, f"{safe_stem(prompt)}-{seed}")
        info = PngInfo()
        info.add_text("voiceflow", json.dumps(metadata, ensure_ascii=False))
        info.add_text("parameters", f"{prompt}\nSteps: {steps}, Seed: {seed}, Model: {c.model}")
        with voiceflow.atomic_path(path) as tmp:
            image.save(tmp, format="PNG", pnginfo=info)
        voiceflow.atomic_write(
            path.with_suffix(".json"), json.dumps(metadata, ensure_ascii=False, indent=2)
        )
        return ImageResult(path=path, prompt=prompt, seed=seed, metadata=metadata)


@voiceflow.hookimpl
def register_nodes(register: Callable[[type[voiceflow.Node]], None]) -> None:
    register(ImageNode)
