"""The one URL parser: what a URL fetches, its host and its registrable domain.

Validity (is it a fetchable http(s) URL?), download (the ASCII URL handed to img2dataset), the
``domain`` stage with its allow/block lists and the domains audit all read URLs through
:func:`parse_url`, so they agree on one spelling of each site:

- parsing and normalising is yarl's (``URL(str)``): scheme lower-cased, IPv6 literals checked,
  ports converted, default ports dropped and dot segments removed (RFC 3986 §6.2.2-6.2.3),
  non-ASCII paths, queries and fragments percent-encoded as UTF-8 (RFC 3987 §3.1), leading
  C0/space stripped and tab/CR/LF removed as WHATWG parsers do;
- a non-ASCII host is encoded by yarl with the ``idna`` package's UTS-46 mapping (falling back to
  IDNA 2003 where IDNA 2008 refuses a label), an IP literal is written as RFC 5952 recommends;
- the registrable domain comes from tldextract's bundled public-suffix snapshot (never the
  network), with the Public Suffix List's default rule ``*`` for names under no listed suffix.

A column of URLs is parsed per *distinct site*: the host, port and scheme of a URL depend only
on its head (``scheme://authority``, :data:`SITE_PATTERN`), and a LAION shard of 10M URLs holds
a few hundred thousand distinct heads. The head is parsed with the same :func:`parse_url` and
cached, so the column helpers (in Arrow; in DuckDB via :func:`head_sql` and the SQL function of
:func:`register_duckdb`) give what :func:`parse_url` gives each row (tests hold them to it).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from yarl import URL

from t2iscope.sql import literal

# The head of a URL: everything before its path, i.e. ``scheme:`` and ``//authority`` as RFC 3986
# Appendix B splits them (the authority ends at the first ``/``, ``?`` or ``#``). Tab, CR and LF
# are removed first, as yarl does. Always matches (an empty head for a bare path).
SITE_PATTERN = r"^(?P<head>[^/?#]*(?://[^/?#]*)?)"
REMOVED_CHARS = "[\t\r\n]"
# Space, C0 controls and DEL: http.client refuses to send them in a request line (InvalidURL),
# so img2dataset cannot fetch such a URL as written.
UNSENDABLE = r"[\x00-\x20\x7f]"
_UNSENDABLE = re.compile(UNSENDABLE)
# A DNS host name in ASCII: labels of letters, digits and hyphens (RFC 1123 §2.1), plus ``_`` and
# edge hyphens, which real sites use (``my_shop-.blogspot.com``) and DNS resolves (RFC 2181 §11).
_HOST_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
HTTP_SCHEMES = frozenset({"http", "https"})
# A sufficient condition for "fetchable as written", checked in RE2 before any Python runs: most
# LAION URLs are lower-case http(s) URLs with no port or user and a printable ASCII path, which
# parse_url accepts unchanged (a test holds every match to it). Labels of at most 30 characters,
# at most 8 of them, keep such a host within DNS's 253; longer hosts take the parser's path.
PLAIN_FETCHABLE = r"^https?://[a-z0-9_-]{1,30}(?:\.[a-z0-9_-]{1,30}){1,7}(?:/[!-~]*)?$"

# Why a URL is not fetchable, first that applies (parse_url's order).
MALFORMED = "malformed"  # yarl refuses it: unbalanced IPv6 brackets, a port that is no number, ...
NO_HOST = "no_host"  # nothing that names a host (``javascript:...``, ``not a url``)
BAD_HOST = "bad_host"  # a host that is no DNS name or IP literal (``a..com``, ``a!b.com``)
NOT_HTTP = "not_http"  # another scheme (``ftp:``), or none (``example.com/a.jpg``, ``//x/a.jpg``)
USERINFO = "userinfo"  # ``user:pw@``: deprecated (RFC 3986 §3.2.1); urllib reads it as host:port
BAD_PORT = "bad_port"  # port 0
SINGLE_LABEL = "single_label"  # ``localhost``, intranet names
UNSENDABLE_CHARS = "unsendable"  # a space or control character (see UNSENDABLE)

# The DuckDB function register_duckdb() adds: parse_url's problem, NULL when fetchable.
URL_PROBLEM_SQL = "t2i_url_problem"


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """One URL, parsed once.

    ``url`` is the normalised ASCII URL to fetch, None unless fetchable. ``host`` (lower-case,
    IDNA-encoded, no trailing dot, IPv6 without brackets) and ``domain`` are set whenever the URL
    names a valid host, fetchable or not (``ftp://``, ``user@`` and URLs with spaces still have
    one). ``port`` is an explicit non-default port. ``problem`` is None exactly when fetchable.
    """

    url: str | None
    host: str | None
    port: int | None
    domain: str | None
    problem: str | None

    @property
    def fetchable(self) -> bool:
        return self.problem is None


def parse_url(url: str) -> ParsedUrl:
    """Parse and normalise ``url``; a URL without a scheme is read as ``http://`` + it for its host.

    Reading ``example.com/a.jpg`` as browsers' address bars do gives such rows a host to be
    counted under, while they stay unfetchable (``not_http``): the downloader needs a scheme.
    """
    try:
        parsed = URL(url)
        schemeless = not parsed.scheme
        if schemeless and parsed.raw_host is None:
            parsed = URL("http://" + url)
    except (ValueError, IndexError):  # yarl 1.25 raises IndexError for an empty host before "@" ("//[]@")
        return ParsedUrl(None, None, None, None, MALFORMED)
    canonical = _canonical_host(parsed.raw_host) if parsed.raw_host else None
    if canonical is None:
        return ParsedUrl(None, None, None, None, NO_HOST if parsed.raw_host is None else BAD_HOST)
    host, is_ip = canonical
    domain = registrable_domain(host)
    port = None if parsed.is_default_port() else parsed.explicit_port
    problem = (
        NOT_HTTP
        if schemeless or parsed.scheme not in HTTP_SCHEMES
        else USERINFO
        if parsed.raw_user is not None or parsed.raw_password is not None
        else BAD_PORT
        if parsed.explicit_port == 0
        else SINGLE_LABEL
        if not is_ip and "." not in host
        else UNSENDABLE_CHARS
        if _UNSENDABLE.search(url)
        else None
    )
    if problem is not None:
        return ParsedUrl(None, host, port, domain, problem)
    normalised = URL.build(
        scheme=parsed.scheme,
        host=f"[{host}]" if ":" in host else host,
        port=port,
        path=parsed.raw_path,
        query_string=parsed.raw_query_string,
        fragment=parsed.raw_fragment,
        encoded=True,
    )
    return ParsedUrl(str(normalised), host, port, domain, None)


def _canonical_host(raw_host: str) -> tuple[str, bool] | None:
    """(host, is an IP literal) for a host yarl has encoded, or None when it names nothing.

    One trailing dot (a fully qualified name) is dropped; an IPv4-mapped IPv6 address keeps its
    dotted tail (RFC 5952 §5), which Python's ``ipaddress`` writes only from 3.13 on.
    """
    ip = _ip(raw_host)
    if ip is None:
        name = raw_host[:-1] if raw_host.endswith(".") else raw_host
        return (name, False) if len(name) <= 253 and _HOST_NAME.fullmatch(name) else None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:  # fe80::1%eth0: an interface of this machine, not a site
            return None
        if ip.ipv4_mapped is not None:
            return f"::ffff:{ip.ipv4_mapped}", True
    return ip.compressed, True


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Only a name ending in a digit or holding a colon can be an IP (yarl's test too): parsing
    # every name as one first would double the cost of a distinct host.
    if not (host[-1:].isdigit() or ":" in host):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_host(name: str) -> str | None:
    """The spelling :func:`parse_url` gives the host ``name`` (``BBC.co.uk.`` -> ``bbc.co.uk``).

    For allow/block lists. None unless ``name`` is a host alone (no scheme, port, path, user).
    """
    try:  # yarl's host builder refuses what is not a host (``/``, ``@``, ``:`` outside an IPv6)
        raw = URL.build(scheme="http", host=name.removeprefix("[").removesuffix("]")).raw_host
    except ValueError:
        return None
    canonical = _canonical_host(raw) if raw else None
    return canonical[0] if canonical else None


@functools.lru_cache(maxsize=1)
def _extractor() -> Any:  # tldextract is imported lazily: it is slow to import
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled list, no network


@functools.lru_cache(maxsize=1 << 20)
def registrable_domain(host: str) -> str:
    """``a.b.example.co.uk`` -> ``example.co.uk`` by the Public Suffix List (tldextract, offline).

    An IP literal, a public suffix itself and a single-label name are their own domain; a name
    under no listed suffix takes the list's default rule ``*`` (``a.b.internal`` -> ``b.internal``).
    """
    if _ip(host) is not None:
        return host
    parts = _extractor()(host)
    if parts.top_domain_under_public_suffix:
        return parts.top_domain_under_public_suffix
    return host if parts.suffix else ".".join(host.split(".")[-2:])


@functools.lru_cache(maxsize=1 << 20)
def parse_head(head: str) -> ParsedUrl:
    """:func:`parse_url` of a URL's head (:data:`SITE_PATTERN`), cached.

    Its host, domain and problem are those of every URL with that head, except that the rest of
    a URL can add the ``unsendable`` problem.
    """
    return parse_url(head)


def head_sql(column: str) -> str:
    """DuckDB SQL for the head of each URL in ``column`` (an SQL expression: quote names first).

    What :func:`url_sites` extracts in Arrow, with the same RE2 patterns, so a query can count
    rows per head and :func:`parse_head` then parses each distinct head once.
    """
    cleaned = f"regexp_replace({column}, {literal(REMOVED_CHARS)}, '', 'g')"
    return f"regexp_extract({cleaned}, {literal(SITE_PATTERN)}, 1)"


def url_sites(urls: pa.Array | pa.ChunkedArray) -> pa.Table:
    """``host``, ``domain`` and ``problem`` per URL (null for a null URL), as :func:`parse_url` gives.

    Parses each distinct head (:data:`SITE_PATTERN`) once, cached across calls; the rest of a URL
    can only add the ``unsendable`` problem.
    """
    if isinstance(urls, pa.ChunkedArray):
        urls = urls.combine_chunks()
    unsendable = pc.fill_null(pc.match_substring_regex(urls, UNSENDABLE), False)
    # Tab/CR/LF are rare (and unsendable): skip a pass over the column when no row has any.
    cleaned = pc.replace_substring_regex(urls, REMOVED_CHARS, "") if pc.any(unsendable).as_py() else urls
    encoded = pc.dictionary_encode(pc.struct_field(pc.extract_regex(cleaned, SITE_PATTERN), 0))
    parsed = [parse_head(head) for head in encoded.dictionary.to_pylist()]
    keys = ("host", "domain", "problem")
    sites = pa.table({k: pa.array([getattr(p, k) for p in parsed], pa.string()) for k in keys})
    sites = sites.take(encoded.indices)
    problem = sites.column("problem")
    problem = pc.if_else(pc.and_(pc.is_null(problem), unsendable), UNSENDABLE_CHARS, problem)
    return sites.set_column(2, "problem", problem)


def url_problems(urls: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`parse_url`'s ``problem`` per URL: null where fetchable (or the URL is null).

    Rows matching :data:`PLAIN_FETCHABLE` skip the parser, which then sees only the rest.
    """
    if isinstance(urls, pa.ChunkedArray):
        urls = urls.combine_chunks()
    plain = pc.fill_null(pc.match_substring_regex(urls, PLAIN_FETCHABLE), True)
    problems = pa.nulls(len(urls), pa.string())
    if pc.all(plain).as_py():
        return problems
    rest = pc.invert(plain)
    return pc.replace_with_mask(
        problems, rest, url_sites(urls.filter(rest)).column("problem").combine_chunks()
    )


def normalized_urls(urls: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The normalised URL of each row (null where not fetchable), each distinct URL parsed once."""
    encoded = pc.dictionary_encode(urls.combine_chunks() if isinstance(urls, pa.ChunkedArray) else urls)
    return pa.array([parse_url(u).url for u in encoded.dictionary.to_pylist()], pa.string()).take(
        encoded.indices
    )


def register_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``t2i_url_problem(url)`` (:func:`url_problems`) to the DuckDB connection ``con``.

    A vectorised Arrow UDF, NULL for a fetchable or NULL URL, so an SQL rule (validity's, pushed
    into the engine's query) runs this parser. Registering again is a no-op.
    """
    # A cursor shares its connection's functions, and DuckDB refuses to create one twice.
    if not con.execute(
        "SELECT 1 FROM duckdb_functions() WHERE function_name = ?", [URL_PROBLEM_SQL]
    ).fetchall():
        con.create_function(
            URL_PROBLEM_SQL,
            url_problems,
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",  # NULL is an answer (fetchable), not only an input
        )
