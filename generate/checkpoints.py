"""Single-file Stable Diffusion checkpoints as users have them (A1111's ``.safetensors``/``.ckpt``).

A single file carries weights, not an architecture. This module reads one, tells which family it
is from its tensor names and shapes, and builds the pipeline from configs shipped with the package,
so ``--model v1-5-pruned-emaonly.safetensors`` works offline with no ``--model-config``:

- :func:`read_state_dict`: the file's tensors (``.safetensors``, or ``.ckpt`` through
  ``torch.load(weights_only=True)``; a pickle that needs more is refused, never unpickled).
- :func:`detect`: ``"sd1"`` (CLIP ViT-L text encoder, ``cond_stage_model.transformer.*``,
  cross-attention context 768 in real files) or ``"sd2"`` (OpenCLIP ViT-H,
  ``cond_stage_model.model.*``, context 1024); SDXL, inpainting and other layouts are refused.
- :func:`is_v_prediction`: A1111's test (``modules/sd_models_config.py``,
  ``is_using_v_parameterization_for_sd2``) that tells SD 2.x 768-v (``"sd2-v"``) from 512-base
  (``"sd2"``) by one U-Net forward pass. On random weights the test means nothing: pass the family
  explicitly (``--model-config sd2-v``) to skip it.
- :func:`component_configs`: the family's shipped configs (``generate/configs/<family>/``) with
  every dimension the shapes tell (channels, levels, layers, context width) read from the tensors,
  so a small random checkpoint in the real key layout loads through exactly the code a real one does.
- :func:`load_pipeline`: all of the above, then diffusers' own LDM -> diffusers key conversion
  (``diffusers.loaders.single_file_utils``) per component.
- :func:`model_hash`: A1111's short hash (``Model hash:`` in infotext): the first 10 hex digits of the
  sha256 of the whole file (A1111 ``modules/hashes.py``: ``sha256`` + ``shorthash``), cached by
  (resolved path, size, mtime_ns) in ``<cache>/hashes.json``.
- :func:`ldm_state_dict`: the reverse conversion, diffusers components -> the original LDM key
  layout A1111 and CompVis write (for tests, benchmarks and fixtures).

The tokenizer's vocabulary (1.6 MB) is not in git: it is built once from open_clip's BPE file
(``generate/tokenizer_files.py``) into the cache folder, beside the family's configs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from t2iscope import fileio
from t2iscope.errors import ConfigError, DataError

FAMILIES = ("sd1", "sd2", "sd2-v")
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
COMPONENTS = ("unet", "vae", "text_encoder")

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer.text_model."  # SD 1.x: Hugging Face CLIPTextModel keys
OPEN_CLIP = "cond_stage_model.model."  # SD 2.x: open_clip keys (resblocks, in_proj)
# LDM builds every GroupNorm with 32 groups (ldm/modules/diffusionmodules/util.py normalization(),
# model.py Normalize()): a shape cannot tell the group count, the layout fixes it.
LDM_GROUPS = 32
HEAD_CHANNELS = 64  # SD 2.x (num_head_channels=64) and CLIP/OpenCLIP text towers: 64 channels per head
HASH_CHUNK = 1 << 20
HASH_CACHE_VERSION = 1

ShapeMap = Mapping[str, Sequence[int]]


# ---------------------------------------------------------------------------------------------
# Cache folder


def cache_dir() -> Path:
    """The per-user cache folder: ``T2ISCOPE_CACHE``, else the platform's user cache dir + ``t2iscope``.

    Linux ``$XDG_CACHE_HOME/t2iscope`` (default ``~/.cache/t2iscope``), macOS
    ``~/Library/Caches/t2iscope``, Windows ``%LOCALAPPDATA%/t2iscope/Cache`` (platformdirs' choices).
    """
    if os.environ.get("T2ISCOPE_CACHE"):
        return Path(os.environ["T2ISCOPE_CACHE"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "t2iscope"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "t2iscope" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "t2iscope"


# ---------------------------------------------------------------------------------------------
# Model hash (A1111 modules/hashes.py: sha256 of the whole file; shorthash = first 10 hex digits)


def hash_cache_path() -> Path:
    return cache_dir() / "hashes.json"


def _read_hash_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != HASH_CACHE_VERSION:
        return {}
    entries = data.get("sha256")
    return entries if isinstance(entries, dict) else {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 (64 hex digits) of the whole file, cached by (resolved path, size, mtime_ns).

    The cache is ``<cache_dir()>/hashes.json`` (``{"version": 1, "sha256": {path: {"size",
    "mtime_ns", "sha256"}}}``), rewritten atomically; an entry whose size or mtime no longer
    matches is recomputed. Hashing reads the file in 1 MiB chunks (a 2 GB checkpoint takes seconds;
    a cache hit, one ``stat``). Raises DataError naming the file when it cannot be read.
    """
    src = Path(path).resolve()
    try:
        st = src.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    cache = hash_cache_path()
    entries = _read_hash_cache(cache)
    hit = entries.get(str(src))
    if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        value = hit.get("sha256")
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
            return value
    digest = hashlib.sha256()
    try:
        with open(src, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    value = digest.hexdigest()
    entries = _read_hash_cache(cache)  # re-read: another process may have added entries meanwhile
    entries[str(src)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": value}
    with contextlib.suppress(OSError):  # a read-only cache folder costs a rehash next time, nothing else
        fileio.write_json(cache, {"version": HASH_CACHE_VERSION, "sha256": entries})
    return value


def model_hash(path: str | os.PathLike[str]) -> str:
    """A1111's ``Model hash:``: the first 10 hex digits of the file's sha256 (see :func:`file_sha256`)."""
    return file_sha256(path)[:10]


# ---------------------------------------------------------------------------------------------
# Reading and recognising a checkpoint


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` or ``.ckpt`` file, on CPU, keys as stored.

    A ``.ckpt`` is read with ``torch.load(weights_only=True)`` (memory-mapped when it is a zip
    file) and unwrapped from its ``state_dict`` entry (Lightning's layout); one that needs
    unrestricted unpickling (arbitrary classes in the pickle) is refused, never executed. Raises
    DataError naming the file for an unreadable file, a broken one, an unsafe pickle or a file
    without tensors.
    """
    src = Path(path)
    try:
        if src.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(src))
        else:
            try:
                state = torch.load(src, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                state = torch.load(src, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except OSError as exc:
        raise DataError(f"{src}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:  # safetensors, zip and pickle readers each raise their own types
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "UnpicklingError" in type(exc).__name__:
            raise DataError(
                f"{src}: the checkpoint's pickle needs unsafe unpickling (it holds more than tensors); "
                "convert it to .safetensors with a tool you trust, or use a .safetensors copy"
            ) from None
        raise DataError(f"{src}: not a readable checkpoint ({type(exc).__name__})") from None
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{src}: holds no tensors; expected a Stable Diffusion checkpoint")
    return {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def shapes_of(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a state dict (tensors) or of a mapping that already holds shapes."""
    return {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in state.items()}


def detect(shapes: ShapeMap | Mapping[str, torch.Tensor], name: str = "checkpoint") -> str:
    """The key-layout family of a checkpoint: ``"sd1"`` or ``"sd2"``, from tensor names and shapes.

    ``shapes`` maps each key to its shape (or tensor). Rules, after A1111's
    ``guess_model_config_from_state_dict`` and diffusers' ``infer_diffusers_model_type``:

    - ``conditioner.embedders.*`` -> SDXL, refused (ConfigError: "SDXL is not supported yet");
    - a U-Net under ``model.diffusion_model.`` with 4 input channels (9 is an inpainting model,
      8 instruct-pix2pix: refused) and a VAE under ``first_stage_model.``;
    - ``cond_stage_model.transformer.text_model.*`` (CLIP, SD 1.x) -> ``"sd1"``;
      ``cond_stage_model.model.*`` (OpenCLIP, SD 2.x) -> ``"sd2"``;
    - the U-Net's cross-attention context (``attn2.to_k.weight`` columns: 768 for SD 1.x, 1024
      for SD 2.x) must equal the text encoder's width.

    This cannot tell SD 2.x 768-v from 512-base (same shapes): see :func:`is_v_prediction`.
    Raises ConfigError (one line starting with ``name``) for any other layout.
    """
    shp = shapes_of(shapes)
    if any(k.startswith("conditioner.embedders.") for k in shp):
        raise ConfigError(
            f"{name}: an SDXL checkpoint; SDXL is not supported yet (Stable Diffusion 1.x/2.x only)"
        )
    conv_in = shp.get(UNET + "input_blocks.0.0.weight")
    if conv_in is None:
        hint = (
            " (it looks like diffusers' own layout: pass its folder instead)"
            if any(k.startswith(("down_blocks.", "unet.", "text_model.")) for k in shp)
            else ""
        )
        raise ConfigError(
            f"{name}: not a Stable Diffusion 1.x/2.x checkpoint: "
            f"no U-Net under 'model.diffusion_model.'{hint}"
        )
    if len(conv_in) != 4 or conv_in[1] != 4:
        kind = {9: "an inpainting model", 8: "an instruct-pix2pix model"}.get(conv_in[1] if conv_in else 0)
        what = kind or f"a U-Net with {conv_in[1] if len(conv_in) > 1 else '?'} input channels"
        raise ConfigError(f"{name}: {what}; only text-to-image models (4 latent channels) are supported yet")
    if not any(k.startswith(VAE) for k in shp):
        raise ConfigError(
            f"{name}: no VAE under 'first_stage_model.'; expected a full Stable Diffusion checkpoint"
        )
    if CLIP + "embeddings.token_embedding.weight" in shp:
        family, width = "sd1", shp[CLIP + "embeddings.token_embedding.weight"][1]
    elif OPEN_CLIP + "token_embedding.weight" in shp:
        family, width = "sd2", shp[OPEN_CLIP + "token_embedding.weight"][1]
    else:
        raise ConfigError(
            f"{name}: no text encoder (neither 'cond_stage_model.transformer.' (SD 1.x CLIP) nor "
            "'cond_stage_model.model.' (SD 2.x OpenCLIP)); not a Stable Diffusion 1.x/2.x checkpoint"
        )
    context = _context_dim(shp)
    if context != width:
        raise ConfigError(
            f"{name}: U-Net cross-attention context {context} does not match the text encoder's width {width}"
        )
    return family


def _context_dim(shp: dict[str, tuple[int, ...]]) -> int | None:
    for k, s in shp.items():
        if k.startswith(UNET) and k.endswith("attn2.to_k.weight"):
            return s[1]
    return None


def _indices(shp: dict[str, tuple[int, ...]], prefix: str) -> list[int]:
    """Sorted distinct integers ``n`` of keys ``prefix + "n." ...``."""
    found = {int(m[1]) for k in shp if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return sorted(found)


def _has(shp: dict[str, tuple[int, ...]], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in shp)


def _unet_dims(shp: dict[str, tuple[int, ...]], family: str, name: str) -> dict[str, Any]:
    """UNet2DConditionModel config values the LDM shapes tell (diffusers naming).

    LDM layout (``openaimodel.UNetModel``): ``input_blocks.0`` is conv_in; then per level
    ``layers_per_block`` blocks ``[ResBlock, (SpatialTransformer)]`` and, except after the last
    level, one ``[Downsample]`` (``.0.op``); ``middle_block`` [Res, Transformer, Res];
    ``output_blocks`` ``layers_per_block + 1`` per level, upsampler last in the level.
    """
    p = UNET
    blocks = [i for i in _indices(shp, p + "input_blocks.") if i > 0]
    levels: list[list[int]] = [[]]
    for i in blocks:
        if p + f"input_blocks.{i}.0.op.weight" in shp:
            levels.append([])
        else:
            levels[-1].append(i)
    if not levels[0] or any(len(lv) != len(levels[0]) for lv in levels):
        raise DataError(f"{name}: U-Net input blocks do not form equal levels ({len(blocks)} blocks)")
    channels = [shp[p + f"input_blocks.{lv[0]}.0.out_layers.3.weight"][0] for lv in levels]
    per_level = len(levels[0])
    down = [
        "CrossAttnDownBlock2D" if _has(shp, p + f"input_blocks.{lv[0]}.1.") else "DownBlock2D"
        for lv in levels
    ]
    up = [
        "CrossAttnUpBlock2D"
        if _has(shp, p + f"output_blocks.{j * (per_level + 1)}.1.transformer_blocks.")
        else "UpBlock2D"
        for j in range(len(levels))
    ]
    first_attn = next(
        (
            p + f"input_blocks.{lv[0]}.1."
            for lv, kind in zip(levels, down, strict=True)
            if kind != "DownBlock2D"
        ),
        p + "middle_block.1.",
    )
    proj_in = shp.get(first_attn + "proj_in.weight", ())
    depth = len(_indices(shp, first_attn + "transformer_blocks."))
    if family == "sd1":
        heads: Any = 8  # ldm v1-inference.yaml: num_heads 8 at every level
    else:
        heads = [max(1, c // HEAD_CHANNELS) for c in channels]  # v2-inference*.yaml: num_head_channels 64
    return {
        "in_channels": shp[p + "input_blocks.0.0.weight"][1],
        "out_channels": shp[p + "out.2.weight"][0],
        "block_out_channels": channels,
        "layers_per_block": per_level,
        "down_block_types": down,
        "up_block_types": up,
        "cross_attention_dim": _context_dim(shp),
        "attention_head_dim": heads,
        "use_linear_projection": len(proj_in) == 2,
        "transformer_layers_per_block": max(depth, 1),
        "norm_num_groups": LDM_GROUPS,
    }


def _vae_dims(shp: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """AutoencoderKL config values the LDM shapes tell (``encoder.down.N.block.M``, ``quant_conv``)."""
    p = VAE + "encoder."
    levels = _indices(shp, p + "down.")
    return {
        "in_channels": shp[p + "conv_in.weight"][1],
        "out_channels": shp[VAE + "decoder.conv_out.weight"][0],
        "latent_channels": shp[VAE + "quant_conv.weight"][0] // 2,
        "block_out_channels": [shp[p + f"down.{i}.block.0.conv1.weight"][0] for i in levels],
        "layers_per_block": len(_indices(shp, p + "down.0.block.")),
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "norm_num_groups": LDM_GROUPS,
    }


def _text_dims(shp: dict[str, tuple[int, ...]], family: str) -> dict[str, Any]:
    """CLIPTextConfig values the shapes tell; heads = width / 64 (CLIP ViT-L 12, OpenCLIP ViT-H 16)."""
    if family == "sd1":
        p = CLIP
        vocab, width = shp[p + "embeddings.token_embedding.weight"]
        positions = shp[p + "embeddings.position_embedding.weight"][0]
        layers = len(_indices(shp, p + "encoder.layers."))
        inner = shp[p + "encoder.layers.0.mlp.fc1.weight"][0]
    else:  # OpenCLIP; SD 2.x conditions on the penultimate layer, so diffusers keeps all but the last
        p = OPEN_CLIP
        vocab, width = shp[p + "token_embedding.weight"]
        positions = shp[p + "positional_embedding"][0]
        layers = len(_indices(shp, p + "transformer.resblocks.")) - 1
        inner = shp[p + "transformer.resblocks.0.mlp.c_fc.weight"][0]
    return {
        "vocab_size": vocab,
        "hidden_size": width,
        "max_position_embeddings": positions,
        "num_hidden_layers": layers,
        "intermediate_size": inner,
        "num_attention_heads": max(1, width // HEAD_CHANNELS),
    }


def shipped_configs(family: str) -> dict[str, dict[str, Any]]:
    """The family's shipped component configs (``generate/configs/<family>/<component>/config.json``)
    plus ``scheduler`` (``scheduler/scheduler_config.json``). ConfigError for an unknown family."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown checkpoint family {family!r}; valid: {', '.join(FAMILIES)}")
    root = CONFIGS_DIR / family
    out = {c: json.loads((root / c / "config.json").read_text()) for c in COMPONENTS}
    out["scheduler"] = json.loads((root / "scheduler" / "scheduler_config.json").read_text())
    return out


def component_configs(
    family: str, shapes: ShapeMap | Mapping[str, torch.Tensor], name: str = "checkpoint"
) -> dict[str, dict[str, Any]]:
    """The family's shipped configs with every dimension the shapes tell replaced by the checkpoint's.

    For a real SD 1.5 / 2.x file the result equals :func:`shipped_configs`; for a smaller model in
    the same key layout only its dimensions differ. What shapes cannot tell comes from the family:
    image size (``sample_size``), attention heads (SD 1.x: 8 per level; SD 2.x: channels / 64; text:
    width / 64), scheduler and VAE scaling factor. Raises ConfigError when ``family`` does not fit
    the key layout, DataError when the U-Net's blocks do not form levels.
    """
    shp = shapes_of(shapes)
    layout = detect(shp, name)
    if layout != family.removesuffix("-v"):
        raise ConfigError(
            f"{name}: has the key layout of {layout}, not of {family} (--model-config {family})"
        )
    configs = shipped_configs(family)
    try:
        configs["unet"].update(_unet_dims(shp, layout, name))
        configs["vae"].update(_vae_dims(shp))
        configs["text_encoder"].update(_text_dims(shp, layout))
    except (KeyError, IndexError) as exc:
        raise DataError(f"{name}: incomplete {layout} checkpoint (no tensor {exc})") from None
    return configs


def config_folder(family: str, configs: dict[str, dict[str, Any]] | None = None) -> Path:
    """A diffusers folder (model_index.json, component configs, scheduler, tokenizer) for ``configs``.

    ``configs`` defaults to the family's shipped ones. Built once into
    ``<cache_dir()>/sd-configs/<family>-<digest of the configs>/``: the shipped files, the given
    component configs and the tokenizer's vocab.json/merges.txt made from open_clip's BPE file
    (``tokenizer_files``), then moved into place in one rename, so a folder there is complete.
    """
    configs = configs if configs is not None else shipped_configs(family)
    text = json.dumps(configs, sort_keys=True)
    digest = hashlib.sha256(f"{family}\n{text}".encode()).hexdigest()[:16]
    dest = cache_dir() / "sd-configs" / f"{family}-{digest}"
    if (dest / "model_index.json").is_file():
        return dest
    from t2iscope.generate.tokenizer_files import write_clip_tokenizer_files

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        shutil.copytree(CONFIGS_DIR / family, tmp, dirs_exist_ok=True)
        for component in COMPONENTS:
            fileio.write_json(tmp / component / "config.json", configs[component])
        fileio.write_json(tmp / "scheduler" / "scheduler_config.json", configs["scheduler"])
        shipped_tokenizer = {
            f.name: f.read_bytes() for f in (CONFIGS_DIR / family / "tokenizer").iterdir() if f.is_file()
        }
        write_clip_tokenizer_files(tmp / "tokenizer")
        for fname, data in shipped_tokenizer.items():  # the family's pad token (SD 2.x: "!")
            fileio.write_bytes(tmp / "tokenizer" / fname, data)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "model_index.json").is_file():  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------
# v-prediction (A1111 modules/sd_models_config.py: is_using_v_parameterization_for_sd2)


@torch.no_grad()
def is_v_prediction(unet: torch.nn.Module) -> bool:
    """A1111's test: does this SD 2.x U-Net predict v (768-v) rather than noise (512-base)?

    Runs the U-Net once in float32 on a constant latent ``x`` (0.5, 1 x 4 x 8 x 8) at timestep 999
    with a constant context (0.5, 1 x 2 x cross_attention_dim): a v-model's output minus ``x``
    averages below -1, an epsilon model's does not. Trained weights only: on random weights the
    answer is arbitrary, so callers that know the family pass it instead.
    """
    param = next(unet.parameters())
    dim = int(unet.config.cross_attention_dim)
    channels = int(unet.config.in_channels)
    x = torch.full((1, channels, 8, 8), 0.5, device=param.device, dtype=param.dtype)
    context = torch.full((1, 2, dim), 0.5, device=param.device, dtype=param.dtype)
    t = torch.tensor([999], device=param.device)
    out = unet(x, t, encoder_hidden_states=context).sample
    return bool((out.float() - x.float()).mean().item() < -1)


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class Loaded:
    """A pipeline read from a single file, with the family it was built as (None: a config folder)."""

    pipe: Any
    family: str | None
    config: Path


def _check_loaded(module: torch.nn.Module, part: str, name: str) -> None:
    """DataError when a weight of ``module`` was never loaded (diffusers leaves it on ``meta``)."""
    meta = [k for k, v in module.state_dict().items() if v.is_meta]
    if meta:
        raise DataError(f"{name}: incomplete checkpoint: no {part} weight {meta[0]} ({len(meta)} missing)")


def load_pipeline(
    path: str | os.PathLike[str],
    *,
    family: str | None = None,
    config: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Loaded:
    """A ``StableDiffusionPipeline`` (safety checker off) from a single-file checkpoint, offline.

    ``family`` (``sd1``, ``sd2``, ``sd2-v``) overrides detection; ``config`` (a diffusers folder)
    overrides the configs entirely (``--model-config FOLDER``: its component configs must fit the
    weights). Otherwise the family is :func:`detect`-ed, SD 2.x is told apart by
    :func:`is_v_prediction`, and the configs are :func:`component_configs`. Components are
    converted from the LDM layout by diffusers (``UNet2DConditionModel``/``AutoencoderKL``
    ``.from_single_file`` with a local ``config``; ``create_diffusers_clip_model_from_ldm``).
    Raises ConfigError for an unsupported layout or family, DataError (naming the file) for an
    unreadable file or weights that do not fit.
    """
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers import schedulers as diffusers_schedulers
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTokenizer

    src = Path(path)
    name = str(src)
    state = read_state_dict(src)
    if config is not None:
        folder, fam = Path(config), None
    else:
        fam = family or detect(state, name)
        folder = config_folder(fam, component_configs(fam, state, name))
    common = {"config": str(folder), "local_files_only": True}
    part = "U-Net"
    try:
        unet = UNet2DConditionModel.from_single_file(
            state, subfolder="unet", torch_dtype=torch.float32, **common
        )
        _check_loaded(unet, part, name)
        if family is None and fam == "sd2" and is_v_prediction(unet):
            fam = "sd2-v"
            configs = component_configs(fam, state, name)
            folder = config_folder(fam, configs)
            unet.register_to_config(sample_size=configs["unet"]["sample_size"])  # the only U-Net difference
            common["config"] = str(folder)
        unet = unet.to(dtype)
        part = "VAE"
        vae = AutoencoderKL.from_single_file(state, subfolder="vae", torch_dtype=dtype, **common)
        _check_loaded(vae, part, name)
        part = "text encoder"
        text = create_diffusers_clip_model_from_ldm(
            CLIPTextModel, checkpoint=_text_keys(state), subfolder="text_encoder", torch_dtype=dtype, **common
        )
        _check_loaded(text, part, name)
        part = "tokenizer and scheduler"
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        scheduler_cls = getattr(diffusers_schedulers, scheduler_config.get("_class_name", "PNDMScheduler"))
        scheduler = scheduler_cls.from_config(scheduler_config)
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # diffusers/transformers raise ValueError/OSError/RuntimeError for misfits
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "meta tensor" in reason:  # diffusers leaves weights the checkpoint lacks on the meta device
            raise DataError(f"{name}: incomplete checkpoint: some {part} weights are missing") from None
        reason = reason.split(". If you want")[0].replace("Cannot load  because ", "")  # diffusers' advice
        where = f"the {fam} configs" if fam else f"the configs in {folder}"
        raise DataError(f"{name}: {part} weights do not fit {where} ({reason[:200]})") from None
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return Loaded(pipe, fam, folder)


def _text_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The text encoder's tensors; for OpenCLIP without its last resblock (SD 2.x conditions on the
    penultimate layer; diffusers drops ``resblocks.23`` by name, this drops the last one of any depth)."""
    prefix = OPEN_CLIP + "transformer.resblocks."
    blocks = _indices(shapes_of(state), prefix)
    if not blocks:
        return {k: v for k, v in state.items() if k.startswith("cond_stage_model.")}
    last = f"{prefix}{blocks[-1]}."
    return {k: v for k, v in state.items() if k.startswith("cond_stage_model.") and not k.startswith(last)}


# ---------------------------------------------------------------------------------------------
# Writing the LDM layout (the reverse of diffusers' conversion; for tests, benchmarks, fixtures)

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))
_OPEN_CLIP_LAYER = (
    ("self_attn.out_proj", "attn.out_proj"),
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
)


def _unet_key(key: str, per_level: int, attn_up: Sequence[bool]) -> str:
    head = key.partition(".")[0]
    for new, old in _UNET_TOP.items():
        if key.startswith(new + "."):
            return old + key[len(new) :]
    parts = key.split(".")
    if head == "mid_block":
        kind, j, tail = parts[1], int(parts[2]), ".".join(parts[3:])
        index = 1 if kind == "attentions" else 2 * j
        return f"middle_block.{index}." + (_resnet_tail(tail) if kind == "resnets" else tail)
    i, kind, j, tail = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
    if head == "down_blocks":
        if kind == "downsamplers":
            return f"input_blocks.{(per_level + 1) * (i + 1)}.0.op." + tail.removeprefix("conv.")
        block = (per_level + 1) * i + j + 1
        return f"input_blocks.{block}.{0 if kind == 'resnets' else 1}." + (
            _resnet_tail(tail) if kind == "resnets" else tail
        )
    if head == "up_blocks":
        if kind == "upsamplers":
            return f"output_blocks.{(per_level + 1) * i + per_level}.{2 if attn_up[i] else 1}.{tail}"
        block = (per_level + 1) * i + j
        return f"output_blocks.{block}.{0 if kind == 'resnets' else 1}." + (
            _resnet_tail(tail) if kind == "resnets" else tail
        )
    raise ValueError(f"unexpected U-Net key {key}")


def _resnet_tail(tail: str) -> str:
    for new, old in _RESNET:
        if tail.startswith(new + "."):
            return old + tail[len(new) :]
    return tail


def _vae_key(key: str, levels: int) -> str:
    parts = key.split(".")
    side = parts[0]
    if len(parts) > 2 and parts[1] in ("down_blocks", "up_blocks"):
        i, kind, tail = int(parts[2]), parts[3], ".".join(parts[4:])
        level = i if parts[1] == "down_blocks" else levels - 1 - i
        word = "down" if parts[1] == "down_blocks" else "up"
        if kind == "resnets":
            j, rest = tail.split(".", 1)
            return f"{side}.{word}.{level}.block.{j}." + rest.replace("conv_shortcut", "nin_shortcut")
        sampler = "downsample" if word == "down" else "upsample"
        return f"{side}.{word}.{level}.{sampler}." + tail.removeprefix("0.")
    if len(parts) > 2 and parts[1] == "mid_block":
        kind, j, tail = parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "resnets":
            return f"{side}.mid.block_{j + 1}." + tail.replace("conv_shortcut", "nin_shortcut")
        for new, old in _VAE_ATTN:
            if tail.startswith(new + "."):
                return f"{side}.mid.attn_1.{old}" + tail[len(new) :]
    return key.replace("conv_norm_out", "norm_out")


def ldm_state_dict(
    unet: Any, vae: Any, text_encoder: Any, family: str, *, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """The original LDM layout (as A1111/CompVis checkpoints store it) of diffusers components.

    ``model.diffusion_model.*`` (openaimodel UNetModel), ``first_stage_model.*`` (VAE; attention
    projections as 1x1 convs) and, for ``sd1``, ``cond_stage_model.transformer.text_model.*`` (with
    the ``position_ids`` buffer real files carry) or, for ``sd2``/``sd2-v``,
    ``cond_stage_model.model.*`` (open_clip: fused ``in_proj``, a ``text_projection`` and one extra
    last resblock, a copy of the final one, which SD 2.x never uses), plus LatentDiffusion's
    top-level noise-schedule buffers (``betas``, ``alphas_cumprod``, ...). :func:`load_pipeline`
    reads the result back into equal components. Floating tensors are cast to ``dtype`` when given.
    """
    out: dict[str, torch.Tensor] = {}
    ucfg = unet.config
    attn_up = [t != "UpBlock2D" for t in ucfg.up_block_types]
    for k, v in unet.state_dict().items():
        out[UNET + _unet_key(k, int(ucfg.layers_per_block), attn_up)] = v
    levels = len(vae.config.block_out_channels)
    for k, v in vae.state_dict().items():
        key = _vae_key(k, levels)
        if ".mid.attn_1." in key and key.endswith(".weight") and v.ndim == 2:
            v = v[:, :, None, None]
        out[VAE + key] = v
    text = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    if family == "sd1":
        for k, v in text.items():
            out[CLIP + k] = v
        positions = text_encoder.config.max_position_embeddings
        out[CLIP + "embeddings.position_ids"] = torch.arange(positions).unsqueeze(0)
    else:
        p = OPEN_CLIP
        out[p + "token_embedding.weight"] = text["embeddings.token_embedding.weight"]
        out[p + "positional_embedding"] = text["embeddings.position_embedding.weight"]
        out[p + "ln_final.weight"] = text["final_layer_norm.weight"]
        out[p + "ln_final.bias"] = text["final_layer_norm.bias"]
        layers = int(text_encoder.config.num_hidden_layers)
        for i in [*range(layers), layers]:  # the extra last block: OpenCLIP's final layer, unused by SD 2.x
            src, dst = f"encoder.layers.{min(i, layers - 1)}.", f"{p}transformer.resblocks.{i}."
            for kind in ("weight", "bias"):
                out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                    [text[src + f"self_attn.{q}_proj.{kind}"] for q in "qkv"]
                )
                for new, old in _OPEN_CLIP_LAYER:
                    out[dst + f"{old}.{kind}"] = text[src + f"{new}.{kind}"].clone()
        width = int(text_encoder.config.hidden_size)
        out[p + "text_projection"] = torch.eye(width)
        out[p + "logit_scale"] = torch.tensor(4.6052)
    out.update(_ddpm_buffers())
    if dtype is not None:
        out = {k: v.to(dtype) if v.is_floating_point() else v for k, v in out.items()}
    return {k: v.contiguous() for k, v in out.items()}


def _ddpm_buffers(steps: int = 1000, start: float = 0.00085, end: float = 0.012) -> dict[str, torch.Tensor]:
    """The noise-schedule buffers CompVis' ``LatentDiffusion`` saves beside the weights (top-level
    ``betas``, ``alphas_cumprod``, ...; SD's scaled_linear schedule), which a loader must skip."""
    betas = torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas[:-1]])
    posterior = betas * (1 - prev) / (1 - alphas)
    buffers = {
        "betas": betas,
        "alphas_cumprod": alphas,
        "alphas_cumprod_prev": prev,
        "sqrt_alphas_cumprod": alphas.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1 - alphas).sqrt(),
        "log_one_minus_alphas_cumprod": (1 - alphas).log(),
        "sqrt_recip_alphas_cumprod": (1 / alphas).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1 / alphas - 1).sqrt(),
        "posterior_variance": posterior,
        "posterior_log_variance_clipped": torch.log(torch.clamp(posterior, min=1e-20)),
        "posterior_mean_coef1": betas * prev.sqrt() / (1 - alphas),
        "posterior_mean_coef2": (1 - prev) * (1 - betas).sqrt() / (1 - alphas),
    }
    return {k: v.float() for k, v in buffers.items()}
