"""One loader for every weight folder: ``load_model(folder)`` picks the architecture, loads once.

A folder says what it holds:

- ``open_clip_config.json`` (+ ``open_clip_model.safetensors``): an open_clip model, loaded with
  open_clip's own ``local-dir:`` schema -> :class:`OpenClip`;
- ``model_index.json``: a diffusers Stable Diffusion folder -> ``StableDiffusionPipeline``;
- otherwise ``config.json`` with an ``architecture`` field naming an entry of :data:`ARCHITECTURES`:
  ``laion-improved-aesthetic-mlp`` -> :class:`AestheticModel` (its ``clip`` field is the CLIP folder,
  relative to this one), ``t2iscope-watermark-cnn`` -> :class:`WatermarkModel` and
  ``t2iscope-legs-cnn`` -> :class:`LegsModel`.

Loaded models are cached per process by (resolved folder, device) and reloaded only when a file in
the folder (or a folder it references) changes, so every caller in a process (a curation stage,
a judge, a Ray worker calling the same function once at start) shares one copy. Treat returned
objects as read-only: swap a pipeline's scheduler on a copy, never on the cached pipeline.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from t2iscope.errors import ConfigError, DataError
from t2iscope.nets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AestheticMLP,
    LegsCNN,
    WatermarkCNN,
    clip_embeddings,
)
from t2iscope.paths import models_dir
from t2iscope.registry import Registry

CONFIG = "config.json"
OPEN_CLIP = "open_clip"
STABLE_DIFFUSION = "diffusers-stable-diffusion"
AESTHETIC = "laion-improved-aesthetic-mlp"
WATERMARK = "t2iscope-watermark-cnn"
LEGS = "t2iscope-legs-cnn"
# open_clip's own file names for a local-dir/hub folder, in the order its loader prefers them.
OPEN_CLIP_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
)
HEAD_WEIGHTS = ("*.safetensors", "*.pth", "*.pt")  # LAION publishes its aesthetic heads as .pth
# Folders trained before the fix wrote "../clip (t2iscope-tiny-clip)": a path, then the name.
_LEGACY_REFERENCE = re.compile(r"(?P<path>.+?) \([^()]*\)")


@dataclass(frozen=True)
class WeightFolder:
    """A recognised weight folder: its path, architecture, config and the folders its config names.

    ``config`` is the parsed ``config.json``; folders recognised by a marker file get ``{}`` (their
    own loader reads their config).
    """

    path: Path
    architecture: str
    config: dict[str, Any]
    references: dict[str, Path]

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """(file, size, mtime_ns) of every file here and in referenced folders: changes on retraining."""
        stats = [
            (str(f), f.stat())
            for folder in (self.path, *self.references.values())
            for f in folder.resolve().rglob("*")
            if f.is_file()
        ]
        return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats))


@dataclass(frozen=True)
class Architecture:
    """How one kind of weight folder loads.

    ``load(folder, device)`` returns the model (its docstring says what it returns). ``marker`` is
    the file that identifies the folder; ``config.json`` means the folder is identified by that
    file's ``architecture`` field. ``references`` are config keys naming other model folders,
    relative to this one.
    """

    load: Callable[[WeightFolder, str], Any]
    marker: str = CONFIG
    references: tuple[str, ...] = ()


ARCHITECTURES: Registry[Architecture] = Registry("model architecture")


class ImageScoreModel(Protocol):
    """A model that scores square uint8 RGB images (the curation scorers take any of these)."""

    @property
    def input_size(self) -> int: ...

    def score(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor: ...


@dataclass(frozen=True)
class OpenClip:
    """An open_clip model with its preprocess, tokenizer and the weights file it came from."""

    folder: Path
    model: torch.nn.Module
    preprocess: Any
    tokenizer: Any
    weights: Path

    @property
    def input_size(self) -> int:
        """Side in pixels of the image tower's square input."""
        size = self.model.visual.preprocess_cfg["size"]
        return int(size if isinstance(size, int) else size[0])

    def embed(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """L2-normalised embeddings, float32 ``N x D`` on CPU, of uint8 ``N x 3 x S x S`` (S = input_size)."""
        cfg = self.model.visual.preprocess_cfg
        device = str(next(self.model.parameters()).device)
        return clip_embeddings(self.model, images, device, batch, cfg["mean"], cfg["std"])

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str], batch: int = 512) -> torch.Tensor:
        """L2-normalised embeddings, float32 ``N x D`` on CPU, of ``texts``, ``batch`` at a time.

        The model's own tokenizer cuts each text to the tower's context (77 tokens for CLIP), as
        open_clip does when LAION and DataComp compute their similarity columns.
        """
        device = next(self.model.parameters()).device
        parts = [
            torch.nn.functional.normalize(
                self.model.encode_text(self.tokenizer(list(texts[i : i + batch])).to(device)).float(), dim=-1
            ).cpu()
            for i in range(0, len(texts), batch)
        ]
        return torch.cat(parts) if parts else torch.zeros((0, int(self.model.visual.output_dim)))


@dataclass(frozen=True)
class AestheticModel:
    """LAION's improved aesthetic predictor: CLIP image embedding -> L2 norm -> MLP -> score."""

    folder: Path
    config: dict[str, Any]
    head: AestheticMLP
    clip: OpenClip

    @property
    def input_size(self) -> int:
        return self.clip.input_size

    @torch.inference_mode()
    def score(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """Aesthetic score (the world's 1-10 scale), float32 ``N`` on CPU, of uint8 ``N x 3 x S x S``."""
        device = next(self.head.parameters()).device
        return self.head(self.clip.embed(images, batch).to(device)).squeeze(-1).cpu()


@dataclass(frozen=True)
class WatermarkModel:
    """The watermark CNN: P(watermark) = softmax(logits)[:, 0], LAION-5B-WatermarkDetection's output."""

    folder: Path
    config: dict[str, Any]
    cnn: WatermarkCNN
    input_size: int

    @torch.inference_mode()
    def score(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """P(watermark) in [0, 1], float32 ``N`` on CPU, of uint8 ``N x 3 x S x S`` (S = input_size)."""
        device = next(self.cnn.parameters()).device
        parts = [
            self.cnn.pwatermark(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)
        ]
        return torch.cat(parts)


@dataclass(frozen=True)
class LegsModel:
    """The leg counter: visible legs of the subject in an image, ``argmax`` over 0 .. classes - 1.

    Trained on world renders carried into the embedded Stable Diffusion's image domain
    (``generate/train/legs.py``); its accuracy on human labels is in models/README.md.
    """

    folder: Path
    config: dict[str, Any]
    cnn: LegsCNN
    input_size: int

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """uint8 ``N x 3 x S x S``: each image in RGB, resized (Lanczos, antialiased) to the input size."""
        size = (self.input_size, self.input_size)
        arrays = [np.asarray(im.convert("RGB").resize(size, Image.Resampling.LANCZOS)) for im in images]
        if not arrays:
            return torch.zeros((0, 3, *size), dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def probabilities(self, images: Sequence[Image.Image], batch: int = 256) -> torch.Tensor:
        """P(legs = k), float32 ``N x classes`` on CPU, for PIL images of any size and mode."""
        device = next(self.cnn.parameters()).device
        pixels = self.pixels(images)
        if not len(pixels):
            return torch.zeros((0, self.cnn.classes))
        parts = [
            self.cnn.probabilities(pixels[i : i + batch].to(device)).cpu()
            for i in range(0, len(pixels), batch)
        ]
        return torch.cat(parts)

    def count(self, images: Sequence[Image.Image], batch: int = 256) -> list[int]:
        """The most likely number of visible legs of each image."""
        return [int(k) for k in self.probabilities(images, batch).argmax(-1)]


def model_folder(name: str, root: str | Path | None = None) -> Path:
    """``root/name``; ``root`` defaults to the shipped models (``T2ISCOPE_MODELS`` overrides)."""
    return Path(root if root is not None else models_dir()) / name


def model_folders(root: str | Path | None = None) -> list[Path]:
    """Every model folder under ``root`` (default: the shipped models), by name; training work
    folders (``_train``, git-ignored) and hidden ones are not models."""
    found = Path(root if root is not None else models_dir())
    children = found.iterdir() if found.is_dir() else []
    return sorted(p for p in children if p.is_dir() and p.name[0] not in "_.")


def inspect_folder(folder: str | Path) -> WeightFolder:
    """Recognise a weight folder without loading weights.

    Raises ConfigError (one line naming the folder or its config) when it is missing, has no marker
    file, its config lacks ``architecture`` or names an unknown one, or a referenced folder is
    missing; DataError when ``config.json`` is not a JSON object.
    """
    folder = Path(folder)
    for name in ARCHITECTURES:
        marker = ARCHITECTURES.get(name).marker
        if marker != CONFIG and (folder / marker).is_file():
            return WeightFolder(folder, name, {}, {})
    path = folder / CONFIG
    if not path.is_file():
        markers = sorted({ARCHITECTURES.get(n).marker for n in ARCHITECTURES} - {CONFIG})
        raise ConfigError(
            f"{folder}: not a model folder (no {path}, {' or '.join(markers)}); train it with "
            "`t2iscope generate train all` or point T2ISCOPE_MODELS at a folder that has it"
        )
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(config).__name__}")
    name = config.get("architecture")
    if not isinstance(name, str):
        raise ConfigError(f"{path}: no 'architecture' field; valid: {', '.join(ARCHITECTURES.names())}")
    try:
        arch = ARCHITECTURES.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    refs = {key: _reference(folder, path, config, key) for key in arch.references}
    return WeightFolder(folder, name, config, refs)


def _reference(folder: Path, path: Path, config: dict[str, Any], key: str) -> Path:
    """The model folder that ``config[key]`` names, relative to ``folder``.

    Also accepts the ``"../clip (t2iscope-tiny-clip)"`` spelling that ``generate train`` wrote before
    it wrote plain paths, so heads users already trained keep loading without an edit.
    """
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: field '{key}' must name a model folder relative to {folder}")
    target = folder / value
    legacy = _LEGACY_REFERENCE.fullmatch(value)
    if not target.is_dir() and legacy and (folder / legacy["path"]).is_dir():
        target = folder / legacy["path"]
    if not target.is_dir():
        raise ConfigError(f"{path}: field '{key}': model folder {target} not found")
    return target


_CACHE: dict[tuple[Path, str], tuple[tuple[tuple[str, int, int], ...], Any]] = {}
_LOCK = threading.RLock()  # re-entrant: loading a head loads the CLIP it references


def load_model(folder: str | Path, device: str = "cpu", expect: str | None = None) -> Any:
    """The model in ``folder`` on ``device``, loaded once per process (see the module docstring).

    ``expect`` names the architecture the caller needs; another one is a ConfigError naming the
    folder. Missing or unknown folders, configs and weights raise as :func:`inspect_folder` does;
    weights that do not fit the architecture raise DataError naming the file.
    """
    spec = inspect_folder(folder)
    if expect is not None and spec.architecture != expect:
        raise ConfigError(f"{spec.path}: holds a '{spec.architecture}' model, expected '{expect}'")
    key = (spec.path.resolve(), device)
    stamp = spec.fingerprint()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is None or hit[0] != stamp:
            hit = _CACHE[key] = (stamp, ARCHITECTURES.get(spec.architecture).load(spec, device))
        return hit[1]


def _weights_file(folder: Path, patterns: tuple[str, ...]) -> Path:
    """The one weights file in ``folder``: ``model.safetensors`` if present, else the only match."""
    if (folder / "model.safetensors").is_file():
        return folder / "model.safetensors"
    found = sorted({f for p in patterns for f in folder.glob(p) if f.is_file()})
    if len(found) != 1:
        what = (
            "no weights" if not found else f"{len(found)} weight files ({', '.join(f.name for f in found)})"
        )
        raise ConfigError(f"{folder}: {what}; expected model.safetensors or one {' / '.join(patterns)}")
    return found[0]


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip readers each raise their own types
        raise DataError(f"{path}: cannot read weights ({type(exc).__name__})") from None


def _fill(module: torch.nn.Module, path: Path, architecture: str, device: str) -> Any:
    """Load ``path``'s state dict into ``module`` strictly; a mismatch is one DataError line."""
    state, expected = _state_dict(path), module.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or shapes:
        parts = [
            f"{label} {', '.join(keys[:3])}"
            for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes))
            if keys
        ]
        raise DataError(f"{path}: weights do not fit '{architecture}' ({'; '.join(parts)})")
    module.load_state_dict(state)
    return module.to(device).eval()


def _int_field(spec: WeightFolder, key: str, default: int) -> int:
    value = spec.config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{spec.path / CONFIG}: field '{key}': expected a positive integer, got {value!r}")
    return value


def _channel_stats(spec: WeightFolder, key: str, default: tuple[float, float, float]) -> tuple[float, ...]:
    value = spec.config.get(key, default)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(v, (int, float)) for v in value)
    ):
        raise ConfigError(f"{spec.path / CONFIG}: field '{key}': expected 3 numbers (R, G, B), got {value!r}")
    return tuple(float(v) for v in value)


def _load_open_clip(spec: WeightFolder, device: str) -> OpenClip:
    """OpenClip: model, preprocess and tokenizer through open_clip's local-dir: schema."""
    import open_clip

    weights = next((spec.path / n for n in OPEN_CLIP_WEIGHTS if (spec.path / n).is_file()), None)
    if weights is None:
        raise ConfigError(f"{spec.path}: no weights ({' or '.join(OPEN_CLIP_WEIGHTS)})")
    name = f"local-dir:{spec.path}"
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    except Exception as exc:  # open_clip raises ValueError/RuntimeError/KeyError for bad configs and weights
        raise DataError(f"{spec.path}: cannot load as open_clip ({type(exc).__name__})") from None
    return OpenClip(spec.path, model.eval(), preprocess, open_clip.get_tokenizer(name), weights)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers'/transformers' loading bars and advice while reading local weights."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    d_level, t_level = dlog.get_verbosity(), tlog.get_verbosity()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(d_level)
        tlog.set_verbosity(t_level)
        dlog.enable_progress_bar()
        tlog.enable_progress_bar()


def read_stable_diffusion(
    path: str | Path, *, config: str | Path | None = None, dtype: torch.dtype = torch.float32
) -> Any:
    """A fresh (uncached) ``StableDiffusionPipeline`` from local disk only, safety checker off.

    ``path`` is a diffusers folder (``model_index.json``) or a single-file checkpoint (A1111's
    ``.safetensors``/``.ckpt``). A single file carries no architecture: its family (SD 1.x, SD 2.x
    512 or SD 2.x 768-v) and dimensions are inferred from its tensor names and shapes and its
    configs come from those shipped in ``generate/configs`` (``t2iscope.generate.checkpoints``, the
    one single-file reader; imported here only when a single file is read). ``config`` overrides
    that: a family name (``sd1``, ``sd2``, ``sd2-v``) or a local diffusers folder describing the
    architecture. For callers that change the pipeline (dtype, scheduler, GPU path);
    :func:`load_model` gives the shared cached one. ConfigError for an unsupported checkpoint or a
    config folder without model_index.json, DataError (naming the file) for an unreadable file or
    weights that do not fit; diffusers' own exceptions for a broken diffusers folder.
    """
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    common = {
        "safety_checker": None,
        "requires_safety_checker": False,
        "local_files_only": True,
        "dtype": dtype,
    }
    if path.is_dir():
        with quiet_loading():
            return StableDiffusionPipeline.from_pretrained(path, **common)
    from t2iscope.generate.checkpoints import FAMILIES, load_pipeline

    named = config is not None and str(config) in FAMILIES and not Path(config).is_dir()
    family = str(config) if named else None
    folder = Path(config) if config is not None and family is None else None
    if folder is not None and not (folder / "model_index.json").is_file():
        raise ConfigError(
            f"--model-config {folder}: expected a family ({', '.join(FAMILIES)}) or a local diffusers "
            "folder (model_index.json, component configs, tokenizer) describing the checkpoint's architecture"
        )
    with quiet_loading():
        return load_pipeline(path, family=family, config=folder, dtype=dtype).pipe


def _load_stable_diffusion(spec: WeightFolder, device: str) -> Any:
    """A diffusers StableDiffusionPipeline, as stock from_pretrained builds it (progress bar off)."""
    try:
        pipe = read_stable_diffusion(spec.path)
    except (OSError, ValueError, TypeError) as exc:  # diffusers' errors for missing or bad component files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{spec.path}: cannot load as a diffusers Stable Diffusion folder ({reason})"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _load_aesthetic(spec: WeightFolder, device: str) -> AestheticModel:
    """AestheticModel: LAION's MLP head over its CLIP's image embedding (config embed_dim must agree)."""
    clip = load_model(spec.references["clip"], device, expect=OPEN_CLIP)
    dim = int(clip.model.visual.output_dim)
    if spec.config.get("embed_dim", dim) != dim:
        raise ConfigError(
            f"{spec.path / CONFIG}: embed_dim {spec.config['embed_dim']} but the CLIP in "
            f"{spec.references['clip']} embeds to {dim}"
        )
    head = _fill(AestheticMLP(dim), _weights_file(spec.path, HEAD_WEIGHTS), spec.architecture, device)
    return AestheticModel(spec.path, spec.config, head, clip)


def _load_watermark(spec: WeightFolder, device: str) -> WatermarkModel:
    """WatermarkModel: the CNN, with width, input_size, mean and std from the config."""
    mean, std = _channel_stats(spec, "mean", IMAGENET_MEAN), _channel_stats(spec, "std", IMAGENET_STD)
    cnn = WatermarkCNN(_int_field(spec, "width", 32), mean, std)
    cnn = _fill(cnn, _weights_file(spec.path, HEAD_WEIGHTS), spec.architecture, device)
    return WatermarkModel(spec.path, spec.config, cnn, _int_field(spec, "input_size", 64))


def _load_legs(spec: WeightFolder, device: str) -> LegsModel:
    """LegsModel: the leg-counting CNN, with width, classes, input_size, mean and std from the config."""
    mean, std = _channel_stats(spec, "mean", IMAGENET_MEAN), _channel_stats(spec, "std", IMAGENET_STD)
    cnn = LegsCNN(_int_field(spec, "width", 32), _int_field(spec, "classes", 11), mean, std)
    cnn = _fill(cnn, _weights_file(spec.path, HEAD_WEIGHTS), spec.architecture, device)
    return LegsModel(spec.path, spec.config, cnn, _int_field(spec, "input_size", 64))


ARCHITECTURES.register(OPEN_CLIP)(Architecture(_load_open_clip, marker="open_clip_config.json"))
ARCHITECTURES.register(STABLE_DIFFUSION)(Architecture(_load_stable_diffusion, marker="model_index.json"))
ARCHITECTURES.register(AESTHETIC)(Architecture(_load_aesthetic, references=("clip",)))
ARCHITECTURES.register(WATERMARK)(Architecture(_load_watermark))
ARCHITECTURES.register(LEGS)(Architecture(_load_legs))
