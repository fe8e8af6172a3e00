"""Hosts and registrable domains of image URLs, fast enough for 10M-row LAION shards.

A host (``cdn.shopify.com``) and its registrable domain (``shopify.com``, the label under the
public suffix) answer different questions: hosts show CDNs and shards, domains show who owns the
content. DuckDB extracts the host from every URL in SQL; the public-suffix lookup then runs once
per *distinct* host (tens of thousands, not millions), with tldextract's bundled list (offline).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from t2iscope.curate.operators.domain import registrable_domain as _registrable_domain

# scheme://user@HOST:port/path -> HOST (lower-cased); URLs without a scheme still work.
HOST_SQL = (
    "lower(regexp_extract({col}, '^\\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?(?:[^@/?#]*@)?([^:/?#\\s]*)', 1))"
)
NO_HOST = "(no host)"


def registrable_domain(host: str) -> str:
    """``a.b.example.co.uk`` -> ``example.co.uk`` (curation's lookup); no host -> ``NO_HOST``."""
    return _registrable_domain(host) if host else NO_HOST


def domains_of(hosts: Iterable[str]) -> dict[str, str]:
    """Registrable domain for each distinct host."""
    return {h: registrable_domain(h) for h in set(hosts)}


def host_sql(column: str) -> str:
    """The DuckDB expression extracting the lower-cased host of ``column``."""
    return HOST_SQL.format(col=f'"{column}"')


def add_domains(counts: pd.DataFrame, host_col: str = "host") -> pd.DataFrame:
    """Add a ``domain`` column to a frame of per-host rows (one lookup per distinct host)."""
    mapping = domains_of(counts[host_col].fillna(""))
    out = counts.copy()
    out[host_col] = out[host_col].fillna("").replace("", NO_HOST)
    out["domain"] = counts[host_col].fillna("").map(mapping)
    return out
