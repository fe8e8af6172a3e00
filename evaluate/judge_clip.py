"""The ``clip`` judge: zero-shot attributes with any open_clip checkpoint from a local path.

Each attribute is a classification over English texts built from the suite's own vocabulary
(``evaluate.vocabulary``) with a template per attribute (``TEMPLATES``, or the suite's
``templates``): "a photo of a horse", "a photo of a brown object", plus an ``other`` label ("a
photo of something else") so an image of none of the words is not forced onto one. Negative labels
(``negative_labels``: a JSON file of words per attribute; by default the embedded CLIP's
``models/clip/words.json``, the words its captions taught it) are offered beside the asked words and
read as ``other`` when they win, as NegLabel does for out-of-distribution images (Jiang et al.
2024, "Negative Label Guided OOD Detection with Pretrained Vision-Language Models"): asked only
"dog or bird", a drawn car answers ``other``, not the nearer of the two. Counts (legs,
fingers, count) are offered 0 up to two above the largest declared value, so a wrong count can be
seen. The label whose text embedding is closest to the image wins (CLIP's zero-shot rule,
Radford et al. 2021). ``present`` (is any of the suite's subjects there at all) is ``no`` when the
subject answer is ``other``; every image is also asked whether it shows watermark text. It loads
once and runs in batches.
The default is the embedded tiny CLIP in ``models/clip``
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

from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.judges import judge
from t2iscope.evaluate.vocabulary import Label, Vocabulary
from t2iscope.generate.attributes import ATTRIBUTES, NO, OTHER, YES, spelled
from t2iscope.paths import models_dir

if TYPE_CHECKING:  # t2iscope.weights imports torch: judge_names() must stay light for data-only audits
    from t2iscope.weights import OpenClip

BATCH = 32
# attribute -> zero-shot text, "{}" is the label (a suite's ``templates`` override these)
TEMPLATES = {
    "subject": "a photo of a {}",
    "color": "a photo of a {} object",
    "legs": "a photo of an animal with {} legs",
    "fingers": "a photo of a hand with {} fingers",
    "count": "a photo of {} objects",
    "culture": "a photo of something {}",
    "gender": "a photo of a {} person",
    OTHER: "a photo of something else",
}
# Flags every image is asked about, whatever the suite: (answers, texts)
FLAGS = {"watermark": ((NO, YES), ("a clean photo", "a photo with a watermark text"))}
COUNT_MARGIN = 2  # counts offered: 0 .. the largest declared value + this
MAX_OFFERED_COUNT = 20


def label_texts(
    attribute: str, labels: Sequence[Label], templates: dict[str, str], negatives: Sequence[str] = ()
) -> tuple[list[Label], list[str]]:
    """The answers offered for ``attribute`` and their zero-shot texts: the labels, then each of
    ``negatives`` not among them (answer ``other``), then ``other`` itself.

    Word labels read with ``_`` as a space (``east_asian`` -> "east asian"); an empty ``other``
    template offers neither ``other`` nor negatives.
    """
    if ATTRIBUTES[attribute].kind == "number":
        top = min(max(int(v) for v in labels) + COUNT_MARGIN, MAX_OFFERED_COUNT)
        labels = list(range(top + 1))
    template = templates.get(attribute, TEMPLATES[attribute])
    answers: list[Label] = list(labels)
    words = list(labels)
    other = templates.get(OTHER, TEMPLATES[OTHER])
    if other and ATTRIBUTES[attribute].kind == "word":
        asked = {spelled(v) for v in labels}
        extra = [w for w in dict.fromkeys(negatives) if spelled(w) not in asked]
        words += extra
        answers += [OTHER] * len(extra)
    texts = [template.format(str(v).replace("_", " ")) for v in words]
    if other and ATTRIBUTES[attribute].kind == "word":
        answers.append(OTHER)
        texts.append(other)
    return answers, texts


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
    """Zero-shot judge over an open_clip model; also scores text-image agreement.

    ``name``, written beside every answer and figure, says which CLIP: ``clip`` for the embedded
    tiny CLIP, ``clip <config> (<checkpoint file>)`` for a user's.
    """

    name = "clip"

    def __init__(
        self,
        clip_config: str | None = None,
        clip_checkpoint: str | None = None,
        device: str = "cpu",
        legs_model: str | None = None,
        negative_labels: str | None = None,
    ) -> None:
        import open_clip
        import torch

        if (clip_config is None) != (clip_checkpoint is None):
            raise ConfigError(
                "clip judge: give both clip_config and clip_checkpoint (--clip-config, --clip-checkpoint), "
                "or neither"
            )
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
                source = f", config {clip_config}" if Path(str(clip_config)).suffix == ".json" else ""
                raise DataError(
                    f"{ckpt_path}: cannot load as open_clip {name!r}{source} ({type(exc).__name__}: "
                    "the weights do not fit the config, or the file is damaged)"
                ) from None
            tokenizer = open_clip.get_tokenizer(name)
            self.name = f"clip {name} ({ckpt_path.name})"
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.torch = torch
        self.checkpoint = str(ckpt_path)
        self.legs = legs_counter(legs_model, embedded=clip_config is None, device=device)
        self.negatives = read_negatives(negative_labels, embedded=clip_config is None)
        self._texts: dict[tuple[str, ...], np.ndarray] = {}  # encoded label texts, per text list

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

    def answers(self, vocabulary: Vocabulary) -> tuple[str, ...]:
        present = ("present",) if "subject" in vocabulary.labels else ()
        return (*vocabulary.attributes(), *FLAGS, *present)

    def check(self, vocabulary: Vocabulary) -> str | None:
        return None  # zero-shot answers any attribute in any words

    def _label_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self._texts:
            self._texts[key] = self._encode_text(texts)
        return self._texts[key]

    def attributes(self, images: Sequence[Image.Image], vocabulary: Vocabulary) -> list[dict[str, Any]]:
        emb = self._encode_images(images)
        out: list[dict[str, Any]] = [{} for _ in images]
        asked = {
            a: label_texts(a, v, dict(vocabulary.templates), self.negatives.get(a, ()))
            for a, v in vocabulary.labels.items()
        }
        for a, (labels, texts) in {**asked, **FLAGS}.items():
            if a == "legs" and self.legs is not None:
                continue
            picks = (emb @ self._label_embeddings(texts).T).argmax(axis=1) if len(images) else []
            for answer, pick in zip(out, picks, strict=True):
                answer[a] = labels[int(pick)]
        if "legs" in asked and self.legs is not None:
            for answer, legs in zip(out, self.legs.count(images), strict=True):
                answer["legs"] = legs
        if "subject" in asked:  # "is any of the suite's subjects there at all": not 'other'
            for answer in out:
                answer["present"] = NO if answer["subject"] == OTHER else YES
        return out

    def text_score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        img = self._encode_images(images)
        txt = np.concatenate([self._encode_text(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
        return [float(v) for v in (img * txt).sum(axis=1)]


def read_negatives(path: str | None, embedded: bool) -> dict[str, tuple[str, ...]]:
    """Negative labels per word attribute from a JSON file (``{"subject": ["car", ...], ...}``).

    ``path`` None: the embedded CLIP's ``models/clip/words.json`` for the embedded judge, none for a
    user's checkpoint. ConfigError (one line naming the file and key) for a missing or malformed file.
    """
    import json

    if path is None:
        if not embedded or not (models_dir() / "clip" / "words.json").is_file():
            return {}
        path = str(models_dir() / "clip" / "words.json")
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"clip judge: negative_labels: {file}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"clip judge: negative_labels: {file}: not a JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"clip judge: negative_labels: {file}: expected an object of word lists per attribute"
        )
    out = {}
    for attribute, words in data.items():
        if attribute not in ATTRIBUTES or ATTRIBUTES[attribute].kind != "word":
            raise ConfigError(f"clip judge: negative_labels: {file}: {attribute!r} is not a word attribute")
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ConfigError(f"clip judge: negative_labels: {file}: {attribute}: expected a list of words")
        out[attribute] = tuple(words)
    return out


def legs_counter(folder: str | None, embedded: bool, device: str) -> Any:
    """The leg counter the judge uses instead of zero-shot legs, or None.

    ``folder`` names a ``t2iscope-legs-cnn`` weight folder; by default the embedded judge uses
    ``models/legs`` (trained for the embedded model's generations, see models/README.md) and a
    judge on a user's CLIP checkpoint counts legs zero-shot.
    """
    from t2iscope.weights import LEGS, load_model

    if folder is None:
        if not embedded or not (models_dir() / "legs").is_dir():
            return None
        return load_model(models_dir() / "legs", device, expect=LEGS)
    try:
        return load_model(folder, device, expect=LEGS)
    except ConfigError as exc:  # the user's path: say which option named it
        raise ConfigError(f"clip judge: legs_model: {exc}") from None


@judge("clip")
def clip_judge(
    clip_config: str | None = None,
    clip_checkpoint: str | None = None,
    device: str = "cpu",
    legs_model: str | None = None,
    negative_labels: str | None = None,
) -> ClipJudge:
    """Zero-shot judge; defaults to the embedded tiny CLIP in models/clip (and models/legs for legs,
    models/clip/words.json for negative labels)."""
    return ClipJudge(clip_config, clip_checkpoint, device, legs_model, negative_labels)
