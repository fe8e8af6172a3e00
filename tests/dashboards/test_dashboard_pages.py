"""Every page through Streamlit's AppTest, asserting on numbers from the fixture runs folder."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from fixture_runs import APP, DOMAINS, NAME, PAYLOAD, write_audit_run
from streamlit.testing.v1 import AppTest


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning", "success")
        for e in at.get(kind)
    ]
    return "\n".join(plain(str(p)) for p in parts)


def test_overview_lists_every_run(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/overview.py")
    assert [m.value for m in at.metric] == ["1", "1", "1", "1"]
    assert "curated" in [t.value for t in at.text]


def test_empty_folder_says_what_to_run(tmp_path, use_runs):
    use_runs(tmp_path)
    for page in (
        "views/overview.py",
        "views/explorer.py",
        "views/funnel.py",
        "views/gallery.py",
        "views/bias.py",
        "views/quality.py",
    ):
        at = open_page(page)
        assert at.info and "t2iscope" in at.code[0].value, page
        assert not at.error


def test_explorer_counts_and_filters(runs_dir, use_runs):
    use_runs(runs_dir)
    kept = pd.read_parquet(runs_dir / "curated" / "kept")
    at = open_page("views/explorer.py")
    assert at.metric[0].value == str(len(kept))
    at.multiselect(key="languages").select("de").run()
    assert at.metric[0].value == str(int((kept["lang"] == "de").sum()))
    langs = at.dataframe[0].value
    assert langs["language"].tolist() == ["de"]


def test_explorer_filter_value_with_a_quote(runs_dir, use_runs):
    use_runs(runs_dir)
    kept = pd.read_parquet(runs_dir / "curated" / "kept")
    quoted = next(d for d in DOMAINS if "'" in d)
    at = open_page("views/explorer.py")
    at.multiselect(key="domains").select(quoted).run()
    assert not at.error
    assert at.metric[0].value == str(int((kept["domain"] == quoted).sum()))
    at.text_input(key="text").input("it's").run()
    assert not at.error
    assert at.metric[0].value == "0"


def test_explorer_world_thumbnails_survive_a_corrupt_image(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/explorer.py")
    at.selectbox(key="dataset").select_index(1).run()  # the world
    assert at.metric[0].value == str(len(pd.read_parquet(runs_dir / "world" / "metadata")))
    at.text_input(key="text").input("#0").run()  # only row 0's caption has "#0"; its image is corrupt
    assert "unreadable image" in texts(at)
    assert not at.error


def test_funnel_matches_stats(runs_dir, use_runs, stats):
    use_runs(runs_dir)
    at = open_page("views/funnel.py")
    funnel = at.dataframe[0].value
    assert funnel["rows_in"].tolist() == [s["rows_in"] for s in stats["stages"]]
    assert funnel["rows_out"].tolist() == [s["rows_out"] for s in stats["stages"]]
    assert at.metric[0].value == f"{stats['rows_out']:,}"
    reasons = at.dataframe[1].value
    expected = {(s["stage"], r): n for s in stats["stages"] for r, n in s["dropped"].items()}
    assert (
        dict(zip(zip(reasons["stage"], reasons["reason"], strict=True), reasons["rows"], strict=True))
        == expected
    )


def test_funnel_two_runs_side_by_side(runs_dir, use_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "curated", root / "a")
    shutil.copytree(runs_dir / "curated", root / "b")
    (root / "b" / "stats.json").write_text("{broken")
    use_runs(root)
    at = open_page("views/funnel.py")
    assert len(at.selectbox) == 2
    assert "stats.json: not valid JSON" in at.error[0].value  # run b, beside a working run a
    assert len(at.dataframe) >= 2


def test_run_with_missing_table_is_a_message(runs_dir, use_runs, tmp_path):
    shutil.copytree(runs_dir / "curated", tmp_path / "curated")
    shutil.rmtree(tmp_path / "curated" / "kept")
    use_runs(tmp_path)
    at = open_page("views/explorer.py")
    assert "no kept/*.parquet" in at.error[0].value


def test_gallery_grid_and_languages(runs_dir, use_runs):
    use_runs(runs_dir)
    manifest = pd.read_parquet(runs_dir / "gen" / "manifest.parquet")
    at = open_page("views/gallery.py")
    dog_en = manifest[(manifest["prompt_id"] == "dog") & (manifest["language"] == "en")]
    assert plain(at.subheader[0].value) == dog_en["prompt"].iloc[0]
    headers = [plain(m.value) for m in at.markdown if m.value.startswith("**cfg_scale")]
    assert headers == [f"**cfg_scale = {v}**" for v in sorted(dog_en["cfg_scale"].unique())]
    captions = [plain(c) for image in at.image for c in image.captions]
    grid = {
        f"seed {r.seed} · cfg {r.cfg_scale:g} · {r.steps} steps · {r.sampler}" for r in dog_en.itertuples()
    }
    assert grid <= set(captions)
    across = [c.split(":")[0] for c in captions if ": " in c]
    assert across == ["de", "en"]  # the same concept, one image per language


def test_gallery_corrupt_image_is_a_placeholder(runs_dir, use_runs):
    use_runs(runs_dir)
    at = open_page("views/gallery.py")
    at.selectbox(key="prompt_id").select("spider").run()
    at.selectbox(key="language").select("de").run()
    assert "unreadable image" in texts(at)
    assert not at.error


def test_bias_page(runs_dir, use_runs):
    use_runs(runs_dir)
    bias = pd.read_parquet(runs_dir / "audit" / "language_bias.parquet")
    culture = pd.read_parquet(runs_dir / "audit" / "culture.parquet")
    at = open_page("views/bias.py")
    adherence = at.dataframe[0].value.set_index("language")
    want = bias[bias["metric"] == "all_match"].set_index("language")
    assert adherence["value"].to_dict() == pytest.approx(want["value"].to_dict())
    assert adherence["ci_low"].to_dict() == pytest.approx(want["ci_low"].to_dict())
    shares = at.dataframe[1].value
    want = culture[(culture["metric"] == "share")]
    assert set(shares["source"]) == {"generated", "training", "parity"}
    assert len(shares) == len(want) and "(all)" not in set(shares["label"])
    assert "Skipped 3: prompt declares no expectation the judge answers (expect)" in texts(at)


def test_limbs_page_by_subject_then_by_seed(runs_dir, use_runs):
    use_runs(runs_dir)
    limbs = pd.read_parquet(runs_dir / "audit" / "limbs.parquet")
    at = open_page("views/limbs.py")
    shown = at.dataframe[0].value.set_index("level")
    by_subject = limbs[limbs["by"] == "subject"]
    for row in by_subject.itertuples():
        assert shown.loc[row.level, "value"] == pytest.approx(row.value)
        assert shown.loc[row.level, "ci_high"] == pytest.approx(row.ci_high)
    at.selectbox(key="limbs_by").select("seed").run()
    assert sorted(at.dataframe[0].value["level"]) == ["0", "1"]


def test_watermark_page(runs_dir, use_runs):
    use_runs(runs_dir)
    wm = pd.read_parquet(runs_dir / "audit" / "watermark.parquet")
    wm = wm[wm["metric"] == "bit_accuracy"]
    at = open_page("views/watermark.py")
    shown = at.dataframe[0].value
    assert set(shown["method"]) == set(wm["method"])
    assert sorted(shown["strength"].unique()) == sorted(wm["strength"].unique())
    worst = shown.sort_values("value").iloc[0]
    assert (worst["method"], worst["strength"]) == ("dwtDct", 1.0)


def test_audit_pages_show_only_the_runs_audits(runs_dir, use_runs, tmp_path):
    """A reused folder's older tables and an unfinished run's folder stay off the pages; the
    overview names the unfinished one as `evaluate report` does (issue 14 item 9)."""
    tables = {p.stem: pd.read_parquet(p) for p in (runs_dir / "audit").glob("*.parquet")}
    write_audit_run(tmp_path / "audit", {"limbs": tables["limbs"]})
    shutil.copy(runs_dir / "audit" / "watermark.parquet", tmp_path / "audit")  # an older run's
    shutil.copytree(runs_dir / "audit", tmp_path / "older", ignore=shutil.ignore_patterns("run.json"))
    use_runs(tmp_path)
    at = open_page("views/watermark.py")
    assert "No audit run here ran the watermark audit" in at.info[0].value
    assert not at.error and not at.dataframe
    at = open_page("views/limbs.py")
    assert set(at.dataframe[0].value["run"]) == {"audit"} and not at.error
    at = open_page("views/bias.py")
    assert "ran the language_bias or culture audit" in at.info[0].value
    at = open_page("views/overview.py")
    assert [m.value for m in at.metric] == ["0", "0", "0", "1"]
    (warning,) = at.warning
    assert plain(warning.value) == "older: unfinished audit run (no run.json); rerun `t2iscope evaluate run`"


PAGES = ("overview", "explorer", "funnel", "gallery", "bias", "limbs", "watermark", "quality", "annotate")
# Proto fields Streamlit renders as Markdown: bodies of markdown/caption/alerts/headings, widget
# and metric labels, tooltips, image captions, progress text, tab and expander labels.
MARKDOWN_FIELDS = {"body", "label", "help", "caption", "text"}


def markdown_sources(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit will render as Markdown."""
    found: list[str] = []

    def fields(msg) -> None:
        if type(msg).__name__ in ("Text", "Code"):  # st.text / st.code render no Markdown
            return
        for field, value in msg.ListFields():
            if field.message_type is not None:
                for sub in [value] if hasattr(value, "ListFields") else value:
                    fields(sub)
            elif field.name in MARKDOWN_FIELDS and isinstance(value, str):
                found.append(value)

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            fields(node.proto)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.*?)(?<!`)\1(?!`)", re.S)


def _content(span: re.Match) -> str:
    body = span.group(2)
    return body[1:-1] if body[:1] == body[-1:] == " " and body.strip(" ") else body


def plain(source: str) -> str:
    """What the browser shows of ``source`` where its code spans are concerned."""
    return CODE_SPAN.sub(_content, source)


def outside_code(source: str) -> str:
    """``source`` without its code spans: the part that Markdown parses."""
    return CODE_SPAN.sub("", source)


@pytest.mark.parametrize("page", PAGES)
def test_file_text_is_shown_as_text(hostile_runs, use_runs, page):
    root, _ = hostile_runs
    use_runs(root)
    at = open_page(f"views/{page}.py")
    if page == "limbs":
        at.selectbox(key="metric").select(PAYLOAD).run()
    sources = markdown_sources(at)
    assert sources
    for source in sources:
        parsed = outside_code(source)
        assert not any(s in parsed for s in ("](", "<", ":red[", "$x", "www.", "http", "PWNED")), source
    shown = {plain(s) for s in sources}
    if page in ("gallery", "annotate"):
        assert any(PAYLOAD in p for p in shown)  # the prompt, literally
    if page in ("explorer", "funnel", "overview"):
        assert any(NAME in p for p in shown) or NAME in "\n".join(str(t.value) for t in at.text)
    assert not at.exception


def test_gallery_refuses_images_outside_the_runs_folder(hostile_runs, use_runs):
    root, _ = hostile_runs
    use_runs(root)
    manifest = pd.read_parquet(next(root.glob("gen */manifest.parquet")))
    bad = [i for i, p in enumerate(manifest["image_path"]) if p.startswith("/") or ".." in p or "link" in p]
    assert len(bad) == 3
    at = open_page("views/gallery.py")
    warned, shown = [], 0
    for suite in at.selectbox(key="suite").options:
        at.selectbox(key="suite").select(suite).run()
        for prompt in at.selectbox(key="prompt_id").options:
            at.selectbox(key="prompt_id").select(prompt).run()
            for language in at.selectbox(key="language").options:
                at.selectbox(key="language").select(language).run()
                assert not at.error and not at.exception
                warned += [plain(w.value) for w in at.warning]
                shown += len(at.image)
    for row in bad:  # one line naming the row, in place of the image
        said = f"manifest.parquet row {row}: image_path"
        assert any(said in w and "outside the runs folder" in w for w in warned), row
    assert shown  # the images inside the folder still show


def test_a_foreign_table_the_run_lists_is_one_line(tmp_path, use_runs):
    """A table without the tidy columns (no judge, no intervals) where run.json lists an audit:
    one line naming the file, as `evaluate report` says it, not a KeyError."""
    table = pd.DataFrame(
        {"metric": ["bit_accuracy"] * 2, "value": [0.9, 0.8], "n": [10, 10], "strength": [0.1, 0.5]}
    )
    write_audit_run(tmp_path / "audit", {"watermark": table})
    use_runs(tmp_path)
    at = open_page("views/watermark.py")
    (error,) = at.error
    assert plain(error.value).startswith(f"{tmp_path / 'audit' / 'watermark.parquet'}: not an audit table")


def test_gallery_splits_by_an_a1111_setting_when_the_manifest_has_it(runs_dir, use_runs, tmp_path):
    """Issue 17: clip skip (and scheduler, variation and denoising strength) are grid axes and
    captions when a manifest has them; the fixture's older manifest, without them, loads as before
    (test_gallery_grid_and_languages)."""
    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "gen", root / "gen")
    df = pd.read_parquet(root / "gen" / "manifest.parquet")
    df = df.assign(
        scheduler="Karras", clip_skip=[1 + (i // 2) % 2 for i in range(len(df))], subseed=5,
        subseed_strength=0.25, enable_hr=True, hr_scale=2.0, hr_upscaler="Latent", denoising_strength=0.6,
    )  # fmt: skip
    df.to_parquet(root / "gen" / "manifest.parquet")
    use_runs(root)
    at = open_page("views/gallery.py")
    axes = at.selectbox(key="axis")
    assert "clip_skip" in axes.options and "scheduler" not in axes.options  # one scheduler: nothing to split
    axes.select("clip_skip").run()
    headers = [plain(m.value) for m in at.markdown if m.value.startswith("**clip_skip")]
    assert headers == ["**clip_skip = 1**", "**clip_skip = 2**"]
    captions = [plain(c) for image in at.image for c in image.captions]
    assert any(
        c.endswith("Euler a Karras · variation 5 × 0.25 · clip skip 2 · hires ×2 Latent at 0.6")
        for c in captions
    ), captions
