"""The ``clip`` judge: zero-shot attributes with any open_clip checkpoint from a local path.

Each attribute is a classification over English prompts built from the world's vocabulary
("a photo of a red object", ...); the label whose text embedding is closest to the image wins.
It loads once and runs in batches. The default is the embedded tiny CLIP in ``models/clip``
(``t2iscope.weights.load_model``, shared with curation and training);
point ``clip_config`` (an open_clip model name or config JSON) and ``clip_checkpoint`` at a real
ViT-L/14 to judge real generations. No hub access: weights always come from a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from t2iscope.curate.world import spec
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.judges import judge
from t2iscope.paths import models_dir

if TYPE_CHECKING:  # t2iscope.weights imports torch: judge_names() must stay light for data-only audits
    from t2iscope.weights import OpenClip

BATCH = 32

# attribute -> (labels, prompt per label). Legs are asked of limbed kinds only in audits.
PROMPTS: dict[str, tuple[list[Any], list[str]]] = {
    "color": (list(spec.COLORS), [f"a photo of a {c} object" for c in spec.COLORS]),
    "kind": (list(spec.KINDS), [f"a photo of a {k}" for k in spec.KINDS]),
    "culture": (
        list(spec.CULTURES),
        [f"a photo of something {w}" for w in spec.CULTURE_WORDS["en"]],
    ),
    "legs": (
        sorted(set(spec.KINDS.values())),
        [f"a photo of an animal with {n} legs" for n in sorted(set(spec.KINDS.values()))],
    ),
    "watermark": ([False, True], ["a clean photo", "a photo with a watermark text"]),
}


def embedded_clip(device: str = "cpu") -> OpenClip:
    """The embedded tiny CLIP, ``models/clip``, through the one weight loader (cached per process)."""
    from t2iscope.weights import OPEN_CLIP, load_model

    try:
        return load_model(models_dir() / "clip", device, expect=OPEN_CLIP)
    except ConfigError as exc:
        raise ConfigError(
            f"embedded CLIP not found ({exc}); or pass --clip-config and --clip-checkpoint"
        ) from None


def _model_name(config: str | Path) -> str:
    """Register a config JSON with open_clip (name = file stem); plain names pass through."""
    import open_clip

    p = Path(config)
    if p.suffix == ".json":
        if not p.is_file():
            raise ConfigError(f"{p}: open_clip config not found")
        cfg = _read_config(p)
        if "model_cfg" in cfg:  # open_clip's hub layout: open_clip_config.json wraps the model config
            import tempfile

            from t2iscope import fileio

            flat = Path(tempfile.mkdtemp(prefix="t2iscope-clip-")) / f"{p.parent.name}.json"
            fileio.write_json(flat, cfg["model_cfg"])
            p = flat
        open_clip.add_model_config(p)
        return p.stem
    if str(config) not in open_clip.list_models():
        raise ConfigError(
            f"unknown open_clip config {config!r}; pass a config .json or one of open_clip's names"
        )
    return str(config)


def _read_config(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def check_device(device: str) -> None:
    """ConfigError unless torch can run on ``device`` here (else loading would blame the weights)."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(
            f"clip judge: device {device!r} is not a torch device (cpu, cuda, cuda:1, mps)"
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(dev.type, False):
        raise ConfigError(f"clip judge: device {device!r} is not available here")


class ClipJudge:
    """Zero-shot judge over an open_clip model; also scores text-image agreement."""

    name = "clip"

    def __init__(
        self, clip_config: str | None = None, clip_checkpoint: str | None = None, device: str = "cpu"
    ) -> None:
        import open_clip
        import torch

        if (clip_config is None) != (clip_checkpoint is None):
            raise ConfigError("clip judge: give both clip_config and clip_checkpoint, or neither")
        check_device(device)
        if clip_config is None:
            clip = embedded_clip(device)
            model, preprocess, tokenizer = clip.model, clip.preprocess, clip.tokenizer
            ckpt_path = clip.weights
        else:
            ckpt_path = Path(str(clip_checkpoint))
            if not ckpt_path.is_file():
                raise ConfigError(f"{ckpt_path}: CLIP checkpoint not found")
            name = _model_name(clip_config)
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    name, pretrained=str(ckpt_path), device=device
                )
            except Exception as exc:  # torch, safetensors and open_clip each raise their own types
                # the file is there but damaged or of another model: a bad file, as in t2iscope.weights
                raise DataError(
                    f"{ckpt_path}: cannot load as open_clip {name!r} ({type(exc).__name__})"
                ) from None
            tokenizer = open_clip.get_tokenizer(name)
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.torch = torch
        self.checkpoint = str(ckpt_path)
        self._label_text = {a: self._encode_text(texts) for a, (_, texts) in PROMPTS.items()}

    def _encode_text(self, texts: Sequence[str]) -> np.ndarray:
        with self.torch.no_grad():
            emb = self.model.encode_text(self.tokenizer(list(texts)).to(self.device))
        return (emb / emb.norm(dim=-1, keepdim=True)).cpu().numpy()

    def _encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for i in range(0, len(images), BATCH):
            batch = self.torch.stack([self.preprocess(im.convert("RGB")) for im in images[i : i + BATCH]])
            with self.torch.no_grad():
                emb = self.model.encode_image(batch.to(self.device))
            out.append((emb / emb.norm(dim=-1, keepdim=True)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def attributes(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        emb = self._encode_images(images)
        picks = {a: (emb @ self._label_text[a].T).argmax(axis=1) for a in PROMPTS}
        return [{a: PROMPTS[a][0][int(picks[a][i])] for a in PROMPTS} for i in range(len(images))]

    def text_score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        img = self._encode_images(images)
        txt = np.concatenate([self._encode_text(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
        return [float(v) for v in (img * txt).sum(axis=1)]


@judge("clip")
def clip_judge(
    clip_config: str | None = None, clip_checkpoint: str | None = None, device: str = "cpu"
) -> ClipJudge:
    """Zero-shot judge; defaults to the embedded tiny CLIP in models/clip."""
    return ClipJudge(clip_config, clip_checkpoint, device)
