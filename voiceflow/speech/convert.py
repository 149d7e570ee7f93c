"""Convert CTranslate2 Whisper weights: to an openai-whisper checkpoint, and to int8.

openai-whisper only loads torch checkpoints, while the shipped weights are CTranslate2
``model.bin`` files. The layout (version 6, ``WhisperSpec``) is read directly, so neither
ctranslate2 nor a network is needed. The shipped weights are float16; CTranslate2 runs int8
on a CPU and would quantize them on every load (1.1 s of a 1.5 s load on 2 cores), so an
int8 copy is written once with its rule. Results are cached, keyed by the source's path, size
and modification time; a new result replaces the copies made of the folder before.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from voiceflow.errors import ModelNotFoundError
from voiceflow.files import atomic_path, atomic_write

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode()


def _read_raw(path: Path) -> tuple[str, int, dict[str, np.ndarray], list[tuple[str, str]]]:
    """A ``model.bin`` as stored: spec name, revision, variables and aliases."""
    raw: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version != 6:
            raise ModelNotFoundError(f"{path}: CTranslate2 model version {version}, expected 6")
        spec = _string(f)
        if spec != "WhisperSpec":
            raise ModelNotFoundError(f"{path}: a {spec} model, not Whisper")
        (revision,) = struct.unpack("<I", f.read(4))
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
            (dtype, nbytes) = struct.unpack("<BI", f.read(5))
            if dtype not in _DTYPES:
                raise ModelNotFoundError(f"{path}: unsupported dtype {dtype} for {name}")
            raw[name] = np.frombuffer(f.read(nbytes), dtype=_DTYPES[dtype]).reshape(dims)
        (n_alias,) = struct.unpack("<I", f.read(4))
        aliases = [(_string(f), _string(f)) for _ in range(n_alias)]
    return spec, revision, raw, aliases


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin`` as float32 arrays (int8 dequantised)."""
    _, _, raw, aliases = _read_raw(path)
    for alias, target in aliases:
        raw[alias] = raw[target]
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith("_scale"):
            continue
        if value.dtype == np.int8 and name + "_scale" in raw:
            value = value.astype(np.float32) / raw[name + "_scale"][:, None]
        out[name] = value.astype(np.float32)
    return out


def quantize_ct2(src: Path, dst: Path) -> None:
    """Write ``src``'s model with its linear and embedding weights in int8 with a per-row
    scale, as CTranslate2 quantizes on load (scale = 127 / max|row|, round half to even;
    Whisper's convolutions stay in float), so the copy computes exactly what the source
    loaded as int8 does."""
    spec, revision, raw, aliases = _read_raw(src / "model.bin")
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        quantizable = name.rsplit("/", 1)[-1] == "weight" and "conv" not in name
        if not quantizable or value.dtype not in (np.float16, np.float32):
            out[name] = value
            continue
        rows = value.astype(np.float32).reshape(value.shape[0], -1)
        amax = np.abs(rows).max(axis=1)
        amax[amax == 0] = 127.0
        scale = (np.float32(127.0) / amax).astype(np.float32)
        out[name] = np.rint(rows * scale[:, None]).astype(np.int8).reshape(value.shape)
        out[name + "_scale"] = scale
    aliases += [(a + "_scale", t + "_scale") for a, t in aliases if t + "_scale" in out]
    type_ids = {np.dtype(t): i for i, t in _DTYPES.items()}

    def string(text: str) -> bytes:
        data = text.encode() + b"\0"
        return struct.pack("<H", len(data)) + data

    for extra in src.iterdir():  # config, tokenizer, vocabulary: before model.bin, whose
        # presence tells another process the copy is complete
        if extra.is_file() and extra.suffix in (".json", ".txt") and extra.name != "joined.json":
            atomic_write(dst / extra.name, extra.read_bytes())
    with atomic_path(dst / "model.bin") as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<I", 6) + string(spec) + struct.pack("<II", revision, len(out)))
        for name, value in out.items():
            data = np.ascontiguousarray(value).tobytes()
            f.write(string(name) + struct.pack(f"<B{value.ndim}I", value.ndim, *value.shape))
            f.write(struct.pack("<BI", type_ids[value.dtype], len(data)) + data)
        f.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases:
            f.write(string(alias) + string(target))


def int8_model(ct2_dir: Path, cache: Path) -> Path:
    """The cached int8 copy of a float16 model folder; any other folder as it is."""
    model = ct2_dir / "model.bin"
    if _weight_dtype(model) != np.float16:
        return ct2_dir
    out = _cached(ct2_dir, cache / "int8", "")
    if not (out / "model.bin").is_file():
        quantize_ct2(ct2_dir, out)
        _remove_older(ct2_dir, out)
    return out


def _cached(ct2_dir: Path, folder: Path, suffix: str) -> Path:
    """Where ``ct2_dir``'s converted copy goes: named for the folder's path (two folders
    called ``base`` keep a copy each) and its weights' size and modification time."""
    st = (ct2_dir / "model.bin").stat()
    return folder / f"{_folder_key(ct2_dir)}{st.st_size}-{int(st.st_mtime)}{suffix}"


def _folder_key(ct2_dir: Path) -> str:
    return f"{ct2_dir.name}-{hashlib.sha1(str(ct2_dir.resolve()).encode()).hexdigest()[:8]}-"


def _remove_older(ct2_dir: Path, current: Path) -> None:
    """Remove the copies made of earlier versions of the folder (75-290 MB each for base):
    without this, every reinstall of the weights left one behind."""
    key = _folder_key(ct2_dir)
    for old in current.parent.iterdir():
        if old.name.startswith(key) and old != current:  # not a .tmp: those start with "."
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _weight_dtype(path: Path) -> type | None:
    """The type of the first ``weight`` variable, read from the headers alone."""
    with open(path, "rb") as f:
        if struct.unpack("<I", f.read(4))[0] != 6 or _string(f) != "WhisperSpec":
            return None
        f.read(4)
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            f.read(4 * rank)
            (dtype, nbytes) = struct.unpack("<BI", f.read(5))
            if name.rsplit("/", 1)[-1] == "weight":
                return _DTYPES.get(dtype)
            f.seek(nbytes, 1)
    return None


def _state_dict(v: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    sd: dict[str, np.ndarray] = {}

    def attn(src: str, dst: str, fused_qkv: bool) -> None:
        d = v[f"{src}/linear_0/weight"].shape[1]
        if fused_qkv:
            w, b = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
            sd[f"{dst}.query.weight"], sd[f"{dst}.query.bias"] = w[:d], b[:d]
            sd[f"{dst}.key.weight"] = w[d : 2 * d]  # the key projection has no bias
            sd[f"{dst}.value.weight"], sd[f"{dst}.value.bias"] = w[2 * d :], b[2 * d :]
            out = "linear_1"
        else:  # cross-attention: query alone, then fused key/value
            sd[f"{dst}.query.weight"] = v[f"{src}/linear_0/weight"]
            sd[f"{dst}.query.bias"] = v[f"{src}/linear_0/bias"]
            w, b = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
            sd[f"{dst}.key.weight"] = w[:d]
            sd[f"{dst}.value.weight"], sd[f"{dst}.value.bias"] = w[d:], b[d:]
            out = "linear_2"
        sd[f"{dst}.out.weight"] = v[f"{src}/{out}/weight"]
        sd[f"{dst}.out.bias"] = v[f"{src}/{out}/bias"]

    def norm(src: str, dst: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]

    def block(src: str, dst: str, cross: bool) -> None:
        norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        attn(f"{src}/self_attention", f"{dst}.attn", fused_qkv=True)
        if cross:
            norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
            attn(f"{src}/attention", f"{dst}.cross_attn", fused_qkv=False)
        norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        for i, j in ((0, 0), (1, 2)):
            sd[f"{dst}.mlp.{j}.weight"] = v[f"{src}/ffn/linear_{i}/weight"]
            sd[f"{dst}.mlp.{j}.bias"] = v[f"{src}/ffn/linear_{i}/bias"]

    def layers(prefix: str) -> int:
        pat = re.compile(rf"^{prefix}/layer_(\d+)/")
        return 1 + max(int(m.group(1)) for k in v if (m := pat.match(k)))

    n_enc, n_dec = layers("encoder"), layers("decoder")
    for conv in ("conv1", "conv2"):
        for p in ("weight", "bias"):
            sd[f"encoder.{conv}.{p}"] = v[f"encoder/{conv}/{p}"]
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_enc):
        block(f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    norm("encoder/layer_norm", "encoder.ln_post")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_dec):
        block(f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    norm("decoder/layer_norm", "decoder.ln")

    n_head = int(np.asarray(v["encoder/num_heads"]).reshape(-1)[0])
    dec_heads = v.get("decoder/num_heads", v["encoder/num_heads"])
    dims = {
        "n_mels": sd["encoder.conv1.weight"].shape[1],
        "n_audio_ctx": sd["encoder.positional_embedding"].shape[0],
        "n_audio_state": sd["encoder.positional_embedding"].shape[1],
        "n_audio_head": n_head,
        "n_audio_layer": n_enc,
        "n_vocab": sd["decoder.token_embedding.weight"].shape[0],
        "n_text_ctx": sd["decoder.positional_embedding"].shape[0],
        "n_text_state": sd["decoder.positional_embedding"].shape[1],
        "n_text_head": int(np.asarray(dec_heads).reshape(-1)[0]),
        "n_text_layer": n_dec,
    }
    return sd, {k: int(x) for k, x in dims.items()}


def convert_ct2_to_openai(ct2_dir: Path, out_file: Path) -> Path:
    """Write an openai-whisper checkpoint (``{"dims", "model_state_dict"}``) for a CT2 folder."""
    import torch

    sd, dims = _state_dict(read_ct2(ct2_dir / "model.bin"))
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in sd.items()},
    }
    with atomic_path(out_file) as tmp:
        torch.save(checkpoint, tmp)
    return out_file


def openai_checkpoint(ct2_dir: Path, cache: Path) -> Path:
    """The cached conversion of ``ct2_dir``, converting when missing or stale."""
    out = _cached(ct2_dir, cache / "openai", ".pt")
    if not out.is_file():
        convert_ct2_to_openai(ct2_dir, out)
        _remove_older(ct2_dir, out)
    return out


def alignment_heads(ct2_dir: Path) -> list[list[int]] | None:
    """Word-timestamp heads from the CT2 config; openai-whisper does not read them from a file."""
    cfg = ct2_dir / "config.json"
    if not cfg.is_file():
        return None
    heads = json.loads(cfg.read_text()).get("alignment_heads")
    return [list(map(int, h)) for h in heads] if heads else None
