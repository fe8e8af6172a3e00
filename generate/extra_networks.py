"""A1111 extra networks in prompts: ``<lora:name:multiplier>`` tags, LoRA files, infotext hashes.

Syntax (A1111's modules/extra_networks.py and extensions-builtin/Lora): every ``<kind:arg:arg...>``
tag (``kind`` a word, arguments up to ``>``) is removed from the prompt before encoding; tags of an
unknown kind are removed and ignored, as A1111 ignores them (a warning says so). For ``lora`` (alias
``lyco``): ``<lora:name>``, ``<lora:name:m>`` (text encoder and U-Net both ``m``),
``<lora:name:te:unet>``, and named ``te=``/``unet=`` arguments, which win over positional ones.

Files: kohya-format ``.safetensors`` (``lora_unet_*``, ``lora_te_*``; diffusers/peft layouts load
too) found by file stem anywhere under the LoRA folder (A1111's default ``models/Lora``). They are
applied through diffusers' ``load_lora_weights`` + ``set_adapters`` (peft), one adapter per file.
:func:`set_loras` is idempotent and keeps loaded files between calls; call it before encoding each
batch, with an empty list when the batch has no tag, so one prompt's LoRA never leaks into the next
(the empty set unloads every adapter: the pipeline is then exactly the base model again).

A batch shares one LoRA set: A1111 applies the first prompt's tags to its whole batch. This module
gives :func:`batch_networks`, which refuses a batch whose prompts name different LoRA sets, so the
caller splits such batches (same seeds, same images as one-prompt batches).

Hashes (``Lora hashes: "name: 0123456789ab"``): A1111's short hash of a LoRA is the first 12 hex
digits of kohya's "addnet" SHA-256 (the file's bytes after the safetensors header, so editing the
metadata does not change it); a ``sshs_model_hash`` in the metadata wins, as in A1111.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2iscope.errors import ConfigError, DataError
from t2iscope.generate.embeddings import Embedding, file_sha256
from t2iscope.weights import quiet_loading

# A1111's re_extra_net: a word, a colon, then anything up to the first ">".
_TAG = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")
LORA_SUFFIXES = (".safetensors",)
_ADAPTERS_ATTR = "_t2iscope_lora_adapters"


@dataclass(frozen=True)
class ExtraNetwork:
    """One ``<kind:args>`` tag: ``kind`` as written, its ``:``-separated arguments."""

    kind: str
    args: tuple[str, ...]

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if len(a.split("=", 2)) != 2)

    @property
    def named(self) -> dict[str, str]:
        return dict(a.split("=", 1) for a in self.args if len(a.split("=", 2)) == 2)

    @property
    def text(self) -> str:
        return f"<{self.kind}:{':'.join(self.args)}>"


@dataclass(frozen=True)
class LoraRequest:
    """A LoRA tag read: file name (as written), text-encoder and U-Net multipliers."""

    name: str
    te: float
    unet: float


@dataclass(frozen=True)
class LoraFile:
    """A LoRA found on disk: the name the prompt used, its path and A1111's hash."""

    name: str
    path: Path
    sha256: str

    @property
    def shorthash(self) -> str:
        return self.sha256[:12]

    @property
    def adapter(self) -> str:
        """peft adapter name: from the hash, so an edited file is a new adapter."""
        return f"t2iscope_{self.sha256[:16]}"


def parse_extra_networks(prompt: str) -> tuple[str, list[ExtraNetwork]]:
    """(prompt without its ``<kind:...>`` tags, the tags in order), as A1111's ``parse_prompt``."""
    found: list[ExtraNetwork] = []

    def take(m: re.Match[str]) -> str:
        found.append(ExtraNetwork(m.group(1), tuple(m.group(2).split(":"))))
        return ""

    return _TAG.sub(take, prompt), found


def _number(tag: ExtraNetwork, what: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{tag.text}: the {what} multiplier must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{tag.text}: the {what} multiplier must be finite, got {value!r}")
    return number


def lora_requests(networks: Iterable[ExtraNetwork]) -> list[LoraRequest]:
    """The LoRA tags among ``networks`` read as A1111 reads them; other kinds warn and are dropped."""
    out = []
    for tag in networks:
        if tag.kind not in LORA_KINDS:
            warnings.warn(
                f"{tag.text}: unknown extra network {tag.kind!r}, ignored (known: lora)", stacklevel=2
            )
            continue
        pos, named = tag.positional, tag.named
        if not pos or not pos[0].strip():
            raise ConfigError(f"{tag.text}: a LoRA tag needs a file name: <lora:name:multiplier>")
        if len(pos) > 3 or "dyn" in named:
            raise ConfigError(
                f"{tag.text}: dynamic LoRA rank (dyn) is not supported; use <lora:name:te:unet>"
            )
        unknown = set(named) - {"te", "unet"}
        if unknown:
            raise ConfigError(f"{tag.text}: unknown LoRA argument {sorted(unknown)[0]!r} (known: te, unet)")
        te = _number(tag, "te", pos[1]) if len(pos) > 1 else 1.0
        te = _number(tag, "te", named["te"]) if "te" in named else te
        unet = _number(tag, "unet", pos[2]) if len(pos) > 2 else te
        unet = _number(tag, "unet", named["unet"]) if "unet" in named else unet
        out.append(LoraRequest(pos[0], te, unet))
    return out


def batch_networks(prompts: Sequence[str]) -> tuple[list[str], list[LoraRequest]]:
    """(every prompt without its tags, the batch's LoRA requests); ConfigError if prompts disagree."""
    cleaned, sets = [], []
    for prompt in prompts:
        text, tags = parse_extra_networks(prompt)
        cleaned.append(text)
        sets.append(lora_requests(tags))
    if any(s != sets[0] for s in sets[1:]):
        raise ConfigError(
            "prompts of one batch name different LoRAs: split the batch by its <lora:...> tags "
            f"({prompts[0]!r} vs {next(p for p, s in zip(prompts, sets, strict=True) if s != sets[0])!r})"
        )
    return cleaned, (sets[0] if sets else [])


def lora_sha256(path: str | os.PathLike[str]) -> str:
    """A1111's LoRA hash: metadata ``sshs_model_hash`` if present, else kohya's addnet SHA-256.

    Computed once per file version (path, size, modification time): every saved image's infotext
    asks for it, and a LoRA can be hundreds of MB.
    """
    stat = Path(path).stat()
    return _lora_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _lora_sha256(path_text: str, size: int, mtime_ns: int) -> str:
    path = Path(path_text)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size)) if 0 < size < 100_000_000 else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise DataError(f"{path}: not a safetensors file (bad header)")
    given = (header.get("__metadata__") or {}).get("sshs_model_hash")
    return str(given) if given else file_sha256(path, skip_safetensors_header=True)


def find_lora(name: str, lora_dir: str | os.PathLike[str]) -> Path:
    """The one ``<name>.safetensors`` under ``lora_dir`` (recursively); ConfigError naming what is missing."""
    root = Path(lora_dir)
    if not root.is_dir():
        raise ConfigError(f"LoRA folder {root} does not exist (needed for <lora:{name}>)")
    # a tag names a file in the folder, never a path: prompt text must not reach other files
    if not name or Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"<lora:{name}>: a LoRA is named by its file name in {root}, not by a path")
    direct = root / f"{name}.safetensors"
    if direct.is_file():
        return direct
    hits = sorted(
        p for p in root.rglob("*") if p.is_file() and p.stem == name and p.suffix.lower() in LORA_SUFFIXES
    )
    if not hits:
        raise ConfigError(f"LoRA {name!r} not found: no {name}.safetensors under {root}")
    if len(hits) > 1:
        raise ConfigError(f"LoRA {name!r} is ambiguous under {root}: {', '.join(str(p) for p in hits)}")
    return hits[0]


def resolve_loras(requests: Sequence[LoraRequest], lora_dir: str | os.PathLike[str]) -> list[LoraFile]:
    """The file and hash of every requested LoRA (checked before any work), in request order."""
    files: dict[str, LoraFile] = {}
    for r in requests:
        if r.name not in files:
            path = find_lora(r.name, lora_dir)
            files[r.name] = LoraFile(r.name, path, lora_sha256(path))
    return [files[r.name] for r in requests]


def _loaded(pipe: Any) -> dict[str, Path]:
    return getattr(pipe, _ADAPTERS_ATTR, {})


def set_loras(
    pipe: Any, requests: Sequence[LoraRequest], lora_dir: str | os.PathLike[str] | None
) -> list[LoraFile]:
    """Make exactly ``requests`` active on ``pipe`` (idempotent); returns the files, for infotext.

    An empty list (or every multiplier 0) unloads all adapters. A file mentioned twice is applied with
    the sum of its multipliers. Raises ConfigError for a missing name, DataError naming a file that
    is not a LoRA for this model.
    """
    if not requests:
        files: list[LoraFile] = []
    elif lora_dir is None:
        raise ConfigError(f"<lora:{requests[0].name}> needs a LoRA folder (--lora-dir)")
    else:
        files = resolve_loras(requests, lora_dir)
    weights: dict[str, dict[str, float]] = {}
    by_adapter: dict[str, LoraFile] = {}
    for r, f in zip(requests, files, strict=True):
        w = weights.setdefault(f.adapter, {"text_encoder": 0.0, "unet": 0.0})
        w["text_encoder"] += r.te
        w["unet"] += r.unet
        by_adapter[f.adapter] = f
    weights = {a: w for a, w in weights.items() if any(w.values())}
    loaded = dict(_loaded(pipe))
    if not weights:
        if loaded or _has_adapters(pipe):
            pipe.unload_lora_weights()
        setattr(pipe, _ADAPTERS_ATTR, {})
        return files
    stale = [a for a in loaded if a not in weights]
    if stale:
        pipe.delete_adapters(stale)
        for a in stale:
            loaded.pop(a)
    for adapter in weights:
        if adapter not in loaded:
            _load(pipe, by_adapter[adapter], adapter)
            loaded[adapter] = by_adapter[adapter].path
    setattr(pipe, _ADAPTERS_ATTR, loaded)
    components = pipe.get_list_adapters()
    names = list(weights)
    pipe.set_adapters(
        names,
        [
            {c: w[c] for c in ("text_encoder", "unet") if a in components.get(c, ())}
            for a, w in weights.items()
        ],
    )
    return files


def _has_adapters(pipe: Any) -> bool:
    try:
        return any(pipe.get_list_adapters().values())
    except Exception:
        return False


def _load(pipe: Any, file: LoraFile, adapter: str) -> None:
    before = {c: set(a) for c, a in pipe.get_list_adapters().items()}
    try:
        with quiet_loading(), _diffusers_errors_silenced():  # its failure is reported below, in one line
            pipe.load_lora_weights(str(file.path), adapter_name=adapter)
    except ImportError as exc:
        raise ConfigError(f"LoRA needs the peft package: pip install peft ({exc})") from None
    except Exception as exc:
        with contextlib.suppress(Exception):
            pipe.delete_adapters([adapter])
        if "size mismatch" in str(exc):
            text = "its layer shapes do not fit this model (a LoRA made for another model)"
        else:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file.path}: cannot apply this LoRA to the model: {text}") from None
    after = pipe.get_list_adapters()
    if not any(adapter in after.get(c, ()) and adapter not in before.get(c, set()) for c in after):
        raise DataError(f"{file.path}: no layer of this model matches the LoRA's keys")


@contextlib.contextmanager
def _diffusers_errors_silenced() -> Iterator[None]:
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity(dlog.CRITICAL)
    try:
        yield
    finally:
        dlog.set_verbosity(level)


@contextlib.contextmanager
def activate_loras(
    pipe: Any, requests: Sequence[LoraRequest], lora_dir: str | os.PathLike[str] | None
) -> Iterator[list[LoraFile]]:
    """``with activate_loras(pipe, reqs, folder) as files:`` LoRAs active inside, none after."""
    try:
        yield set_loras(pipe, requests, lora_dir)
    finally:
        set_loras(pipe, [], None)


def _clean(name: str) -> str:
    return name.replace(":", "").replace(",", "")


def infotext_hashes(loras: Iterable[LoraFile] = (), embeddings: Iterable[Embedding] = ()) -> dict[str, str]:
    """A1111's ``Lora hashes`` / ``TI hashes`` infotext values for what a batch used (absent when none).

    Values are unquoted (``"red: 0123456789ab, blue: ..."``); the infotext writer quotes them, as
    A1111's ``quote()`` does, because they hold ``:`` and ``,``.
    """
    out: dict[str, str] = {}
    lora = {_clean(f.name): f.shorthash for f in loras if f.shorthash}
    if lora:
        out["Lora hashes"] = ", ".join(f"{n}: {h}" for n, h in lora.items())
    ti = {_clean(e.name): e.shorthash for e in embeddings if e.shorthash}
    if ti:
        out["TI hashes"] = ", ".join(f"{n}: {h}" for n, h in ti.items())
    return out
