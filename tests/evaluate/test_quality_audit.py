"""The quality audit end to end on rendered 'generations' (conftest's gen_dir) against reference
sets in each layout it reads, its report section, the feature cache and the local encoders."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from t2iscope import fileio
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate.audits.quality import quality_audit
from t2iscope.evaluate.config import parse_config
from t2iscope.evaluate.context import AuditContext, Inputs
from t2iscope.evaluate.features import (
    EncoderSpec,
    FeatureCache,
    clip_encoder,
    extract,
    file_images,
    make_encoder,
    reference_images,
)
from t2iscope.evaluate.report_quality import section_quality
from t2iscope.evaluate.runner import checked_context


@pytest.fixture(autouse=True)
def feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.getbasetemp() / "feature-cache"
    monkeypatch.setenv("T2ISCOPE_FEATURE_CACHE", str(root))
    return root


def _png(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture(scope="module")
def download_dir(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `curate download`-shaped folder: 40 world images in a webdataset tar, 30 of them kept."""
    out = tmp_path_factory.mktemp("download") / "d"
    shard = out / "images" / "attempt-1"
    shard.mkdir(parents=True)
    files = sorted((world_dir / "images").rglob("*.png"))[:40]
    with tarfile.open(shard / "00000.tar", "w") as tar:
        for i, f in enumerate(files):
            data = f.read_bytes()
            info = tarfile.TarInfo(f"{i:09d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    kept = pd.DataFrame(
        {
            "images_dir": "attempt-1",
            "key": [f"{i:09d}" for i in range(30)],
            "TEXT": [f"caption {i}" for i in range(30)],
        }
    )
    fileio.write_parquet(out / "kept" / "part-001-00000.parquet", kept)
    fileio.write_parquet(out / "status.parquet", kept.assign(status="success"))
    return out


@pytest.fixture(scope="module")
def grid_gen(gen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gen_dir's images as a CFG x steps grid: cfg_scale set by seed (2 levels per steps value),
    each subject and language one prompt over four seeds."""
    out = tmp_path_factory.mktemp("grid") / "cfg-grid"
    shutil.copytree(gen_dir, out)
    df = pd.read_parquet(out / "manifest.parquet")
    df["cfg_scale"] = np.where(df["seed"] < 2, 3.0, 9.0)
    df["prompt_id"] = df["prompt_id"].str.replace(r"-\d$", "", regex=True)  # one prompt, four seeds
    fileio.write_parquet(out / "manifest.parquet", df)
    return out


@pytest.fixture(scope="module")
def table(grid_gen: Path, download_dir: Path) -> pd.DataFrame:
    ctx = AuditContext(Inputs(generation=(grid_gen,)))
    return quality_audit(ctx, reference=str(download_dir), n_boot=20)


def test_every_metric_per_run_and_setting_with_n_and_interval(table: pd.DataFrame) -> None:
    whole = table[(table["by"] == "all") & (table["run"] == "cfg-grid")].set_index("metric")
    for metric in ("clip_score", "fd", "kid", "cmmd", "precision", "recall", "density", "coverage", "vendi"):
        row = whole.loc[metric]
        assert np.isfinite(row["value"]) and row["ci_low"] <= row["value"] <= row["ci_high"], metric
    assert whole.loc["fd", "n"] == 60 and whole.loc["fd", "n_reference"] == 30  # only the kept rows
    # n is the generated count on every row; recall and coverage say they are shares of the reference
    assert (whole.loc[["recall", "coverage", "precision", "density"], "n"] == 60).all()
    assert whole.loc["recall", "note"] == "a share of the 30 reference images"
    # each row names its scorer: the aesthetic head for aesthetic rows, else the row's encoder
    assert (whole.loc[["aesthetic", "aesthetic_gap"], "judge"] == "aesthetic:aesthetic").all()
    assert whole.loc["cmmd", "judge"] == whole.loc["cmmd", "encoder"] == "open_clip:clip"
    for by, levels in {
        "cfg_scale": {"3", "9"},
        "steps": {"10", "20"},
        "language": {"en", "de", "zh"},
    }.items():
        got = table[(table["by"] == by) & (table["curve"] == "(all)") & (table["metric"] == "cmmd")]
        assert {str(v).removesuffix(".0") for v in got["level"]} == levels, by
    assert set(table.loc[table["by"] == "sampler", "level"]) == {"Euler a", "DDIM"}
    # the trade-off curves: cfg levels at each step count
    assert set(table.loc[(table["by"] == "cfg_scale") & (table["metric"] == "fd"), "curve"]) == {
        "(all)",
        "steps 10",
        "steps 20",
    }


def test_broken_images_are_counted_and_reference_baselines_reported(table: pd.DataFrame) -> None:
    skips = table[table["metric"] == "skipped"]
    assert int(skips["value"].sum()) == 2 and skips["note"].str.contains("missing|unreadable").all()
    ref = table[table["run"] == "(reference)"]
    assert set(ref["metric"]) == {"clip_score", "aesthetic_q"}
    q = ref[ref["metric"] == "aesthetic_q"].sort_values("q")
    assert len(q) == 9 and q["value"].is_monotonic_increasing


def test_nearest_reference_images_are_the_closest(table: pd.DataFrame, download_dir: Path) -> None:
    near = table[table["metric"] == "nearest_reference"]
    assert len(near) == 60 * 3 and set(near["rank"]) == {1, 2, 3}
    for _, g in near.groupby("level"):
        assert g.sort_values("rank")["value"].is_monotonic_increasing
    assert near["reference"].str.contains(r"00000\.tar#0000000[0-2]\d$").all()  # kept keys only


def test_section_plots_the_cfg_tradeoff_and_says_what_it_found(table: pd.DataFrame) -> None:
    html = section_quality(table)
    assert html.count("<img") >= 3  # FD and CMMD vs CLIPScore, aesthetic deciles
    assert "Closest to the reference set" in html and "CLIPScore peaks at cfg" in html
    assert "By cfg_scale" in html and "CFG x steps grid" in html
    assert "nearest_reference" not in html  # those rows are the dashboard's, not the table's


def test_reference_layouts(world_dir: Path, download_dir: Path, tmp_path: Path) -> None:
    folder = reference_images(world_dir / "images")
    assert len(folder) == 400 and not folder.texts
    download = reference_images(download_dir)
    assert len(download) == 30 and download.texts[0] == "caption 0"
    shards = reference_images(download_dir / "images")  # plain shards: every image in the tar
    assert len(shards) == 40
    blobs = [f.read_bytes() for f in sorted((world_dir / "images").rglob("*.png"))[:5]]
    fileio.write_parquet(tmp_path / "p" / "00000.parquet", pd.DataFrame({"key": list("abcde"), "jpg": blobs}))
    parquet = reference_images(tmp_path / "p")
    assert list(parquet.blobs()) == blobs
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    with pytest.raises(ConfigError, match="holds no image"):
        reference_images(tmp_path / "empty")
    with pytest.raises(ConfigError, match="not found"):
        reference_images(tmp_path / "nope")


def test_config_names_a_missing_reference_before_any_work(gen_dir: Path, tmp_path: Path) -> None:
    data = {"inputs": {"generation": [str(gen_dir)]}, "audits": {"quality": {"reference": "no/such/dir"}}}
    config = parse_config(data, "a.yaml")  # read: a shipped config names folders the demo makes later
    with pytest.raises(ConfigError, match=r"a\.yaml: audits\.quality\.reference: no/such/dir: not found"):
        checked_context(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    data["audits"]["quality"] = {"reference": str(gen_dir), "encoder": {"kind": "keras"}}
    with pytest.raises(ConfigError, match=r"encoder\.kind"):
        parse_config(data, "a.yaml")


def test_features_are_cached_per_image_content(gen_dir: Path, tmp_path: Path) -> None:
    encoder = clip_encoder()
    files = sorted((gen_dir / "images").glob("0000*.png"))
    calls = []
    real = encoder.encode

    def counted(pixels: np.ndarray) -> np.ndarray:
        calls.append(len(pixels))
        return real(pixels)

    encoder.encode = counted  # type: ignore[method-assign]
    try:
        first = extract(file_images("a", files), encoder, FeatureCache(encoder, tmp_path), progress=False)
        copy = tmp_path / "copy.png"
        shutil.copy(files[0], copy)  # same bytes, another path: a cache hit
        again = extract(
            file_images("b", [*files, copy]), encoder, FeatureCache(encoder, tmp_path), progress=False
        )
    finally:
        del encoder.encode
    assert calls == [len(files)]
    np.testing.assert_array_equal(again.values[: len(files)], first.values)
    np.testing.assert_array_equal(again.values[-1], first.values[0])


def test_a_torchvision_model_from_a_local_weights_file(gen_dir: Path, tmp_path: Path) -> None:
    import torch
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    spec = EncoderSpec(kind="torchvision", model="resnet18", path=str(weights), input_size=64)
    encoder = make_encoder(spec)
    feats = extract(file_images("g", sorted((gen_dir / "images").glob("0000*.png"))), encoder, progress=False)
    assert feats.values.shape == (10, 512) and feats.ok.all()
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pth")
    with pytest.raises(DataError, match=r"wrong\.pth: weights do not fit torchvision .resnet18."):
        make_encoder(EncoderSpec(kind="torchvision", model="resnet18", path=str(tmp_path / "wrong.pth")))
    with pytest.raises(ConfigError, match="needs model"):
        make_encoder(EncoderSpec(kind="timm", path=str(weights)))


def test_clean_resize_is_antialiased(tmp_path: Path) -> None:
    from t2iscope.evaluate.features import clean_resize

    stripes = np.zeros((256, 256, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a nearest/aliased resize keeps only one colour
    small = clean_resize(Image.fromarray(stripes), 32)
    assert small.dtype == np.float32 and small.shape == (32, 32, 3)
    assert np.allclose(small[2:-2, 2:-2], 127.5, atol=1.0)  # away from the borders' bicubic overshoot


def _one_image_gen(grid_gen: Path, out: Path) -> Path:
    shutil.copytree(grid_gen, out)
    df = pd.read_parquet(out / "manifest.parquet")
    fileio.write_parquet(out / "manifest.parquet", df.head(1))
    return out


def test_too_small_sets_give_noted_rows_and_no_finding(
    grid_gen: Path, world_dir: Path, download_dir: Path, tmp_path: Path
) -> None:
    one = _one_image_gen(grid_gen, tmp_path / "one")
    t = quality_audit(AuditContext(Inputs(generation=(one,))), reference=str(download_dir), n_boot=5)
    whole = t[(t["by"] == "all") & (t["run"] == "one")].set_index("metric")
    for metric in ("fd", "kid", "cmmd", "precision", "recall", "density", "coverage"):
        assert np.isnan(whole.loc[metric, "value"]) and whole.loc[metric, "n"] == 1, metric
        assert whole.loc[metric, "note"].startswith("too few generated images: 1;"), metric
    assert whole.loc["precision", "note"].endswith("PRDC needs >= 6 (k+1, k = 5)")
    assert whole.loc["clip_score", "note"].startswith("n=1: no interval")
    values = t[t["metric"] != "nearest_reference"]
    no_ci = values[values["ci_low"].isna() & (values["metric"] != "skipped")]
    assert (no_ci["note"] != "").all()  # every number without an interval says why
    html = section_quality(t)
    assert "Closest to the reference set" not in html and "CLIPScore of generations" not in html
    assert "Not computed" in html and "No Vendi score: it needs &gt;= 2 images per prompt" in html
    # a one-image reference: every two-sample metric is a row that says the reference is too small
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(next((world_dir / "images").rglob("*.png")), ref / "a.png")
    t = quality_audit(AuditContext(Inputs(generation=(grid_gen,))), reference=str(ref), n_boot=5)
    whole = t[(t["by"] == "all") & (t["run"] == "cfg-grid")].set_index("metric")
    assert whole.loc["fd", "note"] == "reference set too small: 1 images; FD needs >= 2"
    assert whole.loc["coverage", "note"].startswith("reference set too small: 1 images; PRDC needs >= 6")
    assert "reference set too small" in section_quality(t)


def test_aesthetic_gap_covering_zero_is_no_difference(table: pd.DataFrame) -> None:
    t = table.copy()
    gap = (t["metric"] == "aesthetic_gap") & (t["by"] == "all")
    t.loc[gap, ["value", "ci_low", "ci_high"]] = [0.001, -0.12, 0.12]
    assert "no difference from the data" in section_quality(t)
    t.loc[gap, ["value", "ci_low", "ci_high"]] = [0.5, 0.3, 0.7]
    assert "above the data" in section_quality(t) and "no difference" not in section_quality(t)


def test_bad_model_paths_name_the_yaml_field(gen_dir: Path, download_dir: Path, tmp_path: Path) -> None:
    ctx = AuditContext(Inputs(generation=(gen_dir,)), source="mine.yaml")
    run = {"reference": str(download_dir), "n_boot": 1}
    with pytest.raises(
        ConfigError, match=r"^mine\.yaml: audits\.quality\.clip: notmodel\.safetensors: not found"
    ):
        quality_audit(ctx, clip="notmodel.safetensors", **run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"audits\.quality\.encoder: .*empty: not a model folder") as err:
        quality_audit(ctx, encoder={"path": str(tmp_path / "empty")}, **run)
    assert "generate train" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"audits\.quality\.aesthetic: .*nope: not found"):
        quality_audit(ctx, aesthetic=str(tmp_path / "nope"), **run)
    (tmp_path / "bad.safetensors").write_text("not weights")
    with pytest.raises(DataError, match=r"audits\.quality\.encoder: .*bad\.safetensors: cannot read weights"):
        quality_audit(
            ctx,
            encoder={"kind": "timm", "model": "resnet18", "path": str(tmp_path / "bad.safetensors")},
            **run,
        )
