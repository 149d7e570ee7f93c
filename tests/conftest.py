from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from platformdirs import user_cache_dir

from bench.common import free_port
from voiceflow.text import normalize  # noqa: F401  (the tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
VOICEFLOW = [sys.executable, "-m", "voiceflow"]

# Models come from installed packages; nothing may reach a network during the tests.
os.environ.setdefault("VOICEFLOW_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Graphs that archive utterances must not write into the user's own archive.
os.environ.setdefault("VOICEFLOW_ARCHIVE", tempfile.mkdtemp(prefix="voiceflow-test-archive-"))


@pytest.fixture(scope="session")
def data() -> Path:
    if not (DATA / "jfk.flac").is_file():
        pytest.fail(f"reference audio missing: expected {DATA}")
    return DATA


@pytest.fixture(scope="session")
def faster_base():
    from voiceflow.speech.transcriber import SpeechModel

    return SpeechModel("base", engine="faster-whisper", threads=2)


@pytest.fixture(scope="session")
def openai_base():
    from voiceflow.speech.transcriber import SpeechModel

    return SpeechModel("base", engine="openai-whisper", threads=2)


@pytest.fixture(scope="session")
def espeak(tmp_path_factory):
    """Synthesise English speech to a 16 kHz WAV with espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/setup.sh installs it)")
    folder = tmp_path_factory.mktemp("espeak")

    def say(text: str, name: str, voice: str = "en-us") -> Path:
        path = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "130", "-w", str(path), text], check=True)
        return path

    return say


def heavy_imports(code: str, heavy: set[str], timeout: float = 300) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has imported after running ``code``, which
    must succeed (what it prints to stdout is ignored)."""
    probe = (
        f"{code}\nimport json, sys\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"print(json.dumps(sorted(loaded & set({sorted(heavy)!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def run_cli(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VOICEFLOW, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
    )


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A private PulseAudio daemon with a null sink; its monitor is the 'microphone'."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed (scripts/setup.sh installs it)")
    tmp_path = tmp_path_factory.mktemp("pulse")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "rt"), "HOME": str(tmp_path)}
    (tmp_path / "rt").mkdir()
    subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-null-sink sink_name=vf_sink",
            "--load=module-native-protocol-unix",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    deadline = time.time() + 15
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        assert time.time() < deadline, "pulseaudio did not start"
        time.sleep(0.2)
    # HOME moved for PulseAudio's cookie; voiceflow keeps using the user's model cache.
    cache = os.environ.get("VOICEFLOW_CACHE") or user_cache_dir("voiceflow")
    yield {**env, "PULSE_SOURCE": "vf_sink.monitor", "VOICEFLOW_CACHE": cache}
    subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)


def listen_through_pulse(
    pulse: dict[str, str], clips: list[Path], *args: str, prefix: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], str]:
    """Run ``voiceflow listen`` on the PulseAudio null sink, play ``clips`` into it once it
    says it is listening, then stop it with Ctrl-C (SIGINT). ``prefix`` runs it under
    another program (strace), whose child then gets the signal."""
    proc = subprocess.Popen(
        [*prefix, *VOICEFLOW, "listen", "--device", "pulse", *args],
        cwd=ROOT,
        env=pulse,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # One thread a stream reads whole lines: select() on a pipe whose lines Python has
    # already buffered would wait for a line that has arrived, and the stderr pipe must not
    # fill while the test waits on stdout.
    out: list[str] = []
    err: list[str] = []

    def drain(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    readers = [
        threading.Thread(target=drain, args=pair, daemon=True)
        for pair in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()

    def transcripts(lines: list[str]) -> int:
        return sum(line.startswith("[") for line in lines)

    try:
        deadline = time.time() + 120
        while not any("listening (Ctrl-C to stop)" in line for line in list(err)):
            assert time.time() < deadline and proc.poll() is None, "".join(err)
            time.sleep(0.1)
        for clip in clips:
            subprocess.run(["paplay", "--device=vf_sink", str(clip)], env=pulse, check=True)
            time.sleep(1.5)  # a pause between utterances, as a speaker makes
        # every clip has been heard when as many transcript lines came out
        deadline = time.time() + 60
        while transcripts(list(out)) < len(clips) and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        heard = list(out)
    finally:
        target = proc.pid
        if prefix:  # signal the traced program, not the tracer
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            target = int(children[0]) if children else proc.pid
        if proc.poll() is None:
            os.kill(target, signal.SIGINT)
        proc.wait(timeout=120)
        for reader in readers:
            reader.join(timeout=10)
    assert transcripts(heard) >= len(clips), (
        f"{len(clips)} clips played, these transcripts within 60 s:\n{''.join(heard)}\n"
        f"after Ctrl-C:\n{''.join(out[len(heard) :])}\nstderr:\n{''.join(err)}"
    )
    return proc, "".join(out)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`) on loopback, for the whole session; its URL."""
    import urllib.request

    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chroma"),
            "run",
            "--path",
            str(folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:  # ready when its heartbeat answers
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert server.poll() is None, "chroma run exited"
        assert time.time() < deadline, "the Chroma server did not answer within 60 s"
        time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="session")
def subtitled(data, tmp_path_factory):
    """The reference recordings and two FLEURS clips of each language through `voiceflow
    subtitles` (original and English, srt and vtt), in one folder with a bad file among them."""
    src = tmp_path_factory.mktemp("channel")
    fleurs = sorted(data.glob("fleurs/fleurs-*-00[01].ogg"))
    for clip in [data / "jfk.flac", data / "stereo_diarization.wav", *fleurs]:
        shutil.copy(clip, src / clip.name)
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    out = tmp_path_factory.mktemp("subtitles")
    r = run_cli(
        "subtitles", str(src), "--format", "srt,vtt", "-o", str(out), "--threads", "2", timeout=900
    )
    return src, out, r


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A tiny Stable Diffusion pipeline, saved as a diffusers folder (random weights)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    from bench.sd_parts import byte_level_tokenizer, text_encoder_config

    folder = tmp_path_factory.mktemp("tiny-sd")
    tokenizer = byte_level_tokenizer(folder / "tok")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
    )
    text_encoder = CLIPTextModel(
        text_encoder_config(
            tokenizer,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
        )
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=EulerDiscreteScheduler(steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


SERVER_KEY = "test-key-1234"


@dataclass
class Server:
    url: str
    archive: Path
    images: Path


@pytest.fixture(scope="session")
def voiceflow_server(tiny_sd, tmp_path_factory):
    """`voiceflow serve` on a loopback port for the session: an API key, a 2 MB upload cap,
    one job and one waiting, the tiny test image pipeline, and an archive holding jfk.flac."""
    folder = tmp_path_factory.mktemp("server")
    archive, images = folder / "archive", folder / "images"
    r = run_cli("ingest", str(DATA / "jfk.flac"), "--archive", str(archive))
    assert r.returncode == 0, r.stderr
    port = free_port()
    sets = [f"paint.model={tiny_sd}", f"paint.output_dir={images}", "paint.width=64"]
    sets += ["paint.height=64", "ask.llm=none"]
    proc = subprocess.Popen(
        [*VOICEFLOW, "serve", "--port", str(port), "--api-key", SERVER_KEY]
        + ["--max-upload-mb", "2", "--jobs", "1", "--queue", "1"]
        + [arg for s in sets for arg in ("--set", s)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VOICEFLOW_ARCHIVE": str(archive)},
    )
    lines = []
    while "ready on" not in (line := proc.stderr.readline()):  # type: ignore[union-attr]
        lines.append(line)
        assert proc.poll() is None, "".join(lines)
    yield Server(f"http://127.0.0.1:{port}", archive, images)
    proc.terminate()
    assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn exits by the signal it was sent
