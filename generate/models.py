"""Load a Stable Diffusion 1.x/2.x model from a local path, never from a hub.

Three sources: the embedded default (``models/sd``), any local diffusers folder, or a single-file
``.safetensors``/``.ckpt`` checkpoint (A1111's format), all read by the one weight loader's
``t2iscope.weights.read_stable_diffusion`` (a fresh copy: generation changes dtype and scheduler).
A single file needs no config: its family is inferred from its tensors and the shipped configs
are used (``t2iscope.generate.checkpoints``); ``--model-config`` (a family name or a diffusers
folder) overrides. A single file's A1111 short hash (``Model hash:``) is computed at load time.

On CUDA the model takes the GPU path: fp16 weights, channels_last U-Net, PyTorch SDPA attention
and, on request, ``torch.compile`` of the U-Net.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from t2iscope.errors import ConfigError, DataError, T2IError
from t2iscope.paths import models_dir
from t2iscope.weights import quiet_loading, read_stable_diffusion

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
EXPECTED = "a diffusers folder with model_index.json or a .safetensors/.ckpt checkpoint"


@dataclass
class Model:
    """A loaded pipeline plus what the manifest records about it."""

    pipe: StableDiffusionPipeline
    model_id: str
    device: torch.device
    dtype: torch.dtype
    scheduler_config: Any = None  # the model's own, kept apart from pipe.scheduler (samplers swap it)
    progress: str | None = None  # label of a per-step tqdm bar on stderr; None: no bar (suites count images)
    # A1111's short hash of a single-file checkpoint (first 10 hex digits of the file's sha256,
    # infotext "Model hash: ..."); None for diffusers folders and the embedded model.
    model_hash: str | None = None
    # Extra networks, as A1111's models/Lora and embeddings/ folders: <lora:name:w> tags find their
    # files under lora_dir; embeddings (textual inversion, generate.embeddings) are loaded once.
    lora_dir: Path | None = None
    embeddings: Any = None

    def __post_init__(self) -> None:
        if self.scheduler_config is None:
            self.scheduler_config = self.pipe.scheduler.config

    def progress_bar(self) -> dict[str, Any]:
        """tqdm options for the denoising loop (diffusers' ``set_progress_bar_config`` takes them too)."""
        return {"disable": True} if self.progress is None else {"desc": self.progress, "unit": "step"}

    @property
    def native_size(self) -> int:
        """Image side the U-Net was built for (sample_size x VAE scale factor)."""
        return int(self.pipe.unet.config.sample_size) * self.pipe.vae_scale_factor


def embedded_model_path() -> Path:
    return models_dir() / "sd"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def _check_source(path: Path, given: bool) -> None:
    if not path.exists():
        if not given:
            raise ConfigError(
                f"embedded model not found at {path}; train it with `t2iscope generate train` "
                "or pass --model PATH"
            )
        hint = " (hub ids are not supported: download the model and pass its local path)"
        raise ConfigError(f"--model {path}: no such file or folder; expected {EXPECTED}{hint}")
    if path.is_dir() and not (path / "model_index.json").is_file():
        raise ConfigError(f"--model {path}: folder has no model_index.json; expected {EXPECTED}")
    if path.is_file() and path.suffix not in SINGLE_FILE_SUFFIXES:
        raise ConfigError(f"--model {path}: unknown file type {path.suffix!r}; expected {EXPECTED}")


def gpu_path(pipe: StableDiffusionPipeline, compile_unet: bool = False) -> None:
    """fp16 is set by the caller; here channels_last, SDPA attention and optional torch.compile."""
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.vae.set_attn_processor(AttnProcessor2_0())
    if compile_unet:
        pipe.unet = torch.compile(pipe.unet, fullgraph=False)


def model_id_for(path: str | Path | None) -> str:
    """The id a model is recorded under: ``embedded-sd``, a checkpoint's stem or a folder's name."""
    if path is None:
        return "embedded-sd"
    src = Path(path)
    return src.stem if src.is_file() else src.name


def check_model_options(path: str | Path | None = None, device: str = "auto") -> torch.device:
    """The cheap checks of ``load_model`` (device, source kind), so a command refuses before any work.

    Raises ConfigError for an unknown or unavailable device, a missing source or a wrong file type.
    """
    dev = resolve_device(device)
    _check_source(Path(path) if path is not None else embedded_model_path(), given=path is not None)
    return dev


def load_model(
    path: str | Path | None = None,
    *,
    device: str = "auto",
    config: str | Path | None = None,
    compile_unet: bool = False,
    lora_dir: str | Path | None = None,
    embeddings_dir: str | Path | None = None,
) -> Model:
    """Load ``path`` (default: the embedded model) onto ``device`` (auto = CUDA when present).

    ``lora_dir`` is where ``<lora:name:weight>`` tags find ``name.safetensors``; every embedding
    in ``embeddings_dir`` is loaded (``generate.embeddings.load_embeddings``) and used where its
    file name appears in a prompt.

    ``config`` only matters for a single-file checkpoint: a family (``sd1``, ``sd2``, ``sd2-v``)
    or a diffusers folder overriding the inferred architecture (``--model-config``). A single
    file's ``Model.model_hash`` is A1111's short hash (cached per file, see
    ``checkpoints.model_hash``). Raises ConfigError for bad options or an unsupported checkpoint,
    DataError (naming the file) for files that cannot be read or loaded.
    """
    dev = check_model_options(path, device)
    src = Path(path) if path is not None else embedded_model_path()
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    try:
        pipe = read_stable_diffusion(src, config=config, dtype=dtype)
    except T2IError:
        raise
    except Exception as exc:
        raise DataError(f"--model {src}: could not load a Stable Diffusion pipeline ({exc})") from None
    digest = None
    if src.is_file():
        from t2iscope.generate.checkpoints import model_hash

        digest = model_hash(src)
    model = wrap_pipeline(
        pipe, model_id_for(path), device=str(dev), compile_unet=compile_unet, model_hash=digest
    )
    return use_networks(model, lora_dir=lora_dir, embeddings_dir=embeddings_dir)


def use_networks(
    model: Model, *, lora_dir: str | Path | None = None, embeddings_dir: str | Path | None = None
) -> Model:
    """Give ``model`` a LoRA folder and the embeddings of a folder; returns it.

    Raises ConfigError for a missing folder, DataError naming an unreadable embedding file.
    """
    from t2iscope.generate.embeddings import load_embeddings

    if lora_dir is not None:
        if not Path(lora_dir).is_dir():
            raise ConfigError(f"--lora-dir {lora_dir}: no such folder")
        model.lora_dir = Path(lora_dir)
    if embeddings_dir is not None:
        model.embeddings = load_embeddings(embeddings_dir, model.pipe.tokenizer, model.pipe.text_encoder)
    return model


def wrap_pipeline(
    pipe: StableDiffusionPipeline,
    model_id: str,
    *,
    device: str = "auto",
    compile_unet: bool = False,
    model_hash: str | None = None,
) -> Model:
    """Put an in-memory pipeline on ``device`` (the GPU path on CUDA) and wrap it as a Model."""
    dev = resolve_device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    with quiet_loading():
        pipe.to(dev, dtype)
    if dev.type == "cuda":
        gpu_path(pipe, compile_unet)
    pipe.set_progress_bar_config(disable=True)
    return Model(pipe=pipe, model_id=model_id, device=dev, dtype=dtype, model_hash=model_hash)
