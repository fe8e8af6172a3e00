"""Every registered audit reaches the report through its own registration, and a new one needs no edit.

The report and the runner read titles, sections, headlines and the judged flag from the audit's
record; these tests run every registered audit on the fixture inputs and check each one shows up
(section, nav link, headline card), and that an audit registered elsewhere reaches the report.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest

from t2iscope import fileio
from t2iscope.evaluate import folder, report
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.audits.base import Audit, AuditRegistry
from t2iscope.evaluate.config import DEFAULT_JUDGE
from t2iscope.evaluate.context import AuditContext, Inputs
from t2iscope.evaluate.tables import measure, tidy

# Smaller than the defaults so the whole registry runs in seconds; any other audit runs as registered.
FAST = {
    "language_bias": {"n_boot": 50},
    "culture": {"n_boot": 50},
    "watermark": {
        "sources": ["world"],
        "methods": ["dwtDctFixed"],
        "max_images": 2,
        "attacks": {"none": [0], "jpeg": [50], "regen_diffusion": [0.1]},  # the headline: regeneration
        "null_images": 8,  # the default 1000 world renders cost minutes; 2 + 8 still give every row
        "quality_clip": False,  # the end-to-end run (test_run_and_report.py) keeps the CLIP rows
    },
}


def section_of(page: str, audit: Audit) -> str:
    """The HTML of ``audit``'s section in ``page`` (empty when it has none)."""
    start = page.find(f"<section id='{audit.name}'>")
    return page[start : page.index("</section>", start)] if start >= 0 else ""


@pytest.fixture(scope="module")
def audit_dir(
    gen_dir: Path, curation_run: Path, world_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every registered audit's table on the fixture inputs, plus report.html.

    Audits not flagged ``judged`` run with a judge that cannot be built, so the flag the runner
    relies on (build the judge first only when some audit needs it) is checked, not assumed.
    """
    out = tmp_path_factory.mktemp("audits")
    inputs = Inputs(generation=(gen_dir,), curation=(curation_run,), world=world_dir)
    judged, unjudged = AuditContext(inputs), AuditContext(inputs, judge_name="no-such-judge")
    for audit in AUDITS.in_report_order():
        table = audit.fn(judged if audit.judged else unjudged, **FAST.get(audit.name, {}))
        fileio.write_parquet(out / f"{audit.name}.parquet", table)
    fileio.write_json(out / "run.json", {"audits": AUDITS.names()})  # the report shows what it lists
    report.build_report(out)
    return out


@pytest.mark.parametrize("name", AUDITS.names())
def test_every_audit_reaches_the_report(audit_dir: Path, name: str) -> None:
    audit = AUDITS.get(name)
    table = pd.read_parquet(audit_dir / f"{name}.parquet")
    page = (audit_dir / "report.html").read_text()
    title = html.escape(audit.title)
    assert audit.title and f"<a href='#{name}'>{title}</a>" in page
    section = section_of(page, audit)
    assert f"<h2>{title}</h2>" in section and f"<code>{name}.parquet</code>" in section
    assert len(section) > 500, "the section renderer produced next to nothing"
    if audit.headline is not None:
        card = report.headline(audit, table)
        assert card and html.escape(audit.headline.label) in card and card in page
    if audit.judged:  # (unjudged audits ran without a judge at all: the fixture would have failed)
        assert set(table["judge"]) == {DEFAULT_JUDGE}


def test_report_follows_registration_order(audit_dir: Path) -> None:
    page = (audit_dir / "report.html").read_text()
    positions = [page.index(f"<section id='{a.name}'>") for a in AUDITS.in_report_order()]
    assert positions == sorted(positions)


def render_demo(df: pd.DataFrame) -> str:
    """Section of the throwaway audit below: its value, to show the renderer ran."""
    return f"<p class='demo'>{df['value'].iloc[0]:.3f}</p>"


def test_a_new_audit_reaches_the_report_without_editing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = AuditRegistry("audit")

    @registry.audit(
        "demo_audit",
        title="Demo <audit>",
        section=f"{__name__}:render_demo",
        order=5,
        headline=("hit_rate", {"language": "xx"}, "max", "best demo hit rate"),
    )
    def demo_audit(ctx: AuditContext) -> pd.DataFrame:
        rows = [measure("hit_rate", 0.25, 8, language="xx"), measure("hit_rate", 0.75, 8, language="yy")]
        return tidy(rows, "demo_audit", judge="none")

    assert registry.get("demo_audit").fn is demo_audit  # the decorator returns the function itself
    monkeypatch.setattr(folder, "AUDITS", registry)  # the audit folder's reader knows the audits
    fileio.write_parquet(tmp_path / "demo_audit.parquet", demo_audit(AuditContext(Inputs())))
    fileio.write_json(tmp_path / "run.json", {"audits": ["demo_audit"]})
    page = report.build_report(tmp_path).read_text()
    assert "<a href='#demo_audit'>Demo &lt;audit&gt;</a>" in page
    assert "<section id='demo_audit'><h2>Demo &lt;audit&gt;</h2>" in page
    assert "<p class='demo'>0.250</p>" in page and "best demo hit rate (xx)" in page
