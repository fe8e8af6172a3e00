"""``domain``: the host and registrable domain of each URL, with optional allow and block lists.

Adds ``host`` and ``domain`` (``img.bbc.co.uk`` -> ``bbc.co.uk``) as :mod:`t2iscope.curate.urls`
spells them, the spelling validity, download and the domains audit use: lower-case, IDNA-encoded,
no trailing dot, IPv6 without brackets. List entries are spelled the same way, so ``BBC.co.uk.``
and ``bücher.de`` match. Hosts are parsed once per distinct site, with the bundled public-suffix
list (never the network).

A list entry matches a host and every host under it, as blocklists (LAION's opt-out lists, hosts
files, uBlock) do: ``pinimg.com`` matches ``pinimg.com`` and ``i.pinimg.com``, ``i.pinimg.com``
only that host and those below it. An entry that is a public suffix itself (``com``, ``co.uk``)
would match whole TLDs and is refused. An IP entry (``127.0.0.1``, or ``127.1`` and the other
spellings browsers read as it) matches that address only, written as IPv4 or as the IPv4-mapped
IPv6 literal (``::ffff:127.0.0.1``), which stays the row's host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require
from t2iscope.curate.urls import is_ip_host, is_public_suffix, normalize_host, url_sites
from t2iscope.errors import ConfigError


def check_domain_list(entries: Iterable[object]) -> tuple[str, ...]:
    """The ``keep``/``drop`` entries spelled as hosts are (``BBC.co.uk.`` -> ``bbc.co.uk``,
    ``127.1`` -> ``127.0.0.1``); ValueError naming the first entry that is no host name or IP
    address, or that is a public suffix (``com``, ``co.uk``: it would match whole TLDs)."""
    spelled = []
    for entry in entries:
        host = normalize_host(entry) if isinstance(entry, str) else None
        if host is None:
            raise ValueError(f"{entry!r} is not a domain name")
        if not is_ip_host(host) and is_public_suffix(host):
            raise ValueError(f"{entry!r} is a public suffix: it would match every site under it")
        spelled.append(host)
    return tuple(spelled)


def _match_key(host: str) -> str:
    """An IPv4-mapped IPv6 host (``::ffff:10.0.0.1``) matches as its IPv4 address; others as spelled."""
    if ":" in host:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
        return str(mapped) if mapped is not None else host
    return host


@lru_cache(maxsize=64)
def _entries(entries: tuple[object, ...], field: str) -> frozenset[str]:
    try:
        return frozenset(_match_key(host) for host in check_domain_list(entries))
    except ValueError as e:
        raise ConfigError(f"stage 'domain': {field}: {e}") from None


def _is_listed(host: str, listed: frozenset[str]) -> bool:
    """``host`` is an entry or lies under one (``i.pinimg.com`` under ``pinimg.com``); IPs exactly."""
    if is_ip_host(host):
        return _match_key(host) in listed
    while True:
        if host in listed:
            return True
        _, dot, host = host.partition(".")
        if not dot:
            return False


def _listed(hosts: pa.ChunkedArray, entries: Iterable[object], field: str) -> np.ndarray:
    listed = _entries(tuple(entries), field)
    encoded = pc.dictionary_encode(hosts.combine_chunks())  # one look-up per distinct host
    hits = pa.array([_is_listed(h, listed) for h in encoded.dictionary.to_pylist()], pa.bool_())
    listed_rows = pc.fill_null(hits.take(encoded.indices), False)
    return np.asarray(listed_rows.to_numpy(zero_copy_only=False), dtype=bool)


def _check_lists(params: dict[str, Any], phase: str) -> None:
    """Recipe-time check of both lists (:func:`check_domain_list`), naming the list."""
    for key in ("keep", "drop"):
        for i, entry in enumerate(params.get(key) or ()):
            try:
                check_domain_list((entry,))
            except ValueError as exc:
                raise ValueError(f"{key}[{i}]: {exc}") from None


@operator(
    "domain",
    phases=(METADATA, PIXELS),
    outputs={"host": pa.string(), "domain": pa.string()},
    check=_check_lists,  # entries are host names and no public suffix, checked when the recipe is read
)
def domain(
    table: pa.Table, ctx: StageContext, keep: list[str] | None = None, drop: list[str] | None = None
) -> StageResult:
    """Add host/domain; keep only domains in ``keep`` (when set) and none in ``drop``."""
    sites = url_sites(require(table, "URL", ctx, "domain"))
    host, domains = sites.column("host"), sites.column("domain")
    rules = [(np.asarray(pc.is_null(host).to_numpy(zero_copy_only=False), dtype=bool), "host_missing")]
    if drop:
        rules.append((_listed(host, drop, "drop"), "domain_blocked"))
    if keep is not None:
        rules.append((~_listed(host, keep, "keep"), "domain_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    return StageResult(keep_mask, reason, {"host": host, "domain": domains})
