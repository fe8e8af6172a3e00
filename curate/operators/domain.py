"""``domain``: the registrable domain of each URL, with optional allow and block lists.

Adds ``host`` and ``domain`` (``img.bbc.co.uk`` -> ``bbc.co.uk``) using tldextract's bundled
public-suffix snapshot only, never the network, one lookup per distinct host.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(?P<host>[^/?#:]+)"


@lru_cache(maxsize=1)
def _extractor() -> Any:  # tldextract is imported lazily: it is slow to import
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled list, no network


@lru_cache(maxsize=1 << 20)
def registrable_domain(host: str) -> str:
    """``a.b.example.co.uk`` -> ``example.co.uk``; IPs and bare names come back unchanged."""
    parts = _extractor()(host)
    return parts.top_domain_under_public_suffix or parts.domain or host


@operator("domain", phases=(METADATA, PIXELS), outputs={"host": pa.string(), "domain": pa.string()})
def domain(
    table: pa.Table, ctx: StageContext, keep: list[str] | None = None, drop: list[str] | None = None
) -> StageResult:
    """Add host/domain; keep only domains in ``keep`` (when set) and none in ``drop``."""
    url = require(table, "URL", ctx, "domain").combine_chunks()
    host = pc.utf8_lower(pc.struct_field(pc.extract_regex(url, HOST), "host"))
    encoded = pc.dictionary_encode(host)
    unique = [registrable_domain(h) for h in encoded.dictionary.to_pylist()]
    domains = pa.array(unique, pa.string()).take(encoded.indices)
    rules = [(np.asarray(pc.is_null(host).to_numpy(zero_copy_only=False), dtype=bool), "host_missing")]
    if drop:
        blocked = pc.fill_null(pc.is_in(domains, pa.array(list(drop), pa.string())), False)
        rules.append((np.asarray(blocked.to_numpy(zero_copy_only=False), dtype=bool), "domain_blocked"))
    if keep is not None:
        allowed = pc.fill_null(pc.is_in(domains, pa.array(list(keep), pa.string())), False)
        rules.append((~np.asarray(allowed.to_numpy(zero_copy_only=False), dtype=bool), "domain_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    return StageResult(keep_mask, reason, {"host": host, "domain": domains})
