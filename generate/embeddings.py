"""Textual-inversion embeddings from a local folder, as AUTOMATIC1111 loads them.

A1111 loads every file of its ``embeddings/`` folder (subfolders included) and makes each file's
stem a trigger word: wherever the tokenized stem appears in a prompt, the embedding's vectors take
the place of those tokens in the text encoder's input (see ``text_encoding.prompt_chunks``). File
formats (A1111's ``create_embedding_from_data``):

- ``.pt`` / ``.bin`` written by A1111: ``{"string_to_param": {"*": tensor[n, dim]}, "name": ...}``;
- ``.safetensors`` written by A1111: ``{"emb_params": tensor[n, dim]}``, and any other file holding a
  single tensor (diffusers' concepts: ``{"<token>": tensor[dim]}``, one vector).

Pickled files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary code to
unpickle is refused with one line naming it. A file whose vectors do not match the text encoder's
width (an SDXL or SD 2.x embedding next to SD 1.x ones) is skipped with a warning, as A1111 skips
it ("skipped embeddings"), so a mixed folder still works; any other unreadable file is a
``DataError`` naming it. Hashes are A1111's: the SHA-256 of the whole file, 12 hex digits in
infotext (``TI hashes: "name: 0123456789ab"``).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2iscope.errors import ConfigError, DataError

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")
MAX_VECTORS = 75  # one chunk: an embedding never splits across chunks


def file_sha256(path: str | os.PathLike[str], *, skip_safetensors_header: bool = False) -> str:
    """Hex SHA-256 of a file; with ``skip_safetensors_header`` kohya's "addnet" hash (tensor bytes only)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if skip_safetensors_header:
            f.seek(8 + int.from_bytes(f.read(8), "little"))
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Embedding:
    """One trigger word: its vectors ``[n, dim]`` (float32, CPU) and the file they came from."""

    name: str
    vectors: torch.Tensor
    path: Path | None = None
    sha256: str = ""

    @property
    def shorthash(self) -> str:
        """A1111's short hash in infotext: the first 12 hex digits of the file's SHA-256."""
        return self.sha256[:12]


@dataclass
class Embeddings:
    """Embeddings bound to one tokenizer; finds trigger words in a token stream.

    Build with :func:`load_embeddings` (a folder) or :meth:`from_tensors` (in memory, for training
    and tests). ``skipped`` maps the names of files left out (wrong width) to why.
    """

    tokenizer: Any
    items: Mapping[str, Embedding]
    skipped: Mapping[str, str] = field(default_factory=dict)
    _lookup: dict[int, list[tuple[tuple[int, ...], Embedding]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lookup = {}
        for emb in self.items.values():
            ids = tuple(self.tokenizer([emb.name], add_special_tokens=False, verbose=False)["input_ids"][0])
            if not ids:
                raise ConfigError(f"embedding name {emb.name!r} has no tokens: rename {emb.path or emb.name}")
            self._lookup.setdefault(ids[0], []).append((ids, emb))
        for matches in self._lookup.values():
            matches.sort(key=lambda m: len(m[0]), reverse=True)  # longest name first, as A1111

    @classmethod
    def from_tensors(cls, tokenizer: Any, vectors: Mapping[str, torch.Tensor]) -> Embeddings:
        """In-memory embeddings ``{name: tensor[n, dim]}`` (tensors kept as given: may require grad)."""
        return cls(
            tokenizer, {name: Embedding(name, v if v.dim() == 2 else v[None]) for name, v in vectors.items()}
        )

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Embedding]:
        return iter(self.items.values())

    def __getitem__(self, name: str) -> Embedding:
        return self.items[name]

    def find(self, tokens: Sequence[int], position: int) -> tuple[Embedding, int] | None:
        """The embedding whose name's tokens start at ``tokens[position]`` and how many tokens it spans."""
        for ids, emb in self._lookup.get(tokens[position], ()):
            if tuple(tokens[position : position + len(ids)]) == ids:
                return emb, len(ids)
        return None


def _read(path: Path) -> Any:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError and OSError
            raise DataError(f"{path}: cannot read embedding: {_first_line(exc)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        why = next((ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln), "")
        if not why:
            raise DataError(f"{path}: cannot read embedding: not a torch file, or a damaged one") from None
        why = why.split(". ")[0].rstrip(".")
        raise DataError(
            f"{path}: refused: unpickling it would run code (torch.load weights_only): {why}"
        ) from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read embedding: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _vectors(path: Path, data: Any) -> tuple[torch.Tensor | None, int]:
    """(vectors [n, dim] or None for an SDXL pair, width) from a loaded file, as A1111 reads them."""
    if isinstance(data, Mapping) and "string_to_param" in data:
        params = data["string_to_param"]
        if not isinstance(params, Mapping) or len(params) != 1:
            raise DataError(f"{path}: embedding file has {len(params)} terms in it, expected 1")
        vec = next(iter(params.values()))
    elif isinstance(data, Mapping) and "clip_g" in data and "clip_l" in data:  # SDXL: never SD 1.x/2.x
        return None, int(data["clip_g"].shape[-1]) + int(data["clip_l"].shape[-1])
    elif isinstance(data, Mapping) and len(data) == 1 and isinstance(next(iter(data.values())), torch.Tensor):
        vec = next(iter(data.values()))
    else:
        raise DataError(
            f"{path}: neither an A1111 textual-inversion embedding ('string_to_param' or 'emb_params') "
            "nor a diffusers concept (one tensor)"
        )
    if not isinstance(vec, torch.Tensor) or vec.dim() not in (1, 2) or vec.numel() == 0:
        shape = getattr(vec, "shape", vec)
        raise DataError(f"{path}: embedding vectors must be a tensor [n, dim], got {shape}")
    vec = vec.detach().to("cpu", torch.float32)
    return (vec[None] if vec.dim() == 1 else vec), int(vec.shape[-1])


def embedding_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every embedding file under ``folder`` (recursively, sorted; hidden and empty files left out)."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"embeddings folder {root} does not exist or is not a folder")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in EMBEDDING_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.stat().st_size > 0
    )


def load_embeddings(folder: str | os.PathLike[str], tokenizer: Any, text_encoder: Any) -> Embeddings:
    """Every embedding in ``folder`` whose width matches ``text_encoder``; trigger word = file stem.

    Raises ConfigError for a missing folder or two files with one stem, DataError (naming the file)
    for an unreadable, unsafe or malformed file; warns and skips a file of another width.
    """
    width = int(text_encoder.get_input_embeddings().embedding_dim)
    items: dict[str, Embedding] = {}
    skipped: dict[str, str] = {}
    for path in embedding_files(folder):
        name = path.stem
        if name in items:
            raise DataError(f"{path}: a second embedding named {name!r} (first: {items[name].path})")
        vec, got = _vectors(path, _read(path))
        if vec is None or got != width:
            skipped[name] = f"vectors of width {got}, the text encoder's are {width}"
            warnings.warn(f"{path}: skipped embedding {name!r}: {skipped[name]}", stacklevel=2)
            continue
        if len(vec) > MAX_VECTORS:
            skipped[name] = f"{len(vec)} vectors, at most {MAX_VECTORS} fit in a chunk"
            warnings.warn(f"{path}: skipped embedding {name!r}: {skipped[name]}", stacklevel=2)
            continue
        items[name] = Embedding(name, vec, path, file_sha256(path))
    return Embeddings(tokenizer, items, skipped)


def save_embedding(path: str | os.PathLike[str], name: str, vectors: torch.Tensor) -> Path:
    """Write ``vectors [n, dim]`` as A1111 does: ``.pt`` (string_to_param), ``.safetensors`` (emb_params)."""
    from t2iscope.fileio import atomic_path

    out = Path(path)
    vec = vectors.detach().to("cpu", torch.float32).contiguous()
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".safetensors":
            from safetensors.torch import save_file

            save_file({"emb_params": vec}, str(tmp))
        else:
            torch.save(
                {"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": name, "step": 0}, tmp
            )
    return out
