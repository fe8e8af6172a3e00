"""Make a world folder: metadata and truth shards, optionally the rendered images, and world.json.

Streams shard by shard (memory stays flat as rows grow); world.json is written last, so a folder
with world.json is a complete world. Same (rows, seed, shard_size, rates) -> same bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from t2iscope import __version__, fileio
from t2iscope.curate.limits import MAX_WORLD_ROWS
from t2iscope.curate.world import layout
from t2iscope.curate.world.render import render_scene
from t2iscope.curate.world.sample import DEFAULT_RATES, Rates, sample_shard
from t2iscope.errors import ConfigError
from t2iscope.locks import LOCK_NAME, is_empty, output_lock

WORLD_VERSION = 1
DEFAULT_SHARD_SIZE = 100_000
_PARTS = ("metadata", "truth", "images")


def _check_out(out: Path, overwrite: bool) -> bool:
    """Whether ``out`` must be emptied first (reading only); ConfigError when it may not be used.

    A folder that holds only what a killed ``world make`` leaves (parts, temp files, no world.json)
    is started over without ``--overwrite``: nothing in it is complete.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if is_empty(out):
        return False
    world = (out / layout.WORLD_JSON).is_file()
    names = {e.name for e in out.iterdir()}
    # A folder a make wrote has its lock file, and nothing outside the world's layout.
    ours = LOCK_NAME in names and all(n in (*_PARTS, LOCK_NAME) or _is_temp(n) for n in names)
    if not world and ours:
        return True
    if not overwrite:
        raise ConfigError(
            f"--out {out}: folder exists and is not empty; pass --overwrite to replace a world there"
        )
    if not world:
        raise ConfigError(
            f"--out {out}: not a world folder (no {layout.WORLD_JSON}); refusing to overwrite it"
        )
    return True


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # fileio's atomic writes in flight


def _clear(out: Path) -> None:
    """Delete the world in ``out`` (world.json first: a half-deleted world is not a world)."""
    (out / layout.WORLD_JSON).unlink(missing_ok=True)
    for part in _PARTS:
        shutil.rmtree(out / part, ignore_errors=True)
    for entry in out.iterdir():
        if _is_temp(entry.name):
            entry.unlink()


def _shares(counts: Counter[Any], total: int) -> dict[str, float]:
    return {
        str(k): round(v / total, 5) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    }


class _Mix:
    """Running counts across shards for the realised mix recorded in world.json (bounded memory)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[Any]] = {
            c: Counter()
            for c in ("LANGUAGE", "caption_lang", "domain", "http_failure", "caption_noise", "kind")
        }
        self.flags: Counter[str] = Counter()
        self.limbed = 0
        self.rows = 0

    def add(self, metadata: pa.Table, truth: pa.Table) -> None:
        self.rows += len(truth)
        for col, counter in self.counts.items():
            table = metadata if col == "LANGUAGE" else truth
            vc = table.column(col).value_counts()
            counter.update(
                dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
            )
        for col in ("watermark", "unsafe", "mentions_culture", "noai"):
            self.flags[col] += int(truth.column(col).to_numpy().sum())
        legs = truth.column("legs").to_numpy()
        expected = truth.column("legs_expected").to_numpy()
        self.limbed += int((expected > 0).sum())
        self.flags["leg_noise"] += int((legs != expected).sum())

    def summary(self) -> dict[str, Any]:
        domains = self.counts["domain"].most_common()
        counts = [n for _, n in domains]
        out: dict[str, Any] = {c: _shares(self.counts[c], self.rows) for c in self.counts if c != "domain"}
        out["domains"] = {
            "distinct": len(domains),
            "top1_share": round(sum(counts[:1]) / self.rows, 5),
            "top10_share": round(sum(counts[:10]) / self.rows, 5),
            "top100_share": round(sum(counts[:100]) / self.rows, 5),
            "top20": [{"domain": d, "share": round(n / self.rows, 5)} for d, n in domains[:20]],
        }
        out["rates"] = {k: round(v / self.rows, 5) for k, v in sorted(self.flags.items()) if k != "leg_noise"}
        out["rates"]["leg_noise_among_limbed"] = round(self.flags["leg_noise"] / max(self.limbed, 1), 5)
        return out


def _write_images(out: Path, shard: int, truth: pa.Table, bar: tqdm) -> None:
    """Render a shard's PNGs into a hidden temp folder, then rename it into place.

    The shard's image folder is complete or absent, like fileio's files, without paying a
    temp file and an fsync per 1 KB image (that made image worlds 3x slower).
    """
    final = layout.image_path(out, shard, 0).parent
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        for row in truth.to_pylist():
            render_scene(row).save(tmp / layout.image_path(out, shard, row["hash"]).name, format="PNG")
            bar.update(1)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_world(
    out: str | os.PathLike[str],
    rows: int,
    seed: int = 0,
    images: bool = True,
    shard_size: int = DEFAULT_SHARD_SIZE,
    overwrite: bool = False,
    rates: Rates = DEFAULT_RATES,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a world of ``rows`` rows to ``out``; returns the world.json content.

    Holds ``out``'s lock while it writes. Raises ConfigError (before touching the disk) for bad
    options, a non-empty ``out`` without ``overwrite`` (unless it holds only a killed make's
    parts), a folder that is not a world, and another process writing ``out``.
    """
    # 1. Check inputs before touching the disk.
    if not 1 <= rows <= MAX_WORLD_ROWS:
        raise ConfigError(f"--rows must be from 1 to {MAX_WORLD_ROWS}, got {rows}")
    if not 0 <= seed < 2**63:
        raise ConfigError(f"--seed must be in [0, 2**63), got {seed}")
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
    out = Path(out)
    _check_out(out, overwrite)
    with output_lock(out):  # one writer at a time; checked again now that no one else writes
        if _check_out(out, overwrite):
            _clear(out)
        return _write_world(out, rows, seed, images, shard_size, rates, progress)


def _write_world(
    out: Path, rows: int, seed: int, images: bool, shard_size: int, rates: Rates, progress: bool
) -> dict[str, Any]:
    # 2. Shard by shard: sample, write metadata + truth, render images.
    mix = _Mix()
    n_shards = -(-rows // shard_size)
    with tqdm(total=rows, unit="row", desc="world", disable=not progress) as bar:
        for shard in range(n_shards):
            start = shard * shard_size
            metadata, truth = sample_shard(seed, shard, start, min(shard_size, rows - start), rates)
            fileio.write_parquet(out / "metadata" / layout.shard_name(shard), metadata)
            fileio.write_parquet(out / "truth" / layout.shard_name(shard), truth)
            mix.add(metadata, truth)
            if images:
                _write_images(out, shard, truth, bar)
            else:
                bar.update(len(truth))

    # 3. world.json last: its presence marks a complete world.
    info = {
        "version": WORLD_VERSION,
        "t2iscope": __version__,
        "rows": rows,
        "seed": seed,
        "shard_size": shard_size,
        "shards": n_shards,
        "images": images,
        "rates": asdict(rates),
        "realised": mix.summary(),
    }
    fileio.write_json(out / layout.WORLD_JSON, info)
    return info
