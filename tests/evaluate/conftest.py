"""Tiny local inputs for the audits: a generation run with known truth, a curation run, a CLIP.

The generation run is drawn with the world's own renderer from rows we choose, so every judged
attribute has a known right answer; it includes one missing and one corrupt image on purpose.
The curation run splits the session world by two simple stages (language, aesthetic).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from t2iscope import fileio
from t2iscope.curate.world import spec

LANGS = ("en", "de", "zh")
SUBJECTS = ("dog", "spider", "house", "person", "ball")


def scene(i: int, kind: str, color: str, culture: str | None, legs: int) -> dict[str, object]:
    return {
        "key": 1000 + i,
        "kind": kind,
        "color": color,
        "culture": culture,
        "legs": legs,
        "background": list(spec.BACKGROUNDS)[i % len(spec.BACKGROUNDS)],
        "tiny": 0.0,
        "unsafe": False,
        "low_contrast": 0.0,
        "blur": 0.0,
        "noise": 0.0,
        "blockiness": 0.0,
        "watermark": False,
    }


def prompt(lang: str, kind: str, color: str) -> str:
    c = spec.COLOR_WORDS[lang][list(spec.COLORS).index(color)]
    k = spec.KIND_WORDS[lang][list(spec.KINDS).index(kind)]
    return f"{c}{k}" if lang == "zh" else f"{c} {k}" if lang != "en" else f"a {c} {k}"


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 rendered 'generations' + 2 broken rows; truth columns ``t_*`` kept in the manifest."""
    from t2iscope.curate.world.render import render_scene

    out = tmp_path_factory.mktemp("gen") / "g"
    rows = []
    colors = itertools.cycle(spec.COLORS)
    cultures = itertools.cycle(("western", "western", "east_asian", "western", "south_asian"))
    for i, (lang, kind, seed) in enumerate(itertools.product(LANGS, SUBJECTS, range(4))):
        color = next(colors)
        culture = next(cultures) if kind in spec.CULTURE_KINDS else None
        legs = spec.KINDS[kind] + (1 if kind in ("dog", "spider") and seed == 3 else 0)
        if lang == "zh" and kind == "dog" and seed == 0:
            color = "blue"  # a zh prompt the 'model' got wrong: asked red below, drew blue
        asked_color = "red" if lang == "zh" and kind == "dog" and seed == 0 else color
        path = f"images/{i:05d}.png"
        buf = out / path
        buf.parent.mkdir(parents=True, exist_ok=True)
        render_scene(scene(i, kind, color, culture, legs)).save(buf)
        rows.append(
            {
                "suite": "test",
                "prompt_id": f"{kind}-{seed}",  # shared by the languages, as a suite's translations are
                "prompt": prompt(lang, kind, asked_color),
                "negative_prompt": "",
                "language": lang,
                "tags": [kind, asked_color],
                "seed": seed,
                "steps": 10 + 10 * (seed % 2),
                "cfg_scale": 7.5,
                "sampler": "Euler a" if seed < 2 else "DDIM",
                "width": 64,
                "height": 64,
                "mode": "txt2img",
                "strength": 0.0,
                "model_id": "render",
                "image_path": path,
                "watermark_method": "",
                "watermark_payload": "",
                "elapsed_s": 0.0,
                # what the suite declared: the world's vocabulary, culture left open (observed)
                "expect": json.dumps(
                    {
                        "subject": kind,
                        "color": asked_color,
                        **({"legs": spec.KINDS[kind]} if spec.KINDS[kind] else {}),
                    }
                ),
                "vocabulary": json.dumps({"labels": {"culture": list(spec.CULTURES)}}),
                "t_color": color,
                "t_kind": kind,
                "t_culture": culture,
                "t_legs": legs,
            }
        )
    broken = dict(rows[0], prompt_id="missing", image_path="images/missing.png")
    corrupt = dict(rows[0], prompt_id="corrupt", image_path="images/corrupt.png")
    (out / "images/corrupt.png").write_bytes(b"not a png")
    fileio.write_parquet(out / "manifest.parquet", pd.DataFrame([*rows, broken, corrupt]))
    return out


@pytest.fixture(scope="session")
def curation_run(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curation run over the session world: stage 'language' keeps en, 'aesthetic' keeps >= 5."""
    out = tmp_path_factory.mktemp("cur") / "run"
    (out / "kept").mkdir(parents=True)
    (out / "dropped").mkdir()
    meta = duckdb.sql(f"SELECT * FROM read_parquet('{world_dir}/metadata/*.parquet')").df()
    lang_drop = meta["LANGUAGE"] != "en"
    aes_drop = ~lang_drop & (meta["AESTHETIC_SCORE"] < 5)
    dropped = pd.concat(
        [
            meta[lang_drop].assign(stage="language", reason="not en"),
            meta[aes_drop].assign(stage="aesthetic", reason="below 5"),
        ]
    )
    fileio.write_parquet(out / "kept/part-00000.parquet", meta[~lang_drop & ~aes_drop])
    fileio.write_parquet(out / "dropped/part-00000.parquet", dropped)
    fileio.write_json(out / "stats.json", {"stages": [{"name": "language"}, {"name": "aesthetic"}]})
    return out


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A randomly initialised 1-layer open_clip model: config JSON and safetensors weights."""
    import open_clip
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("clip")
    cfg = folder / "tiny-test-clip.json"
    fileio.write_json(
        cfg,
        {
            "embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        },
    )
    open_clip.add_model_config(cfg)
    model, _, _ = open_clip.create_model_and_transforms("tiny-test-clip")
    weights = folder / "tiny.safetensors"
    save_file(model.state_dict(), str(weights))
    return cfg, weights
