"""The report reads findings first (issue 15 item 5, and the report half of item 1).

A finished audit run is built from hand-made tidy tables (the audits' own row helpers), so each
test knows exactly which judge is valid on which attribute and domain: the first screen lists each
judge's validity (n, accuracy, Wilson interval); a figure whose judge is below 0.8 on an attribute,
or unvalidated on the run's image domain, is marked "not a finding" instead of presented as one;
sections open with sentences carrying value, interval and n; counts print as integers; the full
tidy tables are collapsed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest

from t2iscope import fileio
from t2iscope.evaluate import folder
from t2iscope.evaluate.report import build_report
from t2iscope.evaluate.tables import measure, rate, skipped, tidy
from t2iscope.intervals import wilson
from t2iscope.locks import output_lock

ALL = "(all)"
LANGS = {"en": (45, 48), "de": (40, 48), "ja": (30, 48)}  # all_match hits, images


def validity_table(legs: tuple[int, int] = (20, 41), domain: str = "embedded-sd") -> pd.DataFrame:
    """Judge clip: subject and color valid (>= 0.9), legs ``legs`` = (hits, n), all on ``domain``."""
    rows = []
    for attribute, (k, n) in {"subject": (164, 166), "color": (163, 166), "legs": legs}.items():
        common = {"attribute": attribute, "source": "labels.csv", "domain": domain}
        rows.append(rate("accuracy", k, n, **common))
        rows.append(measure("kappa", 0.5 if attribute == "legs" else 0.97, n, **common))
    return tidy(rows, "validity", "clip")


def language_bias_table() -> pd.DataFrame:
    rows = []
    en_k, en_n = LANGS["en"]
    for lang, (k, n) in LANGS.items():
        rows.append(rate("all_match", k, n, language=lang))
        rows.append(rate("subject_match", min(n, k + 2), n, language=lang))
        rows.append(rate("color_match", min(n, k + 1), n, language=lang))
        rows.append(rate("subject_other", 2, n, language=lang))
        if lang != "en":
            rows.append(
                measure(
                    "all_match_gap",
                    k / n - en_k / en_n,
                    n,
                    (-0.40, -0.22),
                    note="vs en (n=48)",
                    language=lang,
                )
            )
    rows.append(skipped(3, "prompt declares no expectation the judge answers (expect)"))
    return tidy(rows, "language_bias", "clip")


def limbs_table() -> pd.DataFrame:
    rows = [
        rate("failure_rate", k, 20, by="subject", level=s, attribute="legs", subject=s)
        for s, k in [("horse", 5), ("dog", 20), ("spider", 12)]
    ]
    rows += [
        rate("failure_rate", k, 30, by="seed", level=str(seed), attribute="legs", subject=ALL)
        for seed, k in [(0, 10), (1, 27)]
    ]
    rows += [
        rate("failure_rate", k, 30, by="steps", level=str(steps), attribute="legs", subject=ALL)
        for steps, k in [(20.0, 18), (3000.0, 19)]  # levels of a float column read "3000.0"
    ]
    return tidy(rows, "limbs", "clip")


def domains_table() -> pd.DataFrame:
    rows = [
        measure("rows", 3000, 3000, dataset="laion", level="domain"),
        measure("distinct", 812, 3000, dataset="laion", level="domain"),
        rate("top100_share", 1500, 3000, dataset="laion", level="domain"),
        measure("hhi", 0.0123, 3000, dataset="laion", level="domain"),
    ]
    rows += [
        rate("share", 300 - 10 * i, 3000, dataset="laion", level="domain", rank=i, key=f"site{i}.com")
        for i in (1, 2)
    ]
    return tidy(rows, "domains", "none")


def write_run(
    root: Path, tables: dict[str, pd.DataFrame], model_ids: tuple[str, ...] = ("embedded-sd",)
) -> Path:
    """A finished audit run of ``tables``, with judgments.parquet saying which model drew the images."""
    with output_lock(root):
        staging = folder.prepare(root, {"audits": sorted(tables)}, overwrite=True)
        for name, t in tables.items():
            fileio.write_parquet(staging / folder.table_name(name), t)
        judgments = pd.DataFrame(
            {"model_id": [model_ids[i % len(model_ids)] for i in range(12)], "status": "ok", "judge": "clip"}
        )
        fileio.write_parquet(staging / folder.JUDGMENTS, judgments)
        record = folder.run_record(list(tables), "clip", {"audits": sorted(tables)}, "fixture", {})
        folder.commit(root, staging, record)
    return root


def page_of(tmp_path: Path, **kw: object) -> str:
    tables = {
        "validity": validity_table(**kw.pop("validity", {})),  # type: ignore[arg-type]
        "language_bias": language_bias_table(),
        "limbs": limbs_table(),
        "domains": domains_table(),
    }
    return build_report(write_run(tmp_path / "A", tables, **kw)).read_text()  # type: ignore[arg-type]


def text(page: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def first_screen(page: str) -> str:
    """Everything before the first audit section: the validity panel and the headline cards."""
    return page[: page.index("<section id='validity'>")]


def panel(page: str) -> str:
    start = page.index("<section id='judge-validity'>")
    return page[start : page.index("</section>", start)]


def test_first_screen_lists_each_judges_validity_with_n_and_interval(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    assert (
        page.index("id='judge-validity'")
        < page.index("Headline findings")
        < page.index("<section id='validity'>")
    )
    lo, hi = wilson(164, 166)
    assert f"subject valid {164 / 166:.2f} [{lo:.2f}, {hi:.2f}] 0.97 166 labels.csv embedded-sd" in text(
        panel(page)
    )
    lo, hi = wilson(20, 41)
    assert f"legs NOT valid {20 / 41:.2f} [{lo:.2f}, {hi:.2f}] 0.50 41" in text(panel(page))
    assert "clip color valid 0.98" in text(panel(page))


def test_a_figure_below_0_8_is_marked_and_its_headline_is_no_finding(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    lo, hi = wilson(20, 41)
    reason = f"judge clip's legs accuracy {20 / 41:.2f} [{lo:.2f}, {hi:.2f}] n=41 < 0.8"
    cards = text(first_screen(page))
    # the limbs headline (dog, 1.00) is greyed with the reason, not stated as a finding
    limbs_card = cards[cards.index("worst wrong-limb-count rate") - 40 :]
    assert f"not a finding: {reason}" in limbs_card
    assert "<div class='card-marked'>" in first_screen(page)
    section = text(page[page.index("<section id='limbs'>") :])
    assert f"Not a finding ({reason}): Legs: the count is wrong in" in section
    # the language-bias headline's judge is valid on subject and color: a finding, not marked
    bias_card = re.search(r"<div class='card-marked'>(?:(?!</p></div>).)*largest adherence gap", page, re.S)
    assert bias_card is None and "largest adherence gap to the reference language (ja)" in cards


def test_the_same_run_with_valid_legs_states_the_finding(tmp_path: Path) -> None:
    page = page_of(tmp_path, validity={"legs": (40, 41)})
    assert "<div class='card-marked'>" not in first_screen(page) and "not a finding:" not in text(
        first_screen(page)
    )
    section = text(page[page.index("<section id='limbs'>") :])
    lo, hi = wilson(37, 60)  # 5 + 20 + 12 of 3 x 20 subjects' images
    assert f"Legs: the count is wrong in {37 / 60:.2f} [{lo:.2f}, {hi:.2f}], n=60 images" in section
    assert "judge clip, legs accuracy 0.98 (n=41)" in section


def test_labels_from_another_domain_leave_the_judge_unvalidated(tmp_path: Path) -> None:
    page = page_of(tmp_path, validity={"legs": (40, 41)}, model_ids=("embedded-sd", "sd15-local"))
    screen = text(first_screen(page))
    assert (
        "subject unvalidated" in screen
        and "labels only of embedded-sd, images of embedded-sd, sd15-local" in screen
    )
    bias = text(page[page.index("<section id='language_bias'>") : page.index("<section id='limbs'>")])
    assert bias.startswith(bias[: bias.index("Not a finding")])  # the adherence sentence is marked
    assert (
        "Not a finding (judge clip's color is unvalidated" in bias and "clip's subject is unvalidated" in bias
    )
    assert "not a finding: judge clip's color is unvalidated" in screen  # the headline card


def test_no_validity_audit_means_every_judged_figure_is_unvalidated(tmp_path: Path) -> None:
    tables = {"language_bias": language_bias_table(), "limbs": limbs_table()}
    page = build_report(write_run(tmp_path / "A", tables)).read_text()
    screen = text(first_screen_no_validity(page))
    assert "no validity audit in this run" in screen
    assert screen.count("not a finding:") == 2  # both judged headlines


def first_screen_no_validity(page: str) -> str:
    return page[: page.index("<section id='language_bias'>")]


def test_findings_sentences_carry_value_interval_and_n(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    bias = text(page[page.index("<section id='language_bias'>") : page.index("<section id='limbs'>")])
    lo, hi = wilson(30, 48)
    want = (
        "Adherence (all attributes: color, subject) is lowest in ja: "
        f"{30 / 48:.2f} [{lo:.2f}, {hi:.2f}], n=48, "
        f"{45 / 48 - 30 / 48:.2f} below en (Newcombe 95% CI [-0.40, -0.22])"
    )
    assert want in bias
    assert "judge clip, color accuracy 0.98 (n=166), subject accuracy 0.99 (n=166)." in bias
    # the sentence comes before any table of the section
    assert bias.index(want) < bias.index("Adherence, gap to the reference language")


def test_integers_render_as_integers(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    assert "3000.000" not in page and "3,000.000" not in page and "812.000" not in page
    assert "1.000" not in page.split("<section id='domains'>")[1].split("rank")[0]  # rank 1, not 1.000
    domains = text(page[page.index("<section id='domains'>") : page.index("<section id='language_bias'>")])
    assert "3,000" in domains and "812" in domains
    limbs = text(page[page.index("<section id='limbs'>") :])
    assert "steps 3000 " in limbs and "steps 20 " in limbs and "3000.0" not in limbs


def test_full_tables_are_collapsed(tmp_path: Path) -> None:
    page = page_of(tmp_path)
    for name in ("validity", "language_bias", "limbs", "domains"):
        section = page[page.index(f"<section id='{name}'>") :]
        section = section[: section.index("</section>")]
        assert "<details><summary>All " in section and f"<code>{name}.parquet</code>)</summary>" in section
    assert "<details open" not in page


@pytest.mark.parametrize("payload", ["<img src=x onerror=alert(1)>", "a&b\"'"])
def test_data_text_in_sentences_and_panel_is_escaped(tmp_path: Path, payload: str) -> None:
    bias = language_bias_table()
    bias.loc[bias["language"] == "ja", "language"] = payload
    val = validity_table().assign(source=payload)
    page = build_report(write_run(tmp_path / "A", {"validity": val, "language_bias": bias})).read_text()
    assert payload not in page and html.escape(payload) in page


def test_a_usable_judge_is_a_finding_that_says_its_validity_on_the_card(tmp_path: Path) -> None:
    """0.8 <= accuracy < 0.9: shown as a finding, with the judge's measured validity on the card."""
    page = page_of(tmp_path, validity={"legs": (68, 80)})
    screen = text(first_screen(page))
    assert "<div class='card-marked'>" not in first_screen(page)
    assert "worst wrong-limb-count rate of a subject" in screen
    assert f"judge clip, legs accuracy {68 / 80:.2f} (n=80, usable: below 0.9)" in screen


@pytest.mark.parametrize("legs", [(1, 1), (34, 41)])
def test_too_few_labels_are_not_a_validation(tmp_path: Path, legs: tuple[int, int]) -> None:
    """One label agreeing (1.00 [0.21, 1.00]) or 34/41 ([0.69, 0.92]): the interval spans the bars,
    so the limb figure is marked, whatever the point estimate."""
    page = page_of(tmp_path, validity={"legs": legs})
    screen = text(first_screen(page))
    assert "<div class='card-marked'>" in first_screen(page)
    assert f"legs too few labels {legs[0] / legs[1]:.2f}" in text(panel(page))
    assert f"rests on n={legs[1]} labels: too few to tell valid from not" in screen


@pytest.mark.parametrize(("asked", "marked"), [("dog", False), ("horse", True)])
def test_validity_holds_only_for_the_words_it_was_measured_on(
    tmp_path: Path, asked: str, marked: bool
) -> None:
    """Subject accuracy measured on the world's words says nothing of a horse: a run asking about
    words the labels never used leaves the judge unvalidated on that attribute."""
    validity = validity_table(legs=(40, 41)).assign(
        words=lambda t: t["attribute"].map({"subject": "ball, dog"})
    )
    root = write_run(tmp_path / "A", {"validity": validity, "language_bias": language_bias_table()})
    judgments = pd.read_parquet(root / folder.JUDGMENTS).assign(expect=f'{{"subject": "{asked}"}}')
    fileio.write_parquet(root / folder.JUDGMENTS, judgments)
    screen = text(first_screen(build_report(root).read_text()))
    assert ("subject unvalidated" in screen) == marked
    assert ("this run also asks about horse" in screen) == marked


def test_flat_results_state_no_extremes_and_a_gap_says_what_it_compares(tmp_path: Path) -> None:
    rows = []
    for lang in ("en", "de", "ja"):
        rows.append(rate("all_match", 3, 4, language=lang))
        rows.append(rate("subject_match", 3, 4, language=lang))
        if lang != "en":
            rows.append(
                measure(
                    "all_match_gap",
                    0.0,
                    4,
                    (-0.4, 0.4),
                    note="vs en on the same 4 prompts (n=4)",
                    language=lang,
                )
            )
    root = write_run(
        tmp_path / "A", {"validity": validity_table(), "language_bias": tidy(rows, "language_bias", "clip")}
    )
    section = text(build_report(root).read_text().split("<section id='language_bias'>")[1])
    assert "highest in" not in section and "lowest in" not in section
    assert "is the same in every language (3): 0.75 [0.30, 0.95], n=4" in section


def test_a_gap_sentence_says_what_it_compares(tmp_path: Path) -> None:
    rows = [rate("all_match", 4, 4, language="en"), rate("subject_match", 4, 4, language="en")]
    rows += [rate("all_match", 2, 4, language="ja"), rate("subject_match", 2, 4, language="ja")]
    rows.append(
        measure(
            "all_match_gap", -0.5, 4, (-0.8, 0.1), note="vs en on the same 4 prompts (n=4)", language="ja"
        )
    )
    root = write_run(
        tmp_path / "A", {"validity": validity_table(), "language_bias": tidy(rows, "language_bias", "clip")}
    )
    section = text(build_report(root).read_text().split("<section id='language_bias'>")[1])
    assert "0.50 below en on the same 4 prompts (Newcombe 95% CI [-0.80, 0.10])" in section


def test_a_value_and_its_interval_share_their_decimals() -> None:
    """0.0133 [0.0095, 0.018] printed as 0.01 [0.0095, 0.02] made the value look like its lower bound."""
    from t2iscope.evaluate.report_html import said

    row = pd.Series({"metric": "share", "value": 0.0133, "ci_low": 0.0095, "ci_high": 0.018, "n": 3000})
    assert said(row) == "0.0133 [0.0095, 0.0180], n=3,000"
    row = pd.Series({"metric": "share", "value": 0.62, "ci_low": 0.55, "ci_high": 0.69, "n": 48})
    assert said(row) == "0.62 [0.55, 0.69], n=48"


@pytest.mark.parametrize(("asked", "marked"), [("dog", False), ("horse", True)])
def test_a_limb_rate_counted_where_the_subject_was_seen_rests_on_subject_validity_too(
    tmp_path: Path, asked: str, marked: bool
) -> None:
    """Legs valid on 190 labels, subject validity measured on dogs only: a horse leg rate counted on
    the images the judge called horses is not a finding (the judge's 'horse' was never checked)."""
    validity = validity_table(legs=(172, 190)).assign(
        words=lambda t: t["attribute"].map({"subject": "ball, dog"})
    )
    limbs = tidy(
        [
            rate("subject_drawn", 4, 20, by="subject", level=asked, attribute="subject", subject=asked),
            rate("failure_rate", 3, 4, by="subject", level=asked, attribute="legs", subject=asked),
            skipped(16, "the judge does not see the declared subject: limbs not counted", attribute="legs"),
        ],
        "limbs",
        "clip",
    )
    root = write_run(tmp_path / "A", {"validity": validity, "limbs": limbs})
    judgments = pd.read_parquet(root / folder.JUDGMENTS).assign(expect=f'{{"subject": "{asked}", "legs": 4}}')
    fileio.write_parquet(root / folder.JUDGMENTS, judgments)
    page = build_report(root).read_text()
    screen = first_screen(page)
    assert ("<div class='card-marked'>" in screen) == marked
    section = text(page[page.index("<section id='limbs'>") :])
    assert f"The judge sees the declared subject in {4 / 20:.2f}" in section
    # the subject sentence and the leg sentence: both marked, or both findings
    assert section.count("Not a finding") == (2 if marked else 0), section
