"""Load a world (optionally restricted to a curation run's kept rows) into training tensors.

Training reads the product's own data path: ``t2iscope world make`` writes images + truth,
``t2iscope curate run`` writes the kept rows, and here both are joined on ``hash``. The decoded
corpus is cached as one ``.pt`` file so later stages (and a GPU box without pyarrow) skip decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from t2iscope.errors import DataError
from t2iscope.nets import rgb_pixels

TRUTH_COLUMNS = ("kind", "color", "legs", "legs_expected", "watermark", "aesthetic", "caption_lang")


@dataclass
class Corpus:
    """Images as uint8 N x 3 x 64 x 64, their captions, and the world's exact truth per row."""

    images: torch.Tensor
    captions: list[str]
    truth: dict[str, np.ndarray]
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, index: np.ndarray) -> Corpus:
        return Corpus(
            images=self.images[torch.as_tensor(index)],
            captions=[self.captions[i] for i in index],
            truth={k: v[index] for k, v in self.truth.items()},
            hashes=self.hashes[index],
        )

    def save(self, path: Path) -> None:
        from t2iscope import fileio

        with fileio.atomic_path(path) as tmp:
            torch.save(
                {
                    "images": self.images,
                    "captions": self.captions,
                    "truth": self.truth,
                    "hashes": self.hashes,
                },
                tmp,
            )

    @classmethod
    def load(cls, path: Path) -> Corpus:
        data = torch.load(path, weights_only=False)
        return cls(**data)


def hash_hex(h: int) -> str:
    """The 16-hex-digit file name the world uses for a row's signed int64 hash."""
    return f"{int(h) & 0xFFFFFFFFFFFFFFFF:016x}"


def _read_parquet_dir(folder: Path, columns: list[str] | None = None):
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise DataError(f"{folder}: no parquet files")
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def kept_hashes(run: Path) -> set[int]:
    """Hashes of the rows a curation run kept (``RUN/kept/*.parquet``)."""
    table = _read_parquet_dir(Path(run) / "kept", ["hash"])
    return set(table.column("hash").to_pylist())


def load_world(world: str | Path, curated: str | Path | None = None, limit: int | None = None) -> Corpus:
    """Join metadata, truth and rendered images of ``world``; keep only ``curated``'s rows if given."""
    from PIL import Image
    from tqdm import tqdm

    world = Path(world)
    for sub in ("metadata", "truth", "images"):
        if not (world / sub).is_dir():
            raise DataError(f"{world}: missing {sub}/ (make it with `t2iscope world make --images`)")
    meta = _read_parquet_dir(world / "metadata", ["hash", "TEXT"]).to_pandas()
    truth = _read_parquet_dir(world / "truth").to_pandas()
    missing = [c for c in (*TRUTH_COLUMNS, "hash") if c not in truth.columns]
    if missing:
        raise DataError(f"{world / 'truth'}: missing column(s) {', '.join(missing)}")
    extra = ["key"] if "key" in truth.columns else []
    rows = meta.merge(truth[["hash", *extra, *TRUTH_COLUMNS]], on="hash", how="inner")
    if curated is not None:
        keep = kept_hashes(Path(curated))
        rows = rows[rows["hash"].isin(keep)]
    files = {p.stem: p for p in (world / "images").glob("*/*.png")}
    # Images are named by the row hash (docs/architecture.md); accept the URL key as well.
    keys = rows["key"] if extra else rows["hash"]
    pairs = zip(rows["hash"], keys, strict=True)
    names = [hash_hex(h) if hash_hex(h) in files else hash_hex(k) for h, k in pairs]
    rows = rows.assign(_image=names)
    rows = rows[[n in files for n in names]].reset_index(drop=True)
    if limit is not None:
        rows = rows.iloc[:limit]
    if rows.empty:
        raise DataError(
            f"{world}: no rows with a rendered image" + (f" kept by {curated}" if curated else "")
        )
    images = np.empty((len(rows), 64, 64, 3), dtype=np.uint8)
    for i, name in enumerate(tqdm(rows["_image"], desc=f"decode {world.name}", unit="img", leave=False)):
        with Image.open(files[name]) as im:
            images[i] = rgb_pixels(im, 64)
    return Corpus(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        captions=[str(t) for t in rows["TEXT"]],
        truth={c: rows[c].to_numpy() for c in TRUTH_COLUMNS},
        hashes=rows["hash"].to_numpy(),
    )


def cached_world(
    world: str | Path, cache: Path, curated: str | Path | None = None, limit: int | None = None
) -> Corpus:
    """``load_world`` once; later calls (and other machines given the file) read the cache."""
    if cache.exists():
        return Corpus.load(cache)
    corpus = load_world(world, curated, limit)
    corpus.save(cache)
    return corpus
