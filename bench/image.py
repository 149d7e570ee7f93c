"""Image generation speed with the real SD-1.5 architecture (random weights from its
published configuration: speed does not depend on the weight values).

    python -m bench.image [--size 512] [--device auto] [--repeat 2]

Prints seconds per UNet step without and with classifier-free guidance, the VAE decode,
and a whole 1-step and 4-step image (each the best of --repeat), as a table; saves
bench/results/image.json (image-cuda.json on a GPU).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.common import best_of, parser, save, table


def build(folder: Path, dtype):  # type: ignore[no-untyped-def]
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    from bench.sd_parts import byte_level_tokenizer, text_encoder_config

    torch.manual_seed(0)
    tokenizer = byte_level_tokenizer(folder / "tok")
    unet = UNet2DConditionModel(  # runwayml/stable-diffusion-v1-5 unet/config.json
        sample_size=64,
        cross_attention_dim=768,
        attention_head_dim=8,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(  # vae/config.json
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=512,
    )
    text = CLIPTextModel(
        text_encoder_config(  # CLIP ViT-L/14 text tower
            tokenizer,
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            hidden_act="quick_gelu",
        )
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        scheduler=EulerDiscreteScheduler(  # SD-1.5's schedule
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe.to(dtype=dtype)


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        pipe = build(Path(d), dtype).to(device)
        pipe.set_progress_bar_config(disable=True)
        built = time.perf_counter() - start

    def image(steps: int, guidance: float) -> float:
        def once() -> None:
            pipe(
                "a lighthouse at dawn",
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=args.size,
                width=args.size,
                generator=torch.Generator("cpu").manual_seed(0),
            )
            if device == "cuda":
                torch.cuda.synchronize()

        return best_of(args.repeat, once)[0]

    image(1, 0.0)  # warm up
    one, four = image(1, 0.0), image(4, 0.0)
    cfg_one, cfg_three = image(1, 7.5), image(3, 7.5)
    step, cfg_step = (four - one) / 3, (cfg_three - cfg_one) / 2
    decode_and_rest = one - step
    name = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"SD-1.5 architecture, {args.size}x{args.size}, {device} ({name}), "
        f"{str(dtype).split('.')[-1]}; built in {built:.0f} s; best of {args.repeat}\n"
    )
    results = {
        "device": name,
        "unet_step_s": step,
        "unet_step_guided_s": cfg_step,
        "text_encoder_vae_rest_s": decode_and_rest,
        "image_1_step_s": one,
        "image_4_steps_s": four,
        "image_25_guided_steps_estimated_s": decode_and_rest + 25 * cfg_step,
    }
    rows = [
        ("UNet step, no guidance (turbo/LCM style)", f"{step:.3f}"),
        ("UNet step, classifier-free guidance", f"{cfg_step:.3f}"),
        ("text encoder + VAE decode + rest", f"{decode_and_rest:.3f}"),
        ("image, 1 step (SD-Turbo)", f"{one:.3f}"),
        ("image, 4 steps (LCM)", f"{four:.3f}"),
        (
            "image, 25 steps with guidance (SD-1.5 default), estimated",
            f"{decode_and_rest + 25 * cfg_step:.2f}",
        ),
    ]
    print(table(["what", "seconds"], rows))
    save("image" if device == "cpu" else f"image-{device}", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
