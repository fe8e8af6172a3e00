"""Hosts and registrable domains of image URLs for audits, as curation spells them.

A host (``cdn.shopify.com``) and its registrable domain (``shopify.com``, the label under the
public suffix) answer different questions: hosts show CDNs and shards, domains show who owns the
content. Both come from curation's one parser (:mod:`t2iscope.curate.urls`): DuckDB counts rows
per URL head (``scheme://authority``, :func:`head_sql`) in one pass with flat memory, the parser
then reads each distinct head once (tens of thousands, not millions), and the public-suffix
lookup runs once per distinct host, with tldextract's bundled list (offline).
"""

from __future__ import annotations

import pandas as pd

from t2iscope.curate import urls
from t2iscope.sql import ident

NO_HOST = "(no host)"


def registrable_domain(host: str) -> str:
    """``a.b.example.co.uk`` -> ``example.co.uk`` (curation's lookup); no host -> ``NO_HOST``."""
    return urls.registrable_domain(host) if host else NO_HOST


def head_sql(column: str) -> str:
    """The DuckDB expression for the head of the URLs in ``column``; :func:`hosts` reads it."""
    return urls.head_sql(ident(column))


def hosts(heads: pd.Series) -> pd.Series:
    """The host of each URL head (None where there is none), one parse per distinct head."""
    mapping = {h: urls.parse_head(h).host for h in heads.dropna().unique()}
    return heads.map(mapping)


def add_domains(counts: pd.DataFrame, host_col: str = "host") -> pd.DataFrame:
    """Add a ``domain`` column to a frame of per-host rows (one lookup per distinct host)."""
    hosts = counts[host_col].fillna("")
    mapping = {h: registrable_domain(h) for h in set(hosts)}
    out = counts.copy()
    out[host_col] = hosts.replace("", NO_HOST)
    out["domain"] = hosts.map(mapping)
    return out
