"""The one URL parser: what a URL fetches, its host and its registrable domain.

Validity (is it a fetchable http(s) URL?), download (the ASCII URL handed to img2dataset), the
``domain`` stage with its allow/block lists and the domains audit all read URLs through
:func:`parse_url`, so they agree on one spelling of each site:

- parsing and normalising is yarl's (``URL(str)``): scheme lower-cased, IPv6 literals checked,
  ports converted, default ports dropped and dot segments removed (RFC 3986 §6.2.2-6.2.3),
  non-ASCII paths, queries and fragments percent-encoded as UTF-8 (RFC 3987 §3.1), leading
  C0/space stripped and tab/CR/LF removed as WHATWG parsers do;
- a non-ASCII host is encoded by yarl with the ``idna`` package's UTS-46 mapping (falling back to
  IDNA 2003 where IDNA 2008 refuses a label), an IPv6 literal is written as RFC 5952 recommends,
  a host that ends in a number is read by the WHATWG URL Standard's IPv4 parser, as browsers and
  ``inet_aton`` read it (``127.1``, ``0x7f.0.0.1`` -> ``127.0.0.1``; ``256.1.1.1`` is no host);
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
# at most 8 of them, keep such a host within DNS's 253; longer hosts take the parser's path. The
# last label starts with a letter, so the host does not "end in a number" (see _ends_in_number):
# numeric hosts (``127.1``, ``0x7f.1``, ``256.1.1.1``) take the parser's path too.
PLAIN_FETCHABLE = r"^https?://[a-z0-9_-]{1,30}(?:\.[a-z0-9_-]{1,30}){0,6}\.[a-z][a-z0-9_-]{0,29}(?:/[!-~]*)?$"

# Why a URL is not fetchable, first that applies (parse_url's order).
MALFORMED = "malformed"  # yarl refuses it: unbalanced IPv6 brackets, a port that is no number, ...
NO_HOST = "no_host"  # nothing that names a host (``javascript:...``, ``not a url``)
# a host that is no DNS name or IP literal (``a..com``, ``a!b.com``), or that ends in a number
# but is no IPv4 address (``256.1.1.1``, ``1.2.3.4.5``, ``a.1``, ``1.2.3.09``): WHATWG URL §3.5
BAD_HOST = "bad_host"
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

    One trailing dot (a fully qualified name) is dropped. A host that ends in a number is an IPv4
    address in any of the spellings ``inet_aton`` and browsers accept (WHATWG URL §3.5: ``127.1``,
    ``0x7f.0.0.1``, ``0177.0.0.1``, ``2130706433`` are all ``127.0.0.1``) and is written as a
    dotted quad, or names nothing (``256.1.1.1``, ``1.2.3.4.5``). An IPv4-mapped IPv6 address keeps
    its dotted tail (RFC 5952 §5), which Python's ``ipaddress`` writes only from 3.13 on.
    """
    if ":" in raw_host:
        try:
            ip = ipaddress.IPv6Address(raw_host)
        except ValueError:
            return None
        if ip.scope_id is not None:  # fe80::1%eth0: an interface of this machine, not a site
            return None
        if ip.ipv4_mapped is not None:
            return f"::ffff:{ip.ipv4_mapped}", True
        return ip.compressed, True
    if _ends_in_number(raw_host):
        ipv4 = parse_ipv4(raw_host)
        return (ipv4, True) if ipv4 is not None else None
    name = raw_host[:-1] if raw_host.endswith(".") else raw_host
    return (name, False) if len(name) <= 253 and _HOST_NAME.fullmatch(name) else None


# An IPv4 part as WHATWG URL §3.5's "IPv4 number parser" reads it: 0x/0X + hex (``0x`` alone is 0),
# 0 + octal, or decimal. Checked by pattern first: int() would also take "1_0", " 1" or "٣".
_IPV4_NUMBER = re.compile(r"0[xX](?P<hex>[0-9a-fA-F]*)|0(?P<oct>[0-7]*)|(?P<dec>[1-9][0-9]*)")


def _ipv4_number(part: str) -> int | None:
    match = _IPV4_NUMBER.fullmatch(part)
    if match is None:
        return None
    radix, digits = (16, match["hex"]) if match["hex"] is not None else (8, match["oct"])
    if digits is None:
        radix, digits = 10, match["dec"]
    digits = digits.lstrip("0") or "0"
    # More than 11 digits is 2**32 or more in any radix: out of range, and int() refuses over 4300.
    return 1 << 32 if len(digits) > 11 else int(digits, radix)


def _ends_in_number(host: str) -> bool:
    """WHATWG URL §3.5's "ends in a number": the last label (after one trailing dot) is all digits
    or a 0x-hex number. Such a host is an IPv4 address or invalid, never a DNS name."""
    last = host[:-1].rpartition(".")[2] if host.endswith(".") else host.rpartition(".")[2]
    return bool(last) and ((last.isascii() and last.isdigit()) or _ipv4_number(last) is not None)


def parse_ipv4(host: str) -> str | None:
    """The dotted quad of a host WHATWG URL §3.5's IPv4 parser accepts, else None.

    One to four parts, each decimal, ``0x`` hex or ``0`` octal; every part but the last is one
    byte and the last fills the bytes left (``127.1`` -> ``127.0.0.1``, ``0x7f000001`` ->
    ``127.0.0.1``); a part out of range makes the host invalid (``256.1.1.1``, ``1.16777216``).
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        number = _ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return str(ipaddress.IPv4Address(value))


def normalize_host(name: str) -> str | None:
    """The spelling :func:`parse_url` gives the host ``name`` (``BBC.co.uk.`` -> ``bbc.co.uk``,
    ``127.1`` -> ``127.0.0.1``).

    For allow/block lists. None unless ``name`` is a host alone (no scheme, port, path, user).
    """
    try:  # yarl's host builder refuses what is not a host (``/``, ``@``, ``:`` outside an IPv6)
        raw = URL.build(scheme="http", host=name.removeprefix("[").removesuffix("]")).raw_host
    except ValueError:
        return None
    canonical = _canonical_host(raw) if raw else None
    return canonical[0] if canonical else None


def is_ip_host(host: str) -> bool:
    """Whether ``host`` (as :func:`parse_url` spells hosts) is an IP address rather than a name."""
    return ":" in host or _ends_in_number(host)


def is_public_suffix(host: str) -> bool:
    """Whether the name ``host`` is itself a public suffix (``com``, ``co.uk``, ``xn--p1ai``):
    a list entry for it would match every site under a whole TLD. By the bundled ICANN list."""
    parts = _extractor()(host)
    return bool(parts.suffix) and not parts.domain


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
    if is_ip_host(host):
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
