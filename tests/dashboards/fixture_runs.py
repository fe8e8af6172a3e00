"""Builders of a small runs folder that follows docs/architecture.md's contracts.

It holds one of each run kind (world, curation run, generation, audit) plus the bad input the
pages must survive: a corrupt world image and a corrupt generated image.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from t2iscope import fileio
from t2iscope.curate.world.layout import hash_hex
from t2iscope.curate.world.spec import COLORS, CULTURES, KINDS, LANGUAGE_MIX
from t2iscope.evaluate import folder
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
from t2iscope.locks import output_lock

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
ROWS = 240
LANGS = list(LANGUAGE_MIX)
ALL = "(all)"
DOMAINS = ["pinterest.com", "flickr.com", "o'reilly.com", "etsy.com", "wikimedia.org", "blogspot.com"]


def _png(path: Path, rgb: tuple[int, int, int], size: int = 64) -> None:
    arr = np.zeros((size, size, 3), np.uint8)
    arr[:] = rgb
    arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (32, 32, 32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_world(root: Path) -> pd.DataFrame:
    rng = random.Random(0)
    rows, truth = [], []
    for i in range(ROWS):
        lang = LANGS[i % len(LANGS)]
        color, kind = rng.choice(list(COLORS)), rng.choice(list(KINDS))
        h = rng.getrandbits(64) - 2**63
        domain = DOMAINS[i % len(DOMAINS)] if i % 3 else DOMAINS[0]
        rows.append(
            {
                "URL": f"http://img.{domain}/p/{hash_hex(h)}.jpg",
                "TEXT": f"a {color} {kind} #{i}",
                "WIDTH": 256 * (1 + i % 4),
                "HEIGHT": 256 * (1 + i % 3),
                "LANGUAGE": lang,
                "similarity": 0.2 + (i % 10) / 40,
                "pwatermark": (i % 7) / 7,
                "punsafe": (i % 11) / 22,
                "AESTHETIC_SCORE": 3.0 + (i % 40) / 10,
                "hash": h,
            }
        )
        truth.append({"hash": h, "kind": kind, "color": color, "domain": domain, "host": f"img.{domain}"})
    meta = pd.DataFrame(rows)
    fileio.write_parquet(root / "metadata" / "part-00000.parquet", meta)
    fileio.write_parquet(root / "truth" / "part-00000.parquet", pd.DataFrame(truth))
    for i, h in enumerate(meta["hash"][:40]):
        _png(root / "images" / "00000" / f"{hash_hex(int(h))}.png", list(COLORS.values())[i % len(COLORS)])
    # One corrupt image: the explorer must show a placeholder, not a stack trace.
    (root / "images" / "00000" / f"{hash_hex(int(meta['hash'][0]))}.png").write_bytes(b"not a png")
    fileio.write_json(root / "world.json", {"rows": ROWS, "seed": 0, "version": 1})
    return meta


def make_curation(root: Path, meta: pd.DataFrame) -> dict:
    df = meta.copy()
    df["lang"] = df["LANGUAGE"]
    df["lang_score"] = 0.9
    df["domain"] = [DOMAINS[i % len(DOMAINS)] if i % 3 else DOMAINS[0] for i in range(len(df))]
    too_small = df["WIDTH"] < 512
    low_aes = ~too_small & (df["AESTHETIC_SCORE"] < 4.0)
    kept = df[~too_small & ~low_aes]
    dropped = pd.concat(
        [
            df[too_small].assign(stage="min_size", reason="min_side<512"),
            df[low_aes].assign(stage="aesthetic", reason="aesthetic<4.0"),
        ]
    )
    fileio.write_parquet(root / "kept" / "part-00000.parquet", kept)
    fileio.write_parquet(root / "dropped" / "part-00000.parquet", dropped)
    n_in, n_mid = len(df), len(df) - int(too_small.sum())
    stats = {
        "rows_in": n_in,
        "rows_out": len(kept),
        "stages": [
            {
                "stage": "min_size",
                "rows_in": n_in,
                "rows_out": n_mid,
                "dropped": {"min_side<512": int(too_small.sum())},
                "seconds": 0.01,
            },
            {
                "stage": "aesthetic",
                "rows_in": n_mid,
                "rows_out": len(kept),
                "dropped": {"aesthetic<4.0": int(low_aes.sum())},
                "seconds": 0.02,
            },
        ],
        "languages": {
            "in": df["lang"].value_counts().to_dict(),
            "out": kept["lang"].value_counts().to_dict(),
        },
    }
    fileio.write_json(root / "stats.json", stats)
    fileio.write_text(root / "recipe.resolved.yaml", "stages:\n- min_size: {min_side: 512}\n")
    return stats


def make_generation(root: Path) -> pd.DataFrame:
    rows = []
    for p, kind in enumerate(["dog", "spider"]):
        for lang in ("en", "de"):
            for seed in (0, 1):
                for cfg in (3.0, 7.0):
                    name = f"{kind}-{lang}-{seed}-{cfg:g}.png"
                    rows.append(
                        {
                            "suite": "fixture",
                            "prompt_id": f"{kind}",
                            "prompt": f"a red {kind}" if lang == "en" else f"ein roter {kind}",
                            "negative_prompt": "",
                            "language": lang,
                            "tags": f"limbs,{kind}",
                            "seed": seed,
                            "steps": 10,
                            "cfg_scale": cfg,
                            "sampler": "Euler a",
                            "width": 64,
                            "height": 64,
                            "mode": "txt2img",
                            "strength": 1.0,
                            "model_id": "models/sd",
                            "image_path": f"images/{name}",
                            "watermark_method": "dwtDct",
                            "watermark_payload": "t2iscope",
                            "elapsed_s": 0.5,
                        }
                    )
                    _png(root / "images" / name, (220, 30 + 100 * p, 30 + 60 * seed))
    (root / "images" / rows[-1]["image_path"].split("/")[-1]).write_bytes(b"\x89PNG broken")
    manifest = pd.DataFrame(rows)
    fileio.write_parquet(root / "manifest.parquet", manifest)
    return manifest


def write_audit_run(root: Path, tables: dict[str, pd.DataFrame]) -> None:
    """``tables`` (audit name -> tidy table) as ``evaluate run`` leaves them in ``root``: staged,
    then committed with the run.json that lists them, through ``t2iscope.evaluate.folder``."""
    with output_lock(root):
        staging = folder.prepare(root, {"audits": sorted(tables)}, overwrite=True)
        for name, table in tables.items():
            fileio.write_parquet(staging / folder.table_name(name), table)
        record = folder.run_record(list(tables), "world", {"audits": sorted(tables)}, "fixture", {})
        folder.commit(root, staging, record)


def make_audit(root: Path) -> dict[str, pd.DataFrame]:
    """An audit run of tables shaped like evaluate's audits, built with its own tidy-table helpers."""
    bias = [rate("all_match", k, 40, language=lang) for lang, k in [("en", 36), ("de", 30), ("zh", 21)]]
    bias += [rate("subject_match", k, 40, language=lang) for lang, k in [("en", 38), ("de", 33), ("zh", 25)]]
    bias += [measure("text_score", math.nan, 0, note="judge 'world' has no text scores", language=ALL)]
    bias += [skipped(3, "prompt declares no expectation the judge answers (expect)")]
    culture = [
        rate("share", k, 60, source=source, attribute="culture", subject=ALL, language=ALL, label=c)
        for source, counts in [("generated", (49, 7, 4)), ("training", (43, 11, 6))]
        for c, k in zip(CULTURES, counts, strict=True)
    ]
    culture += [
        measure(
            "share",
            1 / 3,
            0,
            note="parity",
            source="parity",
            attribute="culture",
            subject=ALL,
            language=ALL,
            label=c,
        )
        for c in CULTURES
    ]
    culture += [
        measure(
            "imbalance",
            0.4,
            60,
            (0.3, 0.5),
            source="generated",
            attribute="culture",
            subject=ALL,
            language=ALL,
            label=ALL,
        )
    ]
    limbs = [
        rate("failure_rate", k, 50, by="subject", level=kind, attribute="legs", subject=kind)
        for kind, k in [("dog", 17), ("spider", 31), ("person", 10)]
    ]
    limbs += [
        rate("failure_rate", k, 75, by="seed", level=str(seed), attribute="legs", subject=ALL)
        for seed, k in [(0, 30), (1, 28)]
    ]
    watermark = [
        measure(
            "bit_accuracy",
            1.0 - s * d,
            32,
            (0.9 - s * d, min(1.0, 1.05 - s * d)),
            source="gen",
            method=method,
            attack="jpeg",
            strength=s,
        )
        for method, d in [("dwtDct", 0.4), ("rivaGan", 0.1)]
        for s in (0.0, 0.5, 1.0)
    ]
    watermark += [measure("psnr", 38.0, 32, (37.0, 39.0), source="gen", method="dwtDct")]
    tables = {
        "language_bias": tidy(bias, "language_bias", "world"),
        "culture": tidy(culture, "culture", "world"),
        "limbs": tidy(limbs, "limbs", "world"),
        "watermark": tidy(watermark, "watermark", "decoder"),
    }
    write_audit_run(root, tables)
    fileio.write_text(root / folder.REPORT, "<html><body>report</body></html>")
    return tables


# Text a hostile run folder carries in every field the pages show. Rendered as Markdown or HTML
# it would make the viewer's browser fetch from MARK (and draw links, bold, colors, math).
MARK = "pwned.invalid"
PAYLOAD = (
    f"![md](http://{MARK}/md.png) <img src='http://{MARK}/html.png'> [link](http://{MARK}/a) "
    f"www.{MARK} **bold** :red[red] $x^2$ `code` # head"
)
# Folder and file names cannot hold "/": a relative image, which the dashboard's own server
# would be asked for, is the same attack. Its backticks break out of a naive `code span`.
NAME = "x` ![md](PWNED.png) <img src=PWNED.png> :red[x] `y"


def make_hostile(root: Path) -> Path:
    """A runs folder whose every shown text is PAYLOAD (or NAME for folder names), with
    manifest rows whose image_path leaves the folder (absolute, ``..``, a symlink out).

    Returns the image outside the folder that no page may show.
    """
    outside = root.parent / f"{root.name}-outside" / "secret.png"
    _png(outside, (255, 0, 0))
    meta = make_world(root / f"world {NAME}")
    meta = meta.assign(TEXT=[f"{PAYLOAD} #{i}" for i in range(len(meta))], LANGUAGE=PAYLOAD)
    fileio.write_parquet(root / f"world {NAME}" / "metadata" / "part-00000.parquet", meta)
    kept = meta.assign(lang=PAYLOAD, domain=PAYLOAD, lang_score=0.9)
    run = root / f"curated {NAME}"
    fileio.write_parquet(run / "kept" / "part-00000.parquet", kept)
    stage = {"stage": PAYLOAD, "rows_in": len(kept) + 5, "rows_out": len(kept), "dropped": {PAYLOAD: 5}}
    languages = {"in": {PAYLOAD: len(kept) + 5}, "out": {PAYLOAD: len(kept)}}
    fileio.write_json(run / "stats.json", {"stages": [stage], "languages": languages})

    gen = root / f"gen {NAME}"
    manifest = make_generation(gen)
    manifest = manifest.assign(
        suite=[PAYLOAD if i % 2 else "plain" for i in range(len(manifest))],
        prompt_id=[f"{PAYLOAD} {p}" for p in manifest["prompt_id"]],
        prompt=PAYLOAD,
        negative_prompt=PAYLOAD,
        tags=PAYLOAD,
        sampler=PAYLOAD,
        language=[PAYLOAD if lang == "en" else lang for lang in manifest["language"]],
    )
    (gen / "images" / "link.png").symlink_to(outside)
    escapes = [str(outside), f"../../{outside.parent.name}/secret.png", "images/link.png"]
    for i, bad in enumerate(escapes):  # spread over both suites and both languages
        manifest.loc[i * 5, "image_path"] = bad
    fileio.write_parquet(gen / "manifest.parquet", manifest)

    audit = root / f"audit {NAME}"
    tables = make_audit(audit)
    bias = tables["language_bias"].assign(note=PAYLOAD)  # shown beside its skipped count
    fileio.write_parquet(audit / "language_bias.parquet", bias)
    marks = tables["watermark"].assign(attack=["jpeg", PAYLOAD] * (len(tables["watermark"]) // 2) + ["jpeg"])
    fileio.write_parquet(audit / "watermark.parquet", marks.rename(columns={"attack": PAYLOAD}))
    limbs = tables["limbs"].rename(columns={"by": PAYLOAD}).assign(note=PAYLOAD)
    limbs.loc[0, "level"] = PAYLOAD
    extra = limbs.iloc[:2].assign(metric=["skipped", PAYLOAD], value=[3.0, 0.5])
    fileio.write_parquet(audit / "limbs.parquet", pd.concat([limbs, extra], ignore_index=True))
    return outside
