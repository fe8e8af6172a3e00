"""Domain and language-mix audits against counts made by hand from the same rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from t2iscope import fileio
from t2iscope.errors import ConfigError, DataError
from t2iscope.evaluate import stats
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs
from t2iscope.evaluate.urls import registrable_domain

URLS = [
    "https://a.example.com/1.jpg",
    "http://a.example.com/2.jpg",
    "a.example.com/3.jpg",
    "https://user@b.example.com:8080/x.png",
    "https://cdn.shop.co.uk/p.jpg",
    "https://CDN.shop.co.uk/q.jpg",
    "",
    None,
]


def one(t: pd.DataFrame, **eq: object) -> pd.Series:
    sel = pd.Series(True, index=t.index)
    for k, v in eq.items():
        sel &= t[k] == v
    assert sel.sum() == 1, eq
    return t[sel].iloc[0]


def test_registrable_domain_offline() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("i.pinimg.com") == "pinimg.com"
    assert registrable_domain("10.0.0.1") == "10.0.0.1"


def test_domains_hosts_vs_registrable_domains(tmp_path: Path) -> None:
    fileio.write_parquet(tmp_path / "d.parquet", pd.DataFrame({"url": URLS}))
    t = AUDITS.get("domains").fn(AuditContext(Inputs(data=(tmp_path / "d.parquet",))))
    # hosts: a.example.com 3, cdn.shop.co.uk 2, b.example.com 1; domains: example.com 4, shop.co.uk 2
    assert one(t, metric="distinct", level="host")["value"] == 3
    assert one(t, metric="distinct", level="domain")["value"] == 2
    assert one(t, metric="hhi", level="domain")["value"] == pytest.approx((4 / 6) ** 2 + (2 / 6) ** 2)
    assert one(t, metric="hhi", level="host")["value"] == pytest.approx(stats.hhi([3, 2, 1]))
    assert one(t, metric="gini", level="host")["value"] == pytest.approx(stats.gini([3, 2, 1]))
    top = one(t, metric="share", level="domain", rank=1)
    assert (top["key"], top["value"], top["n"]) == ("example.com", 4 / 6, 6)
    skip = one(t, metric="skipped", level="domain")
    assert skip["value"] == 2 and "without a host" in skip["note"]
    cov = t[(t["metric"] == "coverage") & (t["level"] == "host")]
    assert list(cov["value"]) == pytest.approx([3 / 6, 5 / 6, 1.0])


def test_domain_shift_of_a_curation_run(curation_run: Path) -> None:
    t = AUDITS.get("domains").fn(AuditContext(Inputs(curation=(curation_run,))), shift_top=5)
    rows = duckdb.sql(
        f"SELECT URL, stage FROM read_parquet('{curation_run}/dropped/*.parquet') UNION ALL "
        f"SELECT URL, NULL FROM read_parquet('{curation_run}/kept/*.parquet')"
    ).df()
    rows["domain"] = [registrable_domain(u.split("/")[2]) for u in rows["URL"]]
    top = rows["domain"].value_counts().index[0]
    mine = rows[rows["domain"] == top]
    reached = mine[mine["stage"] != "language"]
    row = one(t, metric="pass_rate", level="domain", key=top, stage="aesthetic")
    assert (row["value"], row["n"]) == (reached["stage"].isna().mean(), len(reached))
    keep = one(t, metric="keep_rate", level="domain", key=top)
    assert keep["value"] == pytest.approx(mine["stage"].isna().mean())
    assert one(t, metric="rows", dataset="run:input", level="domain")["value"] == len(rows)


def test_language_mix(curation_run: Path, world_dir: Path) -> None:
    t = AUDITS.get("language_mix").fn(AuditContext(Inputs(curation=(curation_run,), world=world_dir)))
    meta = duckdb.sql(
        f"SELECT LANGUAGE, AESTHETIC_SCORE FROM read_parquet('{world_dir}/metadata/*.parquet')"
    ).df()
    en = meta[meta["LANGUAGE"] == "en"]
    assert one(t, metric="keep_rate", column="LANGUAGE", key="de")["value"] == 0.0
    assert one(t, metric="pass_rate", column="LANGUAGE", key="en", stage="language")["value"] == 1.0
    aes = one(t, metric="pass_rate", column="LANGUAGE", key="en", stage="aesthetic")
    assert (aes["value"], aes["n"]) == ((en["AESTHETIC_SCORE"] >= 5).mean(), len(en))
    share = one(t, metric="share_in", column="LANGUAGE", key="en")
    assert share["value"] == pytest.approx(len(en) / len(meta))
    # cultures ride along: the English-only stage keeps fewer east-asian scenes than western ones
    west = one(t, metric="pass_rate", column="culture", key="western", stage="language")
    east = one(t, metric="pass_rate", column="culture", key="east_asian", stage="language")
    assert west["value"] > east["value"]


def test_missing_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs inputs\.curation"):
        AUDITS.get("language_mix").fn(AuditContext(Inputs()))
    with pytest.raises(DataError, match="not a curation run"):
        AUDITS.get("language_mix").fn(AuditContext(Inputs(curation=(tmp_path,))))
    fileio.write_parquet(tmp_path / "x.parquet", pd.DataFrame({"caption": ["a"]}))
    with pytest.raises(DataError, match="needs one of the columns URL, url"):
        AUDITS.get("domains").fn(AuditContext(Inputs(data=(tmp_path / "x.parquet",))))
