"""``domain``: the registrable domain of each URL, with optional allow and block lists.

Adds ``host`` and ``domain`` (``img.bbc.co.uk`` -> ``bbc.co.uk``) using tldextract's bundled
public-suffix snapshot only, never the network, one lookup per distinct host.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(?P<host>[^/?#:]+)"


def registrable_domains(hosts: list[str], cache: dict[str, str]) -> list[str]:
    import tldextract

    extract = cache.get("__extractor__") or tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    cache["__extractor__"] = extract  # type: ignore[assignment]
    out = []
    for host in hosts:
        if host not in cache:
            parts = extract(host)
            cache[host] = parts.top_domain_under_public_suffix or parts.domain or host
        out.append(cache[host])
    return out


@operator("domain", phases=(METADATA, PIXELS), outputs={"host": pa.string(), "domain": pa.string()})
def domain(
    table: pa.Table, ctx: StageContext, keep: list[str] | None = None, drop: list[str] | None = None
) -> StageResult:
    """Add host/domain; keep only domains in ``keep`` (when set) and none in ``drop``."""
    url = require(table, "URL", ctx, "domain").combine_chunks()
    host = pc.utf8_lower(pc.struct_field(pc.extract_regex(url, HOST), "host"))
    encoded = pc.dictionary_encode(host)
    cache = ctx.state.setdefault("domains", {})
    unique = [h for h in encoded.dictionary.to_pylist()]
    domains = pa.array(registrable_domains(unique, cache), pa.string()).take(encoded.indices)
    rules = [(np.asarray(pc.is_null(host).to_numpy(zero_copy_only=False), dtype=bool), "host_missing")]
    if drop:
        blocked = pc.fill_null(pc.is_in(domains, pa.array(list(drop), pa.string())), False)
        rules.append((np.asarray(blocked.to_numpy(zero_copy_only=False), dtype=bool), "domain_blocked"))
    if keep is not None:
        allowed = pc.fill_null(pc.is_in(domains, pa.array(list(keep), pa.string())), False)
        rules.append((~np.asarray(allowed.to_numpy(zero_copy_only=False), dtype=bool), "domain_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    return StageResult(keep_mask, reason, {"host": host, "domain": domains})
