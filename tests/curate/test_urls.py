"""The one URL parser: right values for the cases that broke, and every user of it agreeing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from curate_rows import laion_table
from hypothesis import given
from hypothesis import strategies as st

from t2iscope import fileio
from t2iscope.curate import urls
from t2iscope.curate.download import DownloadOptions, download_run, fetch_urls
from t2iscope.curate.operators import METADATA, OPERATORS, StageContext, load_all
from t2iscope.curate.readers import connect
from t2iscope.curate.recipe import recipe_from_dict
from t2iscope.curate.run import run_recipe
from t2iscope.errors import ConfigError
from t2iscope.evaluate.audits import AUDITS
from t2iscope.evaluate.context import AuditContext, Inputs

load_all()

# (URL, normalised URL or None when not fetchable, host, registrable domain, problem)
CASES = [
    # issue 16.4: a non-ASCII path is fetched percent-encoded (UTF-8), like its encoded twin
    ("http://i.ex.com/café.jpg", "http://i.ex.com/caf%C3%A9.jpg", "i.ex.com", "ex.com", None),
    ("http://i.ex.com/caf%c3%a9.jpg", "http://i.ex.com/caf%C3%A9.jpg", "i.ex.com", "ex.com", None),
    # IPv6 literals are fetchable; the host drops the brackets, an IP is its own domain
    ("http://[2001:db8::1]/a.jpg", "http://[2001:db8::1]/a.jpg", "2001:db8::1", "2001:db8::1", None),
    (
        "http://[::FFFF:10.0.0.1]/a.jpg",
        "http://[::ffff:10.0.0.1]/a.jpg",
        "::ffff:10.0.0.1",
        "::ffff:10.0.0.1",
        None,
    ),
    ("http://[2001:db8::1", None, None, None, urls.MALFORMED),
    # IDNA (UTS-46) hosts: one spelling whatever the case or the script it was written in
    (
        "http://Bücher.example/x.jpg",
        "http://xn--bcher-kva.example/x.jpg",
        "xn--bcher-kva.example",
        "xn--bcher-kva.example",
        None,
    ),
    ("http://xn--bcher-kva.de/", "http://xn--bcher-kva.de/", "xn--bcher-kva.de", "xn--bcher-kva.de", None),
    (
        "HTTPS://IMG.Example.CO.UK/A.JPG",
        "https://img.example.co.uk/A.JPG",
        "img.example.co.uk",
        "example.co.uk",
        None,
    ),
    # ports: a default one is dropped, another kept; 0 and out of range are refused
    ("http://ex.com:80/a.jpg", "http://ex.com/a.jpg", "ex.com", "ex.com", None),
    ("https://ex.com:443/a.jpg", "https://ex.com/a.jpg", "ex.com", "ex.com", None),
    ("http://ex.com:8080/a.jpg", "http://ex.com:8080/a.jpg", "ex.com", "ex.com", None),
    ("http://ex.com:0/a.jpg", None, "ex.com", "ex.com", urls.BAD_PORT),
    ("http://ex.com:99999/a.jpg", None, None, None, urls.MALFORMED),
    # credentials: urllib would read "user:pw@host" as host:port; the host is still counted
    ("https://user:pw@i.ex.com/a.jpg", None, "i.ex.com", "ex.com", urls.USERINFO),
    ("http://ex.com./a.jpg", "http://ex.com/a.jpg", "ex.com", "ex.com", None),
    # spaces: http.client refuses to send them; the site is still known
    ("https://b.example.co.uk/x y.jpg", None, "b.example.co.uk", "example.co.uk", urls.UNSENDABLE_CHARS),
    (" http://ex.com/a.jpg", None, "ex.com", "ex.com", urls.UNSENDABLE_CHARS),
    ("http://exa mple.com/a.jpg", None, None, None, urls.BAD_HOST),
    # not http(s): refused; a URL without a scheme still has a host to be counted under
    ("javascript:alert(1)", None, None, None, urls.NO_HOST),
    ("ftp://a.ex.com/2.jpg", None, "a.ex.com", "ex.com", urls.NOT_HTTP),
    ("a.ex.com/3.jpg", None, "a.ex.com", "ex.com", urls.NOT_HTTP),
    ("//x.ex.com/4.jpg", None, "x.ex.com", "ex.com", urls.NOT_HTTP),
    ("not a url", None, None, None, urls.BAD_HOST),
    ("", None, None, None, urls.NO_HOST),
    ("https://localhost/5.jpg", None, "localhost", "localhost", urls.SINGLE_LABEL),
    ("http://a..ex.com/x.jpg", None, None, None, urls.BAD_HOST),
    ("http://[fe80::1%25eth0]/x.jpg", None, None, None, urls.BAD_HOST),
    # names real sites use, and normalisations RFC 3986 §6 calls equivalent
    (
        "http://my_shop-.blogspot.com/a.jpg",
        "http://my_shop-.blogspot.com/a.jpg",
        "my_shop-.blogspot.com",
        "blogspot.com",
        None,
    ),
    (
        "http://a.ex.com/x/../%7Ey.jpg?q=a+b&c=%2B#f",
        "http://a.ex.com/~y.jpg?q=a+b&c=%2B#f",
        "a.ex.com",
        "ex.com",
        None,
    ),
    (
        "http://a.b.internal/x.jpg",
        "http://a.b.internal/x.jpg",
        "a.b.internal",
        "b.internal",
        None,
    ),  # PSL rule *
    # a host that ends in a number is an IPv4 address as browsers and inet_aton read it (WHATWG URL
    # §3.5: decimal, 0x hex and 0 octal parts, the last filling the bytes left), written as a dotted
    # quad, its own domain; or, when a part is out of range or not a number, no host at all
    ("http://127.1/a.jpg", "http://127.0.0.1/a.jpg", "127.0.0.1", "127.0.0.1", None),
    ("http://0x7f.1/a.jpg", "http://127.0.0.1/a.jpg", "127.0.0.1", "127.0.0.1", None),
    ("http://0177.0.0.1/a.jpg", "http://127.0.0.1/a.jpg", "127.0.0.1", "127.0.0.1", None),
    ("http://0X7F.0.0.1./a.jpg", "http://127.0.0.1/a.jpg", "127.0.0.1", "127.0.0.1", None),
    ("http://2130706433/a.jpg", "http://127.0.0.1/a.jpg", "127.0.0.1", "127.0.0.1", None),
    ("http://10.0x10203/a.jpg", "http://10.1.2.3/a.jpg", "10.1.2.3", "10.1.2.3", None),
    ("ftp://0x7f.1/a.jpg", None, "127.0.0.1", "127.0.0.1", urls.NOT_HTTP),
    ("http://1.2.3.4.5/a.jpg", None, None, None, urls.BAD_HOST),
    ("http://256.1.1.1/a.jpg", None, None, None, urls.BAD_HOST),
    ("http://1.2.3.09/a.jpg", None, None, None, urls.BAD_HOST),  # 0 + a non-octal digit
    ("http://1.16777216/a.jpg", None, None, None, urls.BAD_HOST),  # the last part fills 3 bytes
    ("http://4294967296/a.jpg", None, None, None, urls.BAD_HOST),
    ("http://img.1/a.jpg", None, None, None, urls.BAD_HOST),
    ("http://cdn.0x1f/a.jpg", None, None, None, urls.BAD_HOST),
    ("http://a.0x1f.com/a.jpg", "http://a.0x1f.com/a.jpg", "a.0x1f.com", "0x1f.com", None),  # a name
]


@pytest.mark.parametrize(("url", "fetch", "host", "domain", "problem"), CASES)
def test_parse_url(
    url: str, fetch: str | None, host: str | None, domain: str | None, problem: str | None
) -> None:
    parsed = urls.parse_url(url)
    assert (parsed.url, parsed.host, parsed.domain, parsed.problem) == (fetch, host, domain, problem)
    assert parsed.fetchable == (problem is None)


def test_ports_and_registrable_domains() -> None:
    assert urls.parse_url("http://ex.com:8080/a.jpg").port == 8080
    assert urls.parse_url("https://ex.com:443/a.jpg").port is None
    assert urls.registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert urls.registrable_domain("10.0.0.1") == "10.0.0.1"
    assert urls.registrable_domain("co.uk") == "co.uk"


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("BBC.co.uk.", "bbc.co.uk"),
        ("Bücher.de", "xn--bcher-kva.de"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("bbc.co.uk/news", None),
        ("user@bbc.co.uk", None),
        ("bbc.co.uk:80", None),
        ("a b", None),
        ("127.1", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1.", "127.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
        ("256.1.1.1", None),
        ("1.2.3.4.5", None),
    ],
)
def test_normalize_host(entry: str, host: str | None) -> None:
    assert urls.normalize_host(entry) == host


@pytest.mark.parametrize(
    ("host", "ipv4"),
    [  # the WHATWG URL Standard's IPv4 parser (its examples and web-platform-tests' edge cases)
        ("192.168.0.1", "192.168.0.1"),
        ("0xC0.0250.1", "192.168.0.1"),
        ("3232235521", "192.168.0.1"),
        ("192.0x00A80001", "192.168.0.1"),
        ("0x", "0.0.0.0"),
        ("0", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("0xffffffff", "255.255.255.255"),
        ("037777777777", "255.255.255.255"),
        ("1.2.65535", "1.2.255.255"),
        ("1.2.65536", None),
        ("1.2.3.256", None),
        ("1.2.3.4.5", None),
        ("08", None),
        ("0xg", None),
        ("1_0.1", None),  # int() would take "1_0"; the standard does not
        ("", None),
        ("1..2", None),
        ("0x" + "0" * 5000 + "7f000001", "127.0.0.1"),  # leading zeros are allowed
        ("1" * 5000, None),  # out of range, not a crash (int() refuses over 4300 digits)
    ],
)
def test_parse_ipv4(host: str, ipv4: str | None) -> None:
    assert urls.parse_ipv4(host) == ipv4


def test_numeric_hosts_never_skip_the_parser(tmp_path: Path) -> None:
    """PLAIN_FETCHABLE let ``http://256.1.1.1/...`` through validity as fetchable (in Arrow and in
    the DuckDB pushdown) and blocklists missed ``127.1``: a curation run agrees with parse_url."""
    values = ["http://256.1.1.1/a.jpg", "http://1.2.3.4.5/a.jpg", "http://127.1/a.jpg", "http://a.com/b.jpg"]
    assert urls.url_problems(pa.array(values)).to_pylist() == [urls.BAD_HOST, urls.BAD_HOST, None, None]
    pq.write_table(_table(values), tmp_path / "in.parquet")
    stages = [{"validity": {}}, {"domain": {"drop": ["127.0.0.1"]}}]
    recipe = recipe_from_dict({"name": "n", "stages": stages}, "n.yaml")
    run_recipe(recipe, str(tmp_path / "in.parquet"), tmp_path / "run", progress=False)
    dropped = pq.read_table(tmp_path / "run" / "dropped").to_pylist()
    reasons = {r["URL"]: r["reason"] for r in dropped}
    assert reasons == {values[0]: "url_invalid", values[1]: "url_invalid", values[2]: "domain_blocked"}


def _table(values: list[str | None]) -> pa.Table:
    return laion_table(len(values), URL=values)


def test_domain_stage_validity_audit_and_download_agree(tmp_path: Path) -> None:
    values = [c[0] for c in CASES] + [None]
    table = _table(values)
    ctx = StageContext("t.parquet", METADATA)
    stage = OPERATORS.get("domain").fn(table, ctx)
    validity = OPERATORS.get("validity").fn(table, ctx).reason.to_pylist()
    parsed = [urls.parse_url(u) if u is not None else None for u in values]
    assert stage.columns["host"].to_pylist() == [p.host if p else None for p in parsed]
    assert stage.columns["domain"].to_pylist() == [p.domain if p else None for p in parsed]
    assert validity == [("url_invalid" if not p.fetchable else None) if p else "url_missing" for p in parsed]
    assert fetch_urls(table.column("URL"), None).to_pylist() == [
        p.url or u if p else None for p, u in zip(parsed, values, strict=True)
    ]
    fileio.write_parquet(tmp_path / "d.parquet", table.select(["URL"]))
    audit = AUDITS.get("domains").fn(AuditContext(Inputs(data=(tmp_path / "d.parquet",))), top=100)
    for level in ("host", "domain"):
        shares = audit[(audit["metric"] == "share") & (audit["level"] == level)]
        want = pc.value_counts(pa.array([getattr(p, level) for p in parsed if p and p.host]))
        assert dict(zip(shares["key"], shares["value"] * shares["n"], strict=True)) == pytest.approx(
            {v["values"]: v["counts"] for v in want.to_pylist()}
        )


def test_sql_functions_run_the_parser() -> None:
    """In DuckDB: validity's rule calls the parser (readers.configure registers it), and the
    domains audit counts rows per head_sql for parse_head."""
    con = connect(threads=2)
    values = [c[0] for c in CASES] + [None]
    con.register("t", pa.table({"u": values}))
    sql = f"SELECT {urls.URL_PROBLEM_SQL}(u), {urls.head_sql('u')} FROM t"
    rows = con.execute(sql).fetchall()
    got = [(problem, urls.parse_head(head).host if head is not None else None) for problem, head in rows]
    parsed = [urls.parse_url(u) if u is not None else None for u in values]
    assert got == [(p.problem, p.host) if p else (None, None) for p in parsed]
    urls.register_duckdb(con.cursor())  # registering again on the same database is a no-op


def test_block_and_allow_lists_are_spelled_like_hosts() -> None:
    table = _table(["http://news.BBC.co.uk/a.jpg", "http://xn--bcher-kva.de/b.jpg", "http://other.org/c.jpg"])
    ctx = StageContext("t.parquet", METADATA)
    fn = OPERATORS.get("domain").fn
    assert fn(table, ctx, drop=["BBC.CO.UK."]).reason.to_pylist() == ["domain_blocked", None, None]
    kept = fn(table, ctx, keep=["Bücher.de", "bbc.co.uk"]).reason.to_pylist()
    assert kept == [None, None, "domain_not_kept"]
    with pytest.raises(ConfigError, match=r"stage 'domain': drop: 'bbc\.co\.uk/news' is not a domain name"):
        fn(table, ctx, drop=["bbc.co.uk/news"])


# fmt: off
URL_PIECES = st.sampled_from([
    "http", "https", "HTTP", "ftp", ":", "//", "/", "?", "#", "@", "[", "]", ":8080", ":0", ":x", "::1",
    "a.com", "B.Example.co.uk", "Bücher", ".", "%", "%41", "é", "localhost", "10.0.0.1", "user:pw", "\\",
    "x.jpg", "☃", "．", "-", "_", " ", "\t", "\n", "\x00", "\u200b", "127.1", "0x7f", "0177", "256", ".09",
])
# fmt: on


@given(st.lists(st.lists(URL_PIECES, max_size=10).map("".join), min_size=1, max_size=20))
def test_column_helpers_match_parse_url(values: list[str]) -> None:
    """url_sites parses each distinct head once: it must give what parse_url gives every row."""
    sites = urls.url_sites(pa.array([*values, None], pa.string())).to_pylist()
    assert sites[-1] == {"host": None, "domain": None, "problem": None}
    for value, site in zip(values, sites, strict=False):
        parsed = urls.parse_url(value)
        assert site == {"host": parsed.host, "domain": parsed.domain, "problem": parsed.problem}, value
    problems = urls.url_problems(pa.chunked_array([pa.array([*values, None], pa.string())])).to_pylist()
    assert problems == [s["problem"] for s in sites]
    normalised = urls.normalized_urls(pa.chunked_array([pa.array(values, pa.string())])).to_pylist()
    assert normalised == [urls.parse_url(v).url for v in values]


@given(st.from_regex(urls.PLAIN_FETCHABLE, fullmatch=True))
def test_plain_urls_skip_the_parser_safely(url: str) -> None:
    """url_problems passes PLAIN_FETCHABLE matches without parsing them: each must be fetchable."""
    parsed = urls.parse_url(url)
    assert parsed.fetchable, (url, parsed.problem)
    assert urls.url_problems(pa.array([url, "ftp://a.com/x"])).to_pylist() == [None, urls.NOT_HTTP]


def test_world_urls_are_already_normal(world_dir: Path) -> None:
    """On the synthetic world nothing changes: hosts and domains are its truth, URLs go as written."""
    meta = pq.read_table(world_dir / "metadata", columns=["URL", "hash"])
    truth = pq.read_table(world_dir / "truth", columns=["hash", "host", "domain"])
    rows = meta.join(truth, "hash").combine_chunks()
    sites = urls.url_sites(rows.column("URL"))
    assert sites.column("host").to_pylist() == rows.column("host").to_pylist()
    assert sites.column("domain").to_pylist() == rows.column("domain").to_pylist()
    assert urls.normalized_urls(rows.column("URL")).to_pylist() == rows.column("URL").to_pylist()


def test_non_ascii_url_downloads(world_dir: Path, world_server: object, tmp_path: Path) -> None:
    """Issue 16.4: ``.../café/<key>.jpg`` passed validity, then img2dataset failed on it ('ascii'
    codec); handed over normalised it downloads like its percent-encoded twin."""
    recipe = recipe_from_dict({"name": "one", "stages": [{"unsafe": {"max_score": 0.5}}]}, "one.yaml")
    run_recipe(recipe, str(world_dir), tmp_path / "run", progress=False)
    truth = pq.read_table(world_dir / "truth", columns=["hash", "http_failure", "noai"]).to_pylist()
    fine = {r["hash"] for r in truth if r["http_failure"] == "ok" and not r["noai"]}
    parts = sorted((tmp_path / "run" / "kept").glob("part-*.parquet"))
    kept = pa.concat_tables([pq.read_table(p) for p in parts])
    kept = kept.filter(pc.is_in(kept.column("hash"), pa.array(sorted(fine), pa.int64()))).slice(0, 4)
    twins = pc.replace_substring_regex(kept.column("URL"), r"/([0-9a-f]{16}\.jpg)$", r"/café/\1")
    for p in parts[1:]:
        p.unlink()
    pq.write_table(kept.set_column(kept.column_names.index("URL"), "URL", twins), parts[0])
    options = DownloadOptions(timeout=5, threads=4, via=world_server.url)  # type: ignore[attr-defined]
    download_run(tmp_path / "run", tmp_path / "shards", options)
    status = pq.read_table(tmp_path / "shards" / "status.parquet").to_pylist()
    assert [(s["status"], s["error_message"]) for s in status] == [("success", None)] * 4
    assert all("café" in s["URL"] for s in status)  # the row keeps its URL as the input wrote it
