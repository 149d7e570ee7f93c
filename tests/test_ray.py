"""Batch work past one machine: a real Ray cluster (a head and a worker node on loopback) and
a real Chroma server. The outputs must equal the single-process run's, even when a Whisper
actor is killed mid-job."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, VOICEFLOW, free_port, run_cli

pytestmark = pytest.mark.slow
# Token authentication, as Ray's own `ray start` wants it; the token is this session's own
# (a fresh machine has no ~/.ray/auth_token), passed to the nodes and to voiceflow alike.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}

CLIPS = [
    "fleurs/fleurs-es-000.ogg",
    "fleurs/fleurs-es-001.ogg",
    "fleurs/fleurs-fr-000.ogg",
    "fleurs/fleurs-de-000.ogg",
    "fleurs/fleurs-en-000.ogg",
    "jfk.flac",
]


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head` plus one worker node, 1 CPU each, on 127.0.0.1; its address."""
    ray = str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="vf-ray-")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, **RAY_ENV}
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=200000000"]
    subprocess.run(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
            *common,
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    address = f"127.0.0.1:{port}"
    try:
        subprocess.run(
            [ray, "start", f"--address={address}", *common],
            check=True,
            env=env,
            capture_output=True,
            timeout=180,
        )
        yield address
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def clips(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    for clip in CLIPS:
        shutil.copy(data / clip, folder / Path(clip).name)
    return folder


def outputs(folder: Path, clips: Path) -> dict[str, str]:
    """The subtitle files of ``clips``' recordings in ``folder``."""
    stems = {p.stem for p in clips.iterdir()}
    return {p.name: p.read_text() for p in folder.glob("*.*t") if p.name.split(".")[0] in stems}


def whisper_actors() -> list[int]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in ps.splitlines() if "_WhisperActor" in line]


def test_subtitles_on_ray_match_one_process_even_when_a_worker_dies(
    ray_cluster, clips, subtitled, tmp_path
):
    reference = outputs(subtitled[1], clips)  # the single-process run of test_subtitles
    assert len(reference) == 2 * (2 * 4 + 2)  # srt and vtt: 4 foreign clips 2 tracks, 2 one

    spread = tmp_path / "ray"
    job = subprocess.Popen(
        [
            *VOICEFLOW,
            "subtitles",
            str(clips),
            "-o",
            str(spread),
            "--format",
            "srt,vtt",
            "--threads",
            "2",  # as the single-process run: the same threads, the same transcript
            "--ray",
            ray_cluster,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **RAY_ENV},
    )
    deadline = time.time() + 300
    while not list(spread.glob("*.srt")):  # kill once work is under way
        assert job.poll() is None, job.communicate()
        assert time.time() < deadline, "no subtitles from Ray within 300 s"
        time.sleep(0.1)
    done_at_kill = len(list(spread.glob("*.srt")))
    actors = whisper_actors()
    assert len(actors) == 2, actors  # one on each node
    os.kill(actors[0], signal.SIGKILL)
    _, err = job.communicate(timeout=600)
    assert job.returncode == 0, err
    assert done_at_kill < len(reference) / 2 - 1  # the kill landed mid-job
    assert "6 subtitled, 0 already done, 0 failed" in err
    assert outputs(spread, clips) == reference  # every cue exactly once, byte for byte
    assert actors[0] not in whisper_actors()  # a new actor took over


def test_ingest_on_ray_into_a_chroma_server_matches_one_process(
    ray_cluster, clips, chroma_server, tmp_path
):
    import chromadb

    local, remote, few = tmp_path / "local", tmp_path / "remote", tmp_path / "few"
    few.mkdir()
    for name in ("fleurs-es-000.ogg", "fleurs-fr-000.ogg", "jfk.flac"):
        shutil.copy(clips / name, few / name)
    clips = few
    # The same --threads on both sides: Whisper's last bits depend on the thread count.
    r = run_cli("ingest", str(clips), "--archive", str(local), "--threads", "2")
    assert r.returncode == 0 and "3 added" in r.stdout, r.stderr
    ray_args = ["--archive", str(remote), "--chroma_url", chroma_server, "--ray", ray_cluster]
    ray_args += ["--threads", "2"]
    r = run_cli("ingest", str(clips), *ray_args, env=RAY_ENV)
    assert r.returncode == 0 and "3 added" in r.stdout, r.stderr

    def segments(folder: Path) -> list[tuple]:
        with sqlite3.connect(folder / "archive.sqlite") as db:
            return db.execute(
                "SELECT recording, idx, start, end, text, text_en, language FROM segments "
                "ORDER BY recording, idx"
            ).fetchall()

    assert segments(remote) == segments(local) and len(segments(local)) >= 4

    host, port = chroma_server.removeprefix("http://").split(":")
    server = chromadb.HttpClient(host=host, port=int(port)).get_collection("transcript_chunks")
    embedded = chromadb.PersistentClient(path=str(local / "chroma")).get_collection(
        "transcript_chunks"
    )
    recordings = sorted({row[0] for row in segments(local)})
    for rec in recordings:
        a = embedded.get(where={"recording": rec}, include=["documents", "embeddings"])
        b = server.get(where={"recording": rec}, include=["documents", "embeddings"])
        assert sorted(a["ids"]) == sorted(b["ids"]) and a["ids"]
        assert sorted(a["documents"]) == sorted(b["documents"])
        va = dict(zip(a["ids"], a["embeddings"], strict=True))
        vb = dict(zip(b["ids"], b["embeddings"], strict=True))
        assert all(sum(x * y for x, y in zip(va[i], vb[i], strict=True)) > 0.999 for i in va)

    r = run_cli("ingest", str(clips), *ray_args, env=RAY_ENV)  # a rerun adds nothing twice
    assert "0 added, 0 replaced, 3 already in the archive" in r.stdout, r.stdout + r.stderr
    total = sum(len(server.get(where={"recording": rec})["ids"]) for rec in recordings)
    assert total == sum(len(embedded.get(where={"recording": rec})["ids"]) for rec in recordings)
    r = run_cli(
        "ask", "what should travellers find out about?", "--no-llm", "--json", *ray_args[:4]
    )
    assert r.returncode == 0 and "fleurs-es-000.ogg" in r.stdout, r.stdout + r.stderr
