"""Image features for the quality metrics: any local encoder, one pass per image, cached on disk.

Encoders (:class:`EncoderSpec`, AUDIT.yaml ``encoder:``), every one from a local path (no hub):

- ``open_clip`` (the default): the embedded tiny CLIP (``models/clip``), any open_clip folder
  (``open_clip_config.json`` + weights, read by ``t2iscope.weights.load_model``), or an open_clip
  model name / config JSON (``model``) with a checkpoint file (``path``), as the clip judge takes;
  features are ``encode_image`` outputs, and it also encodes text (CLIPScore).
- ``torchvision``: any ``torchvision.models`` architecture (``model: resnet50``) with its state
  dict in ``path`` (.safetensors/.pth); features are the input of its final classifier.
- ``timm``: any timm architecture (``model: vit_small_patch14_dinov2.lvd142m``, dgm-eval's DINOv2)
  with its weights in ``path``, built with ``num_classes=0`` (pooled features).

Preprocessing follows clean-fid (Parmar et al. 2022, ``cleanfid/resize.py``): every image is
decoded as stored (PNG stays lossless; nothing is re-encoded as JPEG), read as ``t2iscope.pixels``
reads any file, and resized with PIL's antialiased bicubic filter on each channel in float32 (no
uint8 rounding after the resize), squashed to the encoder's square input (``fit: squash``, what
the world's renders need) or shorter side then centre crop (``fit: crop``, CLIP's own way).

Cache: features are stored per encoder (its weights' path, size and mtime plus the preprocessing)
and per image **content** (SHA-1 of the encoded bytes), under ``$T2ISCOPE_FEATURE_CACHE``
(default ``~/.cache/t2iscope/features``), as ``.npz`` parts written atomically. A second audit,
metric or run over the same images reads them back instead of encoding again.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from t2iscope import fileio
from t2iscope.config import PositiveInt
from t2iscope.errors import ConfigError, DataError
from t2iscope.nets import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from t2iscope.pixels import to_rgb

BATCH = 256  # images decoded and encoded at a time: the benchmark's batch (bench/bench_features.py)
PREPROCESS = "clean-bicubic-f32-v1"  # part of every cache key: change it when preprocessing changes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# torchvision classifiers keep their last layer under one of these names (resnet/regnet: fc;
# vgg/efficientnet/convnext/mobilenet: classifier; vit/swin: heads or head)
CLASSIFIER_ATTRS = ("fc", "classifier", "heads", "head")


@dataclass(frozen=True)
class EncoderSpec:
    """Which encoder to compute features with (AUDIT.yaml ``encoder:``; see the module docstring).

    ``path``: open_clip folder or checkpoint file, or the torchvision/timm weights file; none means
    the embedded CLIP. ``model``: open_clip model name or config JSON (with a checkpoint ``path``),
    or the torchvision/timm architecture. ``input_size``: square side in pixels (default: the
    model's own, 224 for torchvision). ``fit``: ``squash`` or ``crop`` (see the module docstring).
    """

    kind: Literal["open_clip", "torchvision", "timm"] = "open_clip"
    path: str | None = None
    model: str | None = None
    input_size: PositiveInt | None = None
    fit: Literal["squash", "crop"] = "squash"
    device: str = "cpu"


class Encoder:
    """An image encoder: ``encode(float32 N x S x S x 3 in [0, 255]) -> float32 N x D``.

    ``name`` is what tables show (``open_clip:models/clip``); ``fingerprint`` keys the cache.
    """

    def __init__(
        self,
        name: str,
        fingerprint: str,
        module: Any,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        fit: str,
        device: str,
        text: Callable[[list[str]], np.ndarray] | None = None,
        forward: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name, self.fingerprint, self.module = name, fingerprint, module
        self.input_size, self.mean, self.std, self.fit, self.device = input_size, mean, std, fit, device
        self._text = text
        self._forward = forward or module

    @property
    def has_text(self) -> bool:
        """Whether :meth:`encode_text` works (CLIP towers)."""
        return self._text is not None

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """float32 ``N x D`` features of float32 ``N x S x S x 3`` pixels in [0, 255] (S = input_size)."""
        import torch

        from t2iscope.nets import normalize_pixels

        if not len(pixels):
            return np.zeros((0, 0), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            out = self._forward(normalize_pixels(x, self.mean, self.std))
        return out.float().flatten(1).cpu().numpy()

    def encode_text(self, texts: Sequence[str], batch: int = BATCH) -> np.ndarray:
        """float32 ``N x D`` text embeddings (CLIP encoders only; ValueError otherwise)."""
        if self._text is None:
            raise ValueError(f"encoder {self.name} has no text tower")
        parts = [self._text(list(texts[i : i + batch])) for i in range(0, len(texts), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """float32 ``S x S x 3`` in [0, 255]: :func:`clean_resize` of the image to the input size."""
        return clean_resize(image, self.input_size, self.fit)


def clean_resize(image: Image.Image, size: int, fit: str = "squash") -> np.ndarray:
    """float32 ``size x size x 3`` in [0, 255] of any image (clean-fid's ``make_resizer("PIL",
    False, "bicubic")``): each channel resized in PIL's float mode with its antialiased bicubic
    filter, so neither aliasing nor uint8 rounding after the resize enters the features.

    ``fit``: ``squash`` (whole image to a square) or ``crop`` (shorter side to ``size``, then the
    centre square, as CLIP's preprocess does).
    """
    rgb = to_rgb(image)
    w, h = rgb.size
    if fit == "crop":
        s = size / min(w, h)
        w2, h2 = max(size, round(w * s)), max(size, round(h * s))
        left, top = (w2 - size) // 2, (h2 - size) // 2
        box, target = (left, top, left + size, top + size), (w2, h2)
    else:
        box, target = None, (size, size)
    channels = []
    for ch in np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1):
        out = Image.fromarray(ch, mode="F").resize(target, Image.Resampling.BICUBIC)
        channels.append(np.asarray(out.crop(box) if box else out, dtype=np.float32))
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _fingerprint(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, (*parts, PREPROCESS))).encode()).hexdigest()[:20]


def make_encoder(spec: EncoderSpec | None = None) -> Encoder:
    """The encoder ``spec`` names (the embedded CLIP when None), loaded once per process.

    ConfigError (one line naming the path or option) for a missing file or folder, an unknown
    architecture, a device torch cannot use; DataError for weights that do not fit the model.
    """
    from t2iscope.evaluate.judge_clip import check_device

    spec = spec or EncoderSpec()
    check_device(spec.device)
    key = (spec, _stamp(Path(spec.path)) if spec.path and Path(spec.path).exists() else "")
    if key not in _ENCODERS:
        build = {"open_clip": _open_clip, "torchvision": _torchvision, "timm": _timm}[spec.kind]
        _ENCODERS[key] = build(spec)
    return _ENCODERS[key]


_ENCODERS: dict[tuple[EncoderSpec, str], Encoder] = {}


def clip_encoder(folder: str | Path | None = None, device: str = "cpu") -> Encoder:
    """The open_clip encoder of a weight folder (the embedded ``models/clip`` when None)."""
    return make_encoder(EncoderSpec(path=None if folder is None else str(folder), device=device))


def open_clip_folder(path: str | Path, what: str = "an open_clip model folder") -> Path:
    """``path`` if it is a folder holding a recognised model; else ConfigError, one line naming
    ``path`` and why: not found, a file instead of a folder (``what`` the field expects), or no
    model's config in it (``t2iscope.weights.inspect_folder``'s markers)."""
    from t2iscope.weights import inspect_folder

    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"{folder}: not found ({what})")
    if not folder.is_dir():
        raise ConfigError(f"{folder}: a file, not {what} (config.json and weights)")
    try:
        inspect_folder(folder)
    except ConfigError:
        raise ConfigError(f"{folder}: not a model folder (no config.json naming its architecture)") from None
    return folder


def _open_clip(spec: EncoderSpec) -> Encoder:
    import torch

    from t2iscope.weights import OPEN_CLIP, load_model

    if spec.model is None:  # a weight folder: the one loader, shared with judges and curation
        if spec.path is None:
            from t2iscope.evaluate.judge_clip import embedded_clip

            clip = embedded_clip(spec.device)
        else:
            clip = load_model(open_clip_folder(spec.path), spec.device, expect=OPEN_CLIP)
        model, tokenizer, weights, label = clip.model, clip.tokenizer, clip.weights, Path(clip.folder).name
    else:
        import open_clip

        from t2iscope.evaluate.judge_clip import _model_name

        if spec.path is None or not Path(spec.path).is_file():
            what = "not found" if spec.path is None or not Path(spec.path).exists() else "not a file"
            raise ConfigError(f"{spec.path}: {what} (open_clip model {spec.model!r} needs a checkpoint file)")
        name = _model_name(spec.model)
        try:
            model, _, _ = open_clip.create_model_and_transforms(
                name, pretrained=spec.path, device=spec.device
            )
        except Exception as exc:  # torch, safetensors and open_clip each raise their own types
            raise DataError(
                f"{spec.path}: cannot load as open_clip {name!r} ({type(exc).__name__})"
            ) from None
        model, tokenizer, weights, label = model.eval(), open_clip.get_tokenizer(name), Path(spec.path), name
    cfg = model.visual.preprocess_cfg
    size = spec.input_size or int(cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0])

    def text(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return model.encode_text(tokenizer(texts).to(spec.device)).float().cpu().numpy()

    return Encoder(
        f"open_clip:{label}",
        _fingerprint("open_clip", spec.model, _stamp(weights), size, spec.fit),
        model,
        size,
        cfg.get("mean", CLIP_MEAN),
        cfg.get("std", CLIP_STD),
        spec.fit,
        spec.device,
        text=text,
        forward=model.encode_image,
    )


def _weights(spec: EncoderSpec) -> tuple[Path, dict[str, Any]]:
    from t2iscope.weights import _state_dict

    if spec.path is None or spec.model is None:
        raise ConfigError(f"kind {spec.kind} needs model: (the architecture) and path: (a weights file)")
    path = Path(spec.path)
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found")
    state = _state_dict(path)
    for prefix in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(state.get(prefix), dict):
            state = state[prefix]
    return path, state


def _torchvision(spec: EncoderSpec) -> Encoder:
    import torch
    import torchvision

    path, state = _weights(spec)
    try:
        model = torchvision.models.get_model(spec.model, weights=None)
    except ValueError:
        raise ConfigError(f"unknown torchvision model {spec.model!r}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(
            f"{path}: weights do not fit torchvision {spec.model!r} ({str(exc).splitlines()[0]})"
        ) from None
    attr = next((a for a in CLASSIFIER_ATTRS if isinstance(getattr(model, a, None), torch.nn.Module)), None)
    if attr is None:
        raise ConfigError(f"torchvision {spec.model!r} has no classifier ({', '.join(CLASSIFIER_ATTRS)})")
    setattr(model, attr, torch.nn.Identity())  # features are what the classifier would read
    model = model.eval().to(spec.device)
    size = spec.input_size or 224  # torchvision's ImageNet classifiers' evaluation size
    fp = _fingerprint("torchvision", spec.model, _stamp(path), size, spec.fit)
    return Encoder(
        f"torchvision:{spec.model}", fp, model, size, IMAGENET_MEAN, IMAGENET_STD, spec.fit, spec.device
    )


def _timm(spec: EncoderSpec) -> Encoder:
    import timm

    path, state = _weights(spec)
    try:
        model = timm.create_model(spec.model, pretrained=False, num_classes=0)
    except RuntimeError:
        raise ConfigError(f"unknown timm model {spec.model!r}") from None
    result = model.load_state_dict(state, strict=False)
    head = [k for k in result.unexpected_keys if k.startswith(("head", "fc", "classifier"))]
    if result.missing_keys or len(head) != len(result.unexpected_keys):
        raise DataError(
            f"{path}: weights do not fit timm {spec.model!r} ({len(result.missing_keys)} missing keys)"
        )
    cfg = model.pretrained_cfg
    size = spec.input_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    model = model.eval().to(spec.device)
    fp = _fingerprint("timm", spec.model, _stamp(path), size, spec.fit)
    mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    return Encoder(f"timm:{spec.model}", fp, model, size, mean, std, spec.fit, spec.device)


# --- image sets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSet:
    """Images to encode, in order: ``labels[i]`` names image i (a file, ``shard.tar#key``) and
    ``blobs()`` yields its encoded bytes (None when missing). ``texts`` are their captions or
    prompts when known (a download's ``TEXT``), else empty."""

    name: str
    labels: tuple[str, ...]
    blobs: Callable[[], Iterator[bytes | None]]
    texts: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        """The images at ``indices`` (ascending), in that order."""
        pick = sorted(int(i) for i in indices)
        wanted = set(pick)

        def blobs() -> Iterator[bytes | None]:
            for i, blob in enumerate(self.blobs()):
                if i in wanted:
                    yield blob

        texts = tuple(self.texts[i] for i in pick) if self.texts else ()
        return ImageSet(self.name, tuple(self.labels[i] for i in pick), blobs, texts)


def file_images(name: str, files: Sequence[str | Path], texts: Sequence[str] = ()) -> ImageSet:
    """An image set of files (a manifest's ``image_file`` column, a folder's images)."""

    def blobs() -> Iterator[bytes | None]:
        for f in files:
            try:
                yield Path(f).read_bytes()
            except OSError:
                yield None

    return ImageSet(name, tuple(str(f) for f in files), blobs, tuple(texts))


def reference_images(path: str | Path) -> ImageSet:
    """The reference set at ``path``, recognised by what it holds:

    - a ``t2iscope curate download`` folder (``status.parquet``, ``kept/``, ``images/``): the kept
      rows' images (after post-download filters), captions from ``TEXT``;
    - a folder of img2dataset shards (``*.tar`` webdataset, or ``*.parquet`` with a ``jpg`` column);
    - any folder of image files (searched recursively).

    ConfigError naming the path if it is none of these or holds no image.
    """
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{root}: reference set not found (a download folder, shards or an image folder)")
    if (root / "status.parquet").is_file() and (root / "kept").is_dir():
        found = _download_images(root)
    elif sorted(root.rglob("*.tar")) or _jpg_parquets(root):
        found = _shard_images(root, sorted(root.rglob("*.tar")), _jpg_parquets(root))
    else:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        found = file_images(root.name, files)
    if not len(found):
        raise ConfigError(f"{root}: the reference set holds no image")
    return found


def _jpg_parquets(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*.parquet")):
        try:
            if "jpg" in pq.read_schema(p).names:
                out.append(p)
        except Exception:  # pyarrow raises several types for files that are not parquet
            continue
    return out


def _tar_members(tar: Path) -> dict[str, tuple[int, int]]:
    """key -> (offset, size) of each image member (img2dataset's ``<key>.jpg``), headers only."""
    index: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(tar) as archive:
            for member in archive:
                key, _, ext = member.name.rpartition(".")
                if member.isfile() and f".{ext.lower()}" in IMAGE_SUFFIXES:
                    index[key] = (member.offset_data, member.size)
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"{tar}: unreadable tar ({type(exc).__name__})") from None
    return index


def _shard_images(
    name_root: Path,
    tars: Sequence[Path],
    parquets: Sequence[Path],
    keep: set[tuple[str, str]] | None = None,
    texts: dict[tuple[str, str], str] | None = None,
) -> ImageSet:
    """Images of webdataset tars and jpg-column parquets; ``keep``: only these (folder, key) pairs."""
    places: list[tuple[Path, str, tuple[int, int] | None]] = []
    for tar in tars:
        for key, where in _tar_members(tar).items():
            if keep is None or (tar.parent.name, key) in keep:
                places.append((tar, key, where))
    for parquet in parquets:
        if parquet.with_suffix(".tar").exists():
            continue  # webdataset metadata beside its tar
        for key in pq.read_table(parquet, columns=["key"]).column("key").cast("string").to_pylist():
            if keep is None or (parquet.parent.name, key) in keep:
                places.append((parquet, key, None))

    def blobs() -> Iterator[bytes | None]:
        handles: dict[Path, Any] = {}
        try:
            for path, key, where in places:
                if where is not None:
                    fh = handles.setdefault(path, open(path, "rb"))  # noqa: SIM115 (closed below)
                    fh.seek(where[0])
                    yield fh.read(where[1])
                else:
                    found = pq.read_table(path, columns=["jpg"], filters=[("key", "==", key)]).column(0)
                    yield found[0].as_py() if len(found) else None
        finally:
            for fh in handles.values():
                fh.close()

    labels = tuple(f"{p}#{k}" for p, k, _ in places)
    captions = tuple((texts or {}).get((p.parent.name, k), "") for p, k, _ in places) if texts else ()
    return ImageSet(name_root.name, labels, blobs, captions)


def _download_images(root: Path) -> ImageSet:
    parts = sorted((root / "kept").glob("part-*.parquet"))
    if not parts:
        raise ConfigError(f"{root}: no kept/part-*.parquet (an unfinished download?)")
    kept = pq.ParquetDataset(parts).read(columns=["images_dir", "key", "TEXT"]).to_pandas()
    pairs = list(zip(kept["images_dir"].astype(str), kept["key"].astype(str), strict=True))
    texts = dict(zip(pairs, kept["TEXT"].fillna("").astype(str), strict=True))
    images = root / "images"
    return _shard_images(root, sorted(images.rglob("*.tar")), _jpg_parquets(images), set(pairs), texts)


# --- features with a cache -------------------------------------------------------------------------


def cache_root() -> Path:
    """``$T2ISCOPE_FEATURE_CACHE`` or ``~/.cache/t2iscope/features``."""
    default = Path.home() / ".cache" / "t2iscope" / "features"
    return Path(os.environ.get("T2ISCOPE_FEATURE_CACHE", default))


class FeatureCache:
    """Features of one encoder by image content hash, kept in ``root/<fingerprint>/*.npz``.

    Parts are written whole (``t2iscope.fileio``) under unique names, so concurrent runs add
    parts side by side and a killed run loses at most its unwritten batch.
    """

    def __init__(self, encoder: Encoder, root: Path | None = None) -> None:
        self.folder = (root or cache_root()) / encoder.fingerprint
        self.known: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(part) as data:
                    self.known.update(zip(data["keys"].tolist(), data["features"], strict=True))
            except (OSError, ValueError, KeyError, EOFError):  # a damaged part is recomputed, not trusted
                continue
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            fileio.write_json(
                self.folder / "encoder.json", {"fingerprint": encoder.fingerprint, "name": encoder.name}
            )

    def add(self, keys: list[str], features: np.ndarray) -> None:
        if not keys:
            return
        self.known.update(zip(keys, features, strict=True))
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), features=features.astype(np.float32))
        fileio.write_bytes(self.folder / f"part-{uuid.uuid4().hex}.npz", buf.getvalue())


@dataclass(frozen=True)
class Features:
    """``values``: float32 ``N x D`` (NaN rows for unreadable images); ``ok``: bool ``N``;
    ``errors``: per image, '' or why it could not be read; ``hashes``: SHA-1 of each image's bytes."""

    values: np.ndarray
    ok: np.ndarray
    errors: tuple[str, ...]
    hashes: tuple[str, ...]
    encoder: str


def _decode(blob: bytes | None) -> Image.Image | str:
    if blob is None:
        return "missing"
    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            return to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"unreadable ({type(exc).__name__})"


def extract(
    images: ImageSet,
    encoder: Encoder,
    cache: FeatureCache | None = None,
    batch: int = BATCH,
    progress: bool = True,
) -> Features:
    """Features of every image of ``images``: cached ones read back, the rest decoded and encoded
    ``batch`` at a time and added to ``cache`` (a per-encoder :class:`FeatureCache` when None).

    An unreadable image gets a NaN row, ``ok = False`` and its reason; it is never fatal.
    """
    cache = cache if cache is not None else FeatureCache(encoder)
    rows: list[np.ndarray | None] = []
    hashes, errors = [], []
    pending: list[tuple[int, str, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        feats = encoder.encode(np.stack([p for _, _, p in pending]))
        for (i, _, _), f in zip(pending, feats, strict=True):
            rows[i] = f
        cache.add([h for _, h, _ in pending], feats)
        pending.clear()

    bar = tqdm(total=len(images), desc=f"features ({encoder.name})", unit="img", disable=not progress)
    for i, blob in enumerate(images.blobs()):
        digest = hashlib.sha1(blob).hexdigest() if blob is not None else ""
        hashes.append(digest)
        hit = cache.known.get(digest) if digest else None
        if hit is not None:
            rows.append(hit)
            errors.append("")
        else:
            image = _decode(blob)
            errors.append(image if isinstance(image, str) else "")
            rows.append(None)
            if not isinstance(image, str):
                pending.append((i, digest, encoder.pixels(image)))
                if len(pending) >= batch:
                    flush()
        bar.update(1)
    flush()
    bar.close()
    if len(rows) != len(images):
        raise DataError(f"{images.name}: expected {len(images)} images, read {len(rows)}")
    dim = next((len(r) for r in rows if r is not None), 0)
    values = np.full((len(rows), dim), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            values[i] = r
    ok = np.array([r is not None for r in rows], dtype=bool)
    return Features(values, ok, tuple(errors), tuple(hashes), encoder.name)
