"""``domain``: the host and registrable domain of each URL, with optional allow and block lists.

Adds ``host`` and ``domain`` (``img.bbc.co.uk`` -> ``bbc.co.uk``) as :mod:`t2iscope.curate.urls`
spells them, the spelling validity, download and the domains audit use: lower-case, IDNA-encoded,
no trailing dot, IPv6 without brackets. List entries are spelled the same way, so ``BBC.co.uk.``
and ``bücher.de`` match. Hosts are parsed once per distinct site, with the bundled public-suffix
list (never the network).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require
from t2iscope.curate.urls import normalize_host, url_sites
from t2iscope.errors import ConfigError


@lru_cache(maxsize=64)
def _domains(entries: tuple[str, ...], field: str) -> pa.Array:
    spelled = [normalize_host(str(e)) for e in entries]
    bad = [e for e, s in zip(entries, spelled, strict=True) if s is None]
    if bad:
        raise ConfigError(f"stage 'domain': {field}: {bad[0]!r} is not a domain name")
    return pa.array(spelled, pa.string())


def _listed(domains: pa.ChunkedArray, entries: list[str], field: str) -> np.ndarray:
    listed = pc.fill_null(pc.is_in(domains, _domains(tuple(entries), field)), False)
    return np.asarray(listed.to_numpy(zero_copy_only=False), dtype=bool)


@operator("domain", phases=(METADATA, PIXELS), outputs={"host": pa.string(), "domain": pa.string()})
def domain(
    table: pa.Table, ctx: StageContext, keep: list[str] | None = None, drop: list[str] | None = None
) -> StageResult:
    """Add host/domain; keep only domains in ``keep`` (when set) and none in ``drop``."""
    sites = url_sites(require(table, "URL", ctx, "domain"))
    host, domains = sites.column("host"), sites.column("domain")
    rules = [(np.asarray(pc.is_null(host).to_numpy(zero_copy_only=False), dtype=bool), "host_missing")]
    if drop:
        rules.append((_listed(domains, drop, "drop"), "domain_blocked"))
    if keep is not None:
        rules.append((~_listed(domains, keep, "keep"), "domain_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    return StageResult(keep_mask, reason, {"host": host, "domain": domains})
