"""Training: a --quick run of every stage writes files the stock loaders read; recipe, corpus, judges."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from t2iscope.cli import main
from t2iscope.errors import ConfigError
from t2iscope.generate.limits import DEFAULT_SAMPLER
from t2iscope.generate.samplers import make_scheduler
from t2iscope.generate.train import loop
from t2iscope.generate.train.corpus import load_world
from t2iscope.generate.train.measure import (
    COLOR_NAMES,
    leg_count,
    palette_color,
    roc_auc,
    wilson,
)
from t2iscope.generate.train.recipe import QUICK, Recipe, load_recipe

TRAIN_STAGES = ("clip", "aesthetic", "watermark", "vae", "unet")


@pytest.fixture(scope="module")
def trained(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    for stage in TRAIN_STAGES:
        code = main(
            [
                "generate",
                "train",
                stage,
                "--world",
                str(world_dir),
                "--out",
                str(out),
                "--quick",
                "--limit",
                "48",
            ]
        )
        assert code == 0, stage
    return out


def test_quick_run_writes_loadable_models(trained: Path):
    from diffusers import StableDiffusionPipeline

    from t2iscope.weights import load_model

    clip = load_model(trained / "clip")
    assert clip.model.encode_text(clip.tokenizer(["a red dog"])).shape[-1] == QUICK.clip.embed_dim
    head = load_model(trained / "aesthetic").head
    assert head.input_size == QUICK.clip.embed_dim
    wm = load_model(trained / "watermark").cnn
    assert wm.pwatermark(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2,)
    pipe = StableDiffusionPipeline.from_pretrained(str(trained / "sd"))
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red ball", num_inference_steps=2, guidance_scale=7.5, output_type="np").images
    assert image.shape == (1, 64, 64, 3)
    assert pipe.vae.config.scaling_factor == 1.0  # latent channels are standardised inside the VAE
    # the folder samples like `t2iscope generate` by default, on the training noise schedule
    assert type(pipe.scheduler) is type(make_scheduler(DEFAULT_SAMPLER, pipe.scheduler.config))
    assert pipe.scheduler.config.beta_schedule == "scaled_linear" and pipe.scheduler.config.steps_offset == 1
    assert (trained / "_train" / "log.txt").read_text().count("done in") == len(TRAIN_STAGES)


def test_finished_stage_is_skipped_and_resumes(trained: Path, world_dir: Path):
    before = (trained / "clip" / "open_clip_model.safetensors").stat().st_mtime_ns
    assert (
        main(["generate", "train", "clip", "--world", str(world_dir), "--out", str(trained), "--quick"]) == 0
    )
    assert (trained / "clip" / "open_clip_model.safetensors").stat().st_mtime_ns == before
    assert "clip: output exists, skipped" in (trained / "_train" / "log.txt").read_text()


def test_measure_needs_a_heldout_world(trained: Path, world_dir: Path, capsys):
    code = main(["generate", "train", "measure", "--world", str(world_dir), "--out", str(trained), "--quick"])
    assert code == 2
    assert "--heldout" in capsys.readouterr().err


def test_measure_writes_every_row_with_its_sample_size(trained: Path, world_dir: Path):
    import json

    args = ["generate", "train", "measure", "--world", str(world_dir), "--heldout", str(world_dir)]
    assert main([*args, "--out", str(trained), "--quick"]) == 0
    metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics["generator"]) == {"en_cfg1", "en_cfg7.5", "en_cfg7.5_rescale0.7"}
    row = metrics["generator"]["en_cfg7.5_rescale0.7"]
    assert row["cfg_rescale"] == 0.7 and row["color"]["n"] == 48 and row["legs"]["n"] == 24
    assert metrics["generator"]["en_cfg7.5"]["cfg_rescale"] == 0.0
    assert {r["sampler"] for r in metrics["generator"].values()} == {"EulerAncestralDiscreteScheduler"}
    assert {"clip_zero_shot_kind", "aesthetic_spearman", "watermark_roc_auc"} <= set(metrics["scorers"])


def test_recipe_yaml_overrides_and_rejects_unknown_keys(tmp_path: Path):
    good = tmp_path / "r.yaml"
    good.write_text("unet: {steps: 7, channels: [32, 32, 64]}\n")
    recipe = load_recipe(good)
    assert recipe.unet.steps == 7 and recipe.unet.channels == (32, 32, 64)
    assert recipe.clip == Recipe().clip
    bad = tmp_path / "bad.yaml"
    bad.write_text("unet: {stepz: 7}\n")
    with pytest.raises(ConfigError, match="stepz"):
        load_recipe(bad)


def test_corpus_keeps_only_curated_rows(world_dir: Path, tmp_path: Path):
    full = load_world(world_dir, limit=40)
    kept = full.hashes[::3]
    (tmp_path / "kept").mkdir()
    pq.write_table(pa.table({"hash": pa.array(kept, pa.int64())}), tmp_path / "kept" / "part-00000.parquet")
    curated = load_world(world_dir, curated=tmp_path)
    assert set(curated.hashes) == set(kept.tolist())
    assert curated.images.shape[1:] == (3, 64, 64)


def test_palette_judge_reads_rendered_colors(world_dir: Path):
    corpus = load_world(world_dir, limit=120)
    clean = ~corpus.truth["watermark"].astype(bool)
    got = palette_color(corpus.images.permute(0, 2, 3, 1).numpy()[clean])
    want = np.array([COLOR_NAMES.index(c) for c in corpus.truth["color"][clean]])
    assert (got == want).mean() >= 0.9


def test_leg_count_reads_clean_rendered_legs(world_dir: Path):
    """The renderer promises countable legs on clean images; degraded ones are out of scope."""
    from t2iscope.curate.world.render import render_scene

    table = pq.read_table(sorted((world_dir / "truth").glob("*.parquet"))[0])
    rows = [r for r in table.to_pylist() if r["legs_expected"] > 0][:60]
    clean = {
        "watermark": False,
        "unsafe": False,
        "blur": 0.0,
        "noise": 0.0,
        "low_contrast": 0.0,
        "blockiness": 0.0,
        "tiny": 0.0,
    }
    images = np.stack([np.asarray(render_scene({**r, **clean})) for r in rows])
    assert (leg_count(images) == np.array([r["legs"] for r in rows])).mean() >= 0.8


def test_wilson_and_auc():
    low, high = wilson(45, 50)
    assert low < 0.9 < high and low >= 0 and high <= 1
    assert wilson(0, 10)[0] == 0.0
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0


def test_text_tower_conversion_is_exact():
    import open_clip

    from t2iscope.generate.train.clip import model_config, to_hf_text_encoder

    torch.manual_seed(0)
    model = open_clip.CLIP(**model_config(QUICK.clip)).eval()
    encoder = to_hf_text_encoder(model)
    ids = open_clip.get_tokenizer("ViT-B-32")(["a blue spider in a room"])
    n = int((ids[0] != 0).sum())
    with torch.no_grad():
        x = model.ln_final(
            model.transformer(
                model.token_embedding(ids) + model.positional_embedding, attn_mask=model.attn_mask
            )
        )
        y = encoder(ids).last_hidden_state
    torch.testing.assert_close(x[0, :n], y[0, :n], atol=1e-5, rtol=1e-5)


def test_resumed_run_follows_the_same_lr_schedule(tmp_path: Path):
    """A run killed midway and resumed sees the learning rates an uninterrupted run sees."""

    def lrs(work: Path, stop: int | None, steps: int = 40) -> list[float]:
        layer = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(layer.parameters(), lr=0.5)
        seen: list[float] = []

        def step(i: int) -> dict[str, float]:
            if stop is not None and i == stop:
                raise KeyboardInterrupt
            seen.append(opt.param_groups[0]["lr"])
            return {}

        with contextlib.suppress(KeyboardInterrupt):
            loop.run("toy", {"layer": layer}, opt, steps, step, work, every=10)
        return seen

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = lrs(tmp_path / "a", None)
    first = lrs(tmp_path / "b", stop=25)
    assert first == whole[:25]
    assert first[:20] + lrs(tmp_path / "b", None) == whole  # resumes at the step-20 checkpoint


def test_trimmed_text_encoding_equals_the_full_77_positions():
    import open_clip

    from t2iscope.generate.train.clip import encode_text_trimmed, model_config

    torch.manual_seed(0)
    model = open_clip.CLIP(**model_config(QUICK.clip)).eval()
    ids = open_clip.get_tokenizer("ViT-B-32")(
        ["a blue spider in a room", "red cup", "photo of a green dog, blurry"]
    )
    with torch.no_grad():
        torch.testing.assert_close(
            encode_text_trimmed(model, ids), model.encode_text(ids), atol=1e-5, rtol=1e-5
        )
        assert not torch.allclose(encode_text_trimmed(model, ids[:1]), model.encode_text(ids[1:2]))


def test_latent_standardisation_keeps_decoding_and_centres_every_channel(world_dir: Path):
    from t2iscope.generate.train.sd import _pixels, build_vae, standardize_latents

    torch.manual_seed(0)
    vae = build_vae(QUICK.vae).eval()
    x = _pixels(load_world(world_dir, limit=32).images)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean
        before = vae.decode(z).sample
        standardize_latents(vae, z.mean((0, 2, 3)), z.std((0, 2, 3)))
        z2 = vae.encode(x).latent_dist.mean
        after = vae.decode(z2 / vae.config.scaling_factor).sample
    torch.testing.assert_close(z2.mean((0, 2, 3)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(z2.std((0, 2, 3)), torch.ones(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    assert vae.config.scaling_factor == 1.0


def test_v_prediction_recipe_writes_a_v_prediction_scheduler(trained: Path, world_dir: Path, tmp_path: Path):
    import shutil

    from diffusers import StableDiffusionPipeline

    out = tmp_path / "models"
    shutil.copytree(trained, out)
    recipe = tmp_path / "v.yaml"
    recipe.write_text("unet: {prediction_type: v_prediction}\n")
    args = ["generate", "train", "unet", "--world", str(world_dir), "--out", str(out), "--quick", "--force"]
    assert main([*args, "--recipe", str(recipe), "--limit", "48"]) == 0
    pipe = StableDiffusionPipeline.from_pretrained(str(out / "sd"))
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    pipe.set_progress_bar_config(disable=True)
    assert pipe("a red ball", num_inference_steps=2, output_type="np").images.shape == (1, 64, 64, 3)
    recipe.write_text("unet: {prediction_type: sample}\n")
    with pytest.raises(ConfigError, match="prediction_type"):
        load_recipe(recipe)
