"""The image node on a tiny Stable Diffusion pipeline the test builds and saves itself.

The pipeline goes through the node's normal loading path (``from_pretrained`` on a folder),
the same code a user's real checkpoint takes.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import run_cli
from voiceflow.graph import GraphError
from voiceflow.messages import Command, Failure, ImageResult
from voiceflow.testing import graph_from, run_node, transcript
from voiceflow_image import ImageNode, family_defaults, safe_stem, unique_path

pytestmark = pytest.mark.slow


def _paint(prompt: str, text: str = "", language: str = "en", original: str | None = None):
    args = {"prompt": prompt}
    if original:
        args["prompt_original"] = original
    return Command("paint", args, transcript(text or prompt, language))


def test_generates_png_with_sidecar_and_text_chunk(tiny_sd, tmp_path):
    out = run_node(
        ImageNode,
        _paint("a lighthouse at dawn", "Generate a painting of a lighthouse at dawn."),
        params={
            "model": str(tiny_sd),
            "output_dir": str(tmp_path),
            "width": 64,
            "height": 80,
            "steps": 2,
            "seed": 1234,
        },
    )
    [result] = out
    assert isinstance(result, ImageResult) and result.seed == 1234
    assert result.path.parent == tmp_path and result.path.name == "a-lighthouse-at-dawn-1234.png"
    with Image.open(result.path) as img:
        assert img.size == (64, 80)
        embedded = json.loads(img.text["voiceflow"])
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar == embedded
    assert sidecar["prompt"] == "a lighthouse at dawn" and sidecar["steps"] == 2
    assert sidecar["transcript"].startswith("Generate a painting") and sidecar["language"] == "en"
    assert sidecar["model"] == str(tiny_sd) and sidecar["seconds"] > 0


def test_same_seed_same_image_and_random_seed_recorded(tiny_sd, tmp_path):
    params = {
        "model": str(tiny_sd),
        "output_dir": str(tmp_path),
        "width": 64,
        "height": 64,
        "steps": 1,
        "seed": 7,
    }
    a, b = run_node(ImageNode, [_paint("a red boat"), _paint("a red boat")], params=params)
    assert a.path != b.path  # unique names, nothing overwritten
    with Image.open(a.path) as ia, Image.open(b.path) as ib:
        assert ia.tobytes() == ib.tobytes()
    [c] = run_node(ImageNode, _paint("a red boat"), params={**params, "seed": None})
    assert (
        0 <= c.seed < 2**32
        and json.loads(c.path.with_suffix(".json").read_text())["seed"] == c.seed
    )


def test_two_commands_reuse_the_loaded_pipeline(tiny_sd, tmp_path):
    import asyncio

    from voiceflow.testing import run_node_async

    node = ImageNode(
        ImageNode.Config(model=str(tiny_sd), output_dir=str(tmp_path), width=64, height=64, steps=1)
    )
    out = asyncio.run(run_node_async(node, [_paint("one cat"), _paint("two dogs")]))
    assert len(out) == 2 and node.loads == 1


def test_end_to_end_spoken_english_command(tiny_sd, tmp_path, espeak):
    audio = espeak("Generate a painting of a lighthouse at dawn.", "paint_e2e")
    r = run_cli(
        "run",
        "configs/default.yaml",
        "--json",
        "--strict",
        str(audio),
        "--set",
        f"paint.model={tiny_sd}",
        "--set",
        f"paint.output_dir={tmp_path}",
        "--set",
        "paint.width=64",
        "--set",
        "paint.height=64",
    )
    assert r.returncode == 0, r.stderr
    images = [
        json.loads(line)
        for line in r.stdout.splitlines()
        if line.startswith("{") and '"ImageResult"' in line
    ]
    assert len(images) == 1
    sidecar = json.loads((tmp_path / images[0]["path"]).with_suffix(".json").read_text())
    assert "lighthouse" in sidecar["prompt"]
    with Image.open(images[0]["path"]) as img:
        assert img.size == (64, 64)


def test_spanish_command_as_transcript_with_translation(tiny_sd, tmp_path):
    from voiceflow.runtime import run_graph

    graph = graph_from(
        "configs/default.yaml",
        paint={"model": str(tiny_sd), "output_dir": str(tmp_path), "width": 64, "height": 64},
    )
    spoken = transcript(
        "Genera una pintura de un faro al amanecer.",
        "es",
        translation="Generate a painting of a lighthouse at dawn.",
    )
    results = run_graph(graph, [spoken])
    [image] = [r.message for r in results if isinstance(r.message, ImageResult)]
    sidecar = json.loads(image.path.with_suffix(".json").read_text())
    assert sidecar["prompt"] == "a lighthouse at dawn"
    assert sidecar["prompt_original"] == "un faro al amanecer" and sidecar["language"] == "es"


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"width": 100}, "multiple of 8"),
        ({"height": 4096}, "less than or equal to 2048"),
        ({"steps": -1}, "greater than or equal to 1"),
        ({"scheduler": "not a scheduler"}, "not a diffusers scheduler"),
    ],
)
def test_bad_config_fails_at_validate(params, needle):
    with pytest.raises(GraphError, match=needle):
        graph_from("configs/default.yaml", paint=params)


def test_unavailable_model_fails_at_start_with_clear_error(tmp_path):
    from voiceflow.runtime import run_graph

    graph = graph_from(
        "configs/default.yaml", paint={"model": "nobody/no-such-model", "output_dir": str(tmp_path)}
    )
    results = run_graph(graph, [transcript("Generate a painting of a red boat.")])
    failures = [r.message for r in results if isinstance(r.message, Failure)]
    assert len(failures) == 1 and failures[0].node == "paint"
    assert "'nobody/no-such-model' could not be loaded" in failures[0].error
    assert "local diffusers folder" in failures[0].error
    missing = graph_from("configs/default.yaml", paint={"model": str(tmp_path / "nope")})
    [failure] = [
        r.message
        for r in run_graph(missing, [transcript("Paint a cat.")])
        if isinstance(r.message, Failure)
    ]
    assert "no such folder" in failure.error


def test_safe_file_names():
    assert safe_stem("../../etc/passwd") == "etc-passwd"
    assert safe_stem("Ein Gemälde: Möwe/Sturm!") == "ein-gemalde-mowe-sturm"
    assert safe_stem("?!") == "image"
    assert len(safe_stem("x" * 500)) == 60


def test_unique_path(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    assert unique_path(tmp_path, "a").name == "a-1.png"


def test_family_defaults():
    assert family_defaults("stabilityai/sd-turbo") == (1, 0.0)
    assert family_defaults("SimianLuo/LCM_Dreamshaper_v7") == (4, 1.0)
    assert family_defaults("runwayml/stable-diffusion-v1-5") == (25, 7.5)
