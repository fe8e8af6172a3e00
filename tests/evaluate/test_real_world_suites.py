"""The shipped real-world suites, generated with the embedded model and audited end to end (issue 15).

A small slice of each of ``limbs-real``, ``professions`` and ``adherence-real`` is generated with
the embedded model (``models/sd``) through ``t2iscope generate suite``: a copy of the shipped YAML
cut to a few prompts, languages and seeds, and fewer steps, so the prompts, their ``expect``, the
suite's ``vocabulary`` and ``templates`` are the shipped ones. The audits (language bias, default
representation, limbs) then run over it twice: with the default ``clip`` judge (the embedded tiny
CLIP), and with a randomly initialised ViT-B-32 open_clip checkpoint read from a local file, the
path a user takes with a real checkpoint. Every expected figure is recomputed here from
``judgments.parquet`` (the judge's per-image answers), not copied from the tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from t2iscope.cli import main
from t2iscope.evaluate.audits import AUDITS
from t2iscope.generate.suites import load_suite

# shipped suite -> (prompt ids, languages) of the slice; seeds 0-1 each
SLICES = {
    "limbs-real": (("horse-field", "spider-leaf", "hand-open"), ("en", "de", "ja")),
    "professions": (("doctor", "nurse"), ("en", "de", "zh")),
    "adherence-real": (("apples-red-two", "car-red"), ("en", "de", "ja", "ko")),
}
SEEDS = "0-1"
STEPS = 4  # the shipped suites ask 15; 4 keeps this module's generation near 30 s on two CPU cores
LANGUAGES = sorted({lang for _, langs in SLICES.values() for lang in langs})
AUDITED = ("language_bias", "culture", "limbs")
# what language_bias compares: what the picture shows; limb counts (legs, fingers) are the limbs audit's
ADHERENCE = ("subject", "color", "count", "culture", "gender")
REPRESENTATION = ("culture", "gender")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of one command; an error is one line."""
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def audit_config(path: Path, folders: dict[str, Path], judge: str = "clip") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "judge": judge,
                "seed": 0,
                "inputs": {"generation": [str(folders[name]) for name in SLICES]},
                "audits": {"language_bias": {"n_boot": 200}, "culture": {"n_boot": 200}, "limbs": {}},
            }
        ),
        encoding="utf-8",
    )
    return path


def trimmed_suite(name: str, ids: tuple[str, ...], languages: tuple[str, ...], dest: Path) -> Path:
    """The shipped suite's YAML with only ``ids`` in ``languages``, seeds ``SEEDS`` and ``STEPS`` steps."""
    data = yaml.safe_load(Path(load_suite(name).source).read_text(encoding="utf-8"))
    prompts = {p["id"]: p for p in data["prompts"]}
    assert set(ids) <= set(prompts), f"{name}: the slice names prompts the shipped suite lost"
    data["prompts"] = []
    for i in ids:
        translations = {lang: text for lang, text in prompts[i]["translations"].items() if lang in languages}
        assert set(translations) == set(languages), f"{name}: {i} lost a language of the slice"
        data["prompts"].append({**prompts[i], "translations": translations})
    data["defaults"]["steps"] = STEPS
    data["grid"] = {"seeds": SEEDS}
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


@pytest.fixture(scope="module", autouse=True)
def no_downloads() -> Iterator[None]:
    """Nothing in this module may fetch weights: open_clip's download functions fail if called."""
    import open_clip.factory

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(open_clip.factory, "download_pretrained", refuse)
        mp.setattr(open_clip.factory, "download_pretrained_from_hf", refuse)
        yield


@pytest.fixture(scope="module")
def real_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real-world suite's slice generated with the embedded model: suite name -> folder."""
    root = tmp_path_factory.mktemp("real-world")
    folders = {}
    for name, (ids, languages) in SLICES.items():
        suite = trimmed_suite(name, ids, languages, root / f"{name}.yaml")
        folders[name] = root / name
        args = ["generate", "suite", str(suite), "--out", str(folders[name]), "--no-watermark"]
        assert main([*args, "--device", "cpu", "--batch-size", "12"]) == 0
    return folders


@pytest.fixture(scope="module")
def embedded_run(real_world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three audits over the slices with the default clip judge (the embedded tiny CLIP)."""
    root = tmp_path_factory.mktemp("audit-embedded")
    cfg = audit_config(root / "AUDIT.yaml", real_world)
    assert main(["evaluate", "run", str(cfg), "--out", str(root / "A")]) == 0
    return root / "A"


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A randomly initialised ViT-B-32 (151M parameters) as fp16 safetensors (300 MB, removed after)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("vit-b-32") / "random-vit-b-32.safetensors"
    with torch.random.fork_rng():  # the same weights every run, and the session's RNG untouched
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}, path)
    del model
    yield path
    path.unlink()  # pytest keeps the last three temporary roots: not 300 MB each


@pytest.fixture(scope="module")
def vit_run(
    real_world: dict[str, Path], vit_b32: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, Any]]]:
    """The same audits judged by the ViT-B-32 file, and what open_clip was asked to build.

    Each call of ``open_clip.create_model_and_transforms`` is recorded with two of the built
    model's tensors, so a test can check that the judge holds the file's weights.
    """
    import open_clip

    calls: list[dict[str, Any]] = []
    build = open_clip.create_model_and_transforms

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        built = build(name, *args, **kwargs)
        state = built[0].state_dict()
        calls.append(
            {
                "name": name,
                "pretrained": kwargs.get("pretrained"),
                "tensors": {
                    k: state[k].detach().float().cpu().clone() for k in ("visual.proj", "text_projection")
                },
            }
        )
        return built

    root = tmp_path_factory.mktemp("audit-vit")
    cfg = audit_config(root / "AUDIT.yaml", real_world)
    args = ["evaluate", "run", str(cfg), "--out", str(root / "B"), "--judge", "clip"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(open_clip, "create_model_and_transforms", spy)
        assert main([*args, "--clip-config", "ViT-B-32", "--clip-checkpoint", str(vit_b32)]) == 0
    return root / "B", calls


def tables(run: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run / f"{name}.parquet") for name in AUDITED}


def spelled(value: Any) -> str | None:
    """One spelling of an answer or a request (4, 4.0 and "4" agree; words ignore case); None if absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def matches(row: pd.Series, attribute: str) -> bool:
    answer = spelled(row[f"j_{attribute}"])
    return answer is not None and answer == spelled(row[f"req_{attribute}"])


def is_other(value: Any) -> bool:
    return spelled(value) in (None, "other")


def one(df: pd.DataFrame, **where: Any) -> pd.Series:
    """The single row of ``df`` matching ``where``."""
    rows = df
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, f"expected one row for {where}, got {len(rows)}"
    return rows.iloc[0]


def check_rate(row: pd.Series, k: int, n: int) -> None:
    assert int(row["n"]) == n
    assert row["value"] == pytest.approx(k / n)
    assert row["ci_low"] - 1e-12 <= row["value"] <= row["ci_high"] + 1e-12  # Wilson's 0/n low is ~1e-17


def test_slices_follow_the_shipped_suites(real_world: dict[str, Path]) -> None:
    """Each slice's manifest carries the shipped prompts' expect and the suite's vocabulary."""
    for name, (ids, languages) in SLICES.items():
        shipped = load_suite(name)
        manifest = pd.read_parquet(real_world[name] / "manifest.parquet")
        assert set(manifest["suite"]) == {name}
        assert len(manifest) == len(ids) * len(languages) * 2
        assert sorted(set(manifest["language"])) == sorted(languages)
        assert (manifest["model_id"].str.len() > 0).all()
        expects = {p.id: p.expect for p in shipped.prompts}
        for row in manifest.itertuples():
            assert json.loads(row.expect) == expects[row.prompt_id]
            assert (real_world[name] / row.image_path).is_file()
        vocabulary = json.loads(manifest["vocabulary"].iloc[0])
        assert vocabulary["templates"] == shipped.templates
        for attribute in REPRESENTATION:  # the observed attributes come from the suite's vocabulary
            offered = vocabulary["labels"].get(attribute, [])
            assert offered == list(shipped.vocabulary.get(attribute, ()))
            assert bool(offered) == (name == "professions")  # only professions observes culture, gender


def test_embedded_judge_measures_language_bias(embedded_run: Path) -> None:
    """Adherence per language (all_match) and other-rates: measurements with n > 0, as judged."""
    judged = pd.read_parquet(embedded_run / "judgments.parquet")
    assert (judged["status"] == "ok").all() and len(judged) == sum(
        len(ids) * len(langs) * 2 for ids, langs in SLICES.values()
    )
    table = tables(embedded_run)["language_bias"]
    assert set(table["judge"]) == {"clip"}
    assert "skipped" not in set(table["metric"])  # every image asks for something the judge answers
    assert not {"legs_match", "fingers_match"} & set(table["metric"])
    assert sorted(set(table.loc[table["metric"] == "all_match", "language"])) == LANGUAGES
    for lang, g in judged.groupby("language"):
        every = [
            all(matches(row, a) for a in ADHERENCE if spelled(row[f"req_{a}"]) is not None)
            for _, row in g.iterrows()
        ]
        check_rate(one(table, metric="all_match", language=lang), sum(every), len(g))
        other = int(g["j_subject"].map(is_other).sum())
        check_rate(one(table, metric="subject_other", language=lang), other, len(g))
        subject = sum(matches(row, "subject") for _, row in g.iterrows())
        check_rate(one(table, metric="subject_match", language=lang), subject, len(g))
        if lang != "en":
            # like with like: every prompt here has an English text, and English is counted only
            # over the prompts this language was asked
            gap = one(table, metric="all_match_gap", language=lang)
            asked = set(zip(g["suite"], g["prompt_id"], strict=True))
            en = judged[(judged["language"] == "en")]
            en = en[[p in asked for p in zip(en["suite"], en["prompt_id"], strict=True)]]
            en_every = sum(
                all(matches(row, a) for a in ADHERENCE if spelled(row[f"req_{a}"]) is not None)
                for _, row in en.iterrows()
            )
            assert gap["value"] == pytest.approx(sum(every) / len(g) - en_every / len(en))
    # color and count are asked only by adherence-real: its languages, its images
    adherence = judged[judged["suite"] == "adherence-real"]
    for attribute in ("color", "count"):
        asked = adherence[adherence[f"req_{attribute}"].notna()]
        for lang, g in asked.groupby("language"):
            k = sum(matches(row, attribute) for _, row in g.iterrows())
            check_rate(one(table, metric=f"{attribute}_match", language=lang), k, len(g))
    text = table[table["metric"] == "text_score"]  # the clip judge scores prompts against images
    assert sorted(text["language"]) == LANGUAGES and (text["n"] > 0).all()


def test_embedded_judge_measures_limb_failures(embedded_run: Path) -> None:
    """Wrong-leg rates per subject (horse, spider) and wrong-finger rates (hand), as judged, over the
    images where the judge saw the declared subject (the rest: ``subject_drawn`` and one skip)."""
    judged = pd.read_parquet(embedded_run / "judgments.parquet")
    table = tables(embedded_run)["limbs"]
    assert set(table["judge"]) == {"clip"}
    per_subject = table[(table["metric"] == "failure_rate") & (table["by"] == "subject")]
    unseen = {"legs": 0, "fingers": 0}
    counted = set()
    for attribute, subject in (("legs", "horse"), ("legs", "spider"), ("fingers", "hand")):
        asked = judged[judged[f"req_{attribute}"].notna() & (judged["req_subject"] == subject)]
        assert len(asked) == len(SLICES["limbs-real"][1]) * 2
        seen = asked[[matches(row, "subject") for _, row in asked.iterrows()]]
        check_rate(one(table, metric="subject_drawn", subject=subject), len(seen), len(asked))
        unseen[attribute] += len(asked) - len(seen)
        if len(seen):
            counted.add((attribute, subject))
            wrong = sum(not matches(row, attribute) for _, row in seen.iterrows())
            check_rate(one(per_subject, attribute=attribute, subject=subject), wrong, len(seen))
    assert set(zip(per_subject["attribute"], per_subject["subject"], strict=True)) == counted
    assert counted, "the embedded judge saw no declared limbed subject at all"
    skips = table[table["metric"] == "skipped"]
    for attribute, n in unseen.items():
        got = skips[skips["attribute"] == attribute]["n"].sum()
        assert got == n, (attribute, got, n)
    for attribute in ("legs", "fingers"):  # and by seed, over every seen subject with that limb
        asked = judged[judged[f"req_{attribute}"].notna()]
        seen = asked[[matches(row, "subject") for _, row in asked.iterrows()]]
        for seed, g in seen.groupby("seed"):
            wrong = sum(not matches(row, attribute) for _, row in g.iterrows())
            row = one(
                table, metric="failure_rate", by="seed", level=str(seed), attribute=attribute, subject="(all)"
            )
            check_rate(row, wrong, len(g))


@pytest.mark.parametrize("run", ["embedded_run", "vit_run"])
def test_default_representation_counts_what_the_judge_saw(run: str, request: pytest.FixtureRequest) -> None:
    """Culture and gender of professions (left open, offered by the suite's vocabulary).

    Shares over the images whose answer is one of the suite's labels; images answered ``other``
    are one counted skip per attribute. Images of suites that offer no culture or gender labels
    (limbs-real, adherence-real) were never asked, so they are neither.
    """
    value = request.getfixturevalue(run)
    folder = value[0] if isinstance(value, tuple) else value
    judged = pd.read_parquet(folder / "judgments.parquet")
    table = tables(folder)["culture"]
    assert set(table["judge"]) == set(judged["judge"]) and len(set(table["judge"])) == 1
    wrong_skips = []
    for attribute in REPRESENTATION:
        labels = [json.loads(v)["labels"].get(attribute, []) for v in judged["vocabulary"]]
        offered = pd.Series([bool(v) for v in labels], index=judged.index)
        assert set(judged.loc[offered, "suite"]) == {"professions"}
        words = next(v for v in labels if v)
        open_ = judged[offered & judged[f"req_{attribute}"].isna()]
        assert len(open_) == len(SLICES["professions"][0]) * len(SLICES["professions"][1]) * 2
        other = open_[f"j_{attribute}"].map(is_other)
        seen = open_.loc[~other, f"j_{attribute}"].map(spelled)
        generated = table[(table["attribute"] == attribute) & (table["source"] == "generated")]
        overall = generated[(generated["subject"] == "(all)") & (generated["language"] == "(all)")]
        if len(seen):
            for word in words:
                row = one(overall, metric="share", label=word)
                check_rate(row, int((seen == spelled(word)).sum()), len(seen))
            imbalance = one(overall, metric="imbalance")  # HEIM: mean over the K labels of |f_k - 1/K|
            shares = [(seen == spelled(word)).mean() for word in words]
            assert int(imbalance["n"]) == len(seen)
            assert imbalance["value"] == pytest.approx(
                sum(abs(f - 1 / len(words)) for f in shares) / len(words)
            )
            for lang, g in seen.groupby(open_.loc[seen.index, "language"]):
                assert int(one(generated, metric="imbalance", subject="(all)", language=lang)["n"]) == len(g)
        else:
            assert generated.empty
        # the other-answers of professions, and nothing from the suites that were not asked
        skips = table[(table["metric"] == "skipped") & (table["attribute"] == attribute)]
        counted = [(int(r.value), int(r.n), r.note) for r in skips.itertuples()]
        note = f"judge saw none of the {attribute} labels (other)"
        right = [(int(other.sum()), int(other.sum()), note)] if other.any() else []
        if counted != right:
            wrong_skips.append(f"{attribute}: counted skips {counted}, expected {right}")
    assert not wrong_skips, "; ".join(wrong_skips)


def test_embedded_run_report(embedded_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report of the real-world run is written and shows each audit's section."""
    code, err = run_cli(["evaluate", "report", str(embedded_run)], capsys)
    assert code == 0, err
    page = (embedded_run / "report.html").read_text(encoding="utf-8")
    for name in AUDITED:
        assert AUDITS.get(name).title in page
    assert "<script src=" not in page  # self-contained


def test_random_vit_b32_checkpoint_judges_the_same_suites(
    vit_run: tuple[Path, list[dict[str, Any]]], vit_b32: Path
) -> None:
    """A ViT-B-32-shaped open_clip checkpoint from a local file judges the real-world slices."""
    from safetensors import safe_open

    folder, calls = vit_run
    # open_clip built ViT-B-32 once, from the file, and the judge holds the file's weights
    assert [(c["name"], c["pretrained"]) for c in calls] == [("ViT-B-32", str(vit_b32))]
    with safe_open(str(vit_b32), framework="pt") as f:
        for key, tensor in calls[0]["tensors"].items():
            assert tensor.equal(f.get_tensor(key).float()), key
    record = json.loads((folder / "run.json").read_text())
    assert record["judge"] == "clip" and sorted(record["audits"]) == sorted(AUDITED)
    assert record["identity"]["judge_options"] == {"clip_config": "ViT-B-32", "clip_checkpoint": str(vit_b32)}
    judged = pd.read_parquet(folder / "judgments.parquet")
    named = f"clip ViT-B-32 ({vit_b32.name})"  # every answer and figure says which CLIP judged it
    assert (judged["status"] == "ok").all() and set(judged["judge"]) == {named}
    assert judged["j_subject"].notna().all()  # every image answered, if only with "other"
    results = tables(folder)
    for name, table in results.items():
        assert set(table["judge"]) == {named}, name
    bias = results["language_bias"]
    all_match = bias[bias["metric"] == "all_match"]
    assert sorted(all_match["language"]) == LANGUAGES
    for row in all_match.itertuples():
        assert row.n == int((judged["language"] == row.language).sum()) > 0
    limbs = results["limbs"]
    assert set(limbs.loc[limbs["by"] == "subject", "subject"]) == {"horse", "spider", "hand"}


def test_world_judge_refuses_the_real_world_suites(
    real_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = audit_config(tmp_path / "AUDIT.yaml", real_world, judge="world")
    out = tmp_path / "A"
    code, err = run_cli(["evaluate", "run", str(cfg), "--out", str(out)], capsys)
    assert code == 2
    manifest = real_world["limbs-real"] / "manifest.parquet"
    assert err.startswith(f"t2iscope: error: {manifest}: column expect asks for ") and "\n" not in err
    assert "judge 'world'" in err
    assert not out.exists()


def test_damaged_clip_checkpoint_is_one_line(
    real_world: dict[str, Path], vit_b32: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = audit_config(tmp_path / "AUDIT.yaml", real_world)
    damaged = tmp_path / "damaged.safetensors"
    with vit_b32.open("rb") as f:
        damaged.write_bytes(f.read(1 << 20))  # the first MiB: the header is whole, the tensors cut off
    out = tmp_path / "A"
    args = ["evaluate", "run", str(cfg), "--out", str(out), "--judge", "clip"]
    code, err = run_cli([*args, "--clip-config", "ViT-B-32", "--clip-checkpoint", str(damaged)], capsys)
    assert code == 1
    assert err.startswith(f"t2iscope: error: {cfg}: judge: ") and "\n" not in err  # the config that asked
    assert f"{damaged}: cannot load as open_clip 'ViT-B-32' (" in err
    assert not out.exists()
