"""Every input format img2dataset reads, every schema the README claims, a recipe's ``columns:``.

Files are written here in each shape (issue 16, fault 5): a ``.json`` holding a JSON array read as
"Malformed JSON", LAION-Aesthetics' ``aesthetic`` column was refused by sd-improved-aesthetics, and
renamed columns (DataComp's, COYO's) failed the all-SQL parquet path.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import mmh3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from t2iscope.cli import main
from t2iscope.curate.schema import LAION_COLUMNS

TEXT_FORMATS = ("txt", "csv", "tsv", "json", "jsonl")


def write(table: pa.Table, path: Path) -> Path:
    """``table`` as the file ``path`` names: parquet, csv, tsv, json (an array), jsonl, or txt
    (its url column, one per line), each text format gzip-compressed when the name ends in .gz."""
    name = path.name.removesuffix(".gz")
    fmt = name.rsplit(".", 1)[1]
    rows = table.to_pylist()
    if fmt == "parquet":
        pq.write_table(table, path)
        return path
    if fmt == "txt":
        text = "".join(f"{row['url']}\n" for row in rows)
    elif fmt in ("csv", "tsv"):
        frame = table.to_pandas()
        for col in frame.columns:  # nested values (DataComp's face_bboxes) as JSON text
            if pa.types.is_list(table.schema.field(col).type):
                frame[col] = [json.dumps(v) for v in table.column(col).to_pylist()]
        text = frame.to_csv(index=False, sep="\t" if fmt == "tsv" else ",")
    elif fmt == "json" and not name.endswith(".lines.json"):
        text = json.dumps(rows, indent=1, ensure_ascii=False)  # a JSON array, as img2dataset reads .json
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def curate(
    tmp_path: Path, recipe: str | dict[str, Any], spec: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, dict[str, Any]]:
    """``t2iscope curate run`` on ``spec``: exit code, the error line (or ''), stats.json."""
    if isinstance(recipe, dict):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        recipe = str(path)
    out = tmp_path / "out"
    code = main(["curate", "run", recipe, "--input", str(spec), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    lines = [e for e in err.splitlines() if e.startswith("t2iscope: error:")]
    assert "Traceback" not in err and len(lines) == (code != 0), err
    stats = json.loads((out / "stats.json").read_text()) if code == 0 else {}
    return code, lines[0] if lines else "", stats


def kept(tmp_path: Path) -> pa.Table:
    return pq.read_table(tmp_path / "out" / "kept")


def dropped(tmp_path: Path) -> dict[str, tuple[str, str]]:
    table = pq.read_table(tmp_path / "out" / "dropped")
    return {
        u: (s, r)
        for u, s, r in zip(*(table.column(c).to_pylist() for c in ("URL", "stage", "reason")), strict=True)
    }


def by_stage(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {s["stage"]: s["dropped"] for s in stats["stages"] if s["dropped"]}


# -- formats ----------------------------------------------------------------------------------------

# img2dataset's own names (url, caption), renamed on the way in; text a csv or a txt line would split.
ROWS = pa.table(
    {
        "url": [
            "https://a.example.com/0.jpg",
            "https://a.example.com/1,2.jpg",  # a comma: one txt line is one URL
            "https://b.example.com/2.jpg",
            "https://b.example.com/3.jpg",
            "javascript:alert(1)",
            "https://c.example.com/5.jpg",
            "https://a.example.com/0.jpg",
            "https://d.example.com/7.jpg",
        ],
        "caption": [
            "a red dog, on the grass",
            'a "quoted" cat',
            "too small",
            "unsafe",
            "not a URL",
            "café ☕ au lait",
            "the same URL again",
            "a blue cup",
        ],
        "width": [640, 800, 200, 1000, 700, 512, 640, 300],
        "height": [480, 600, 900, 1000, 700, 512, 480, 1200],
        "punsafe": [0.1, 0.2, 0.1, 0.9, 0.1, 0.49, 0.1, 0.0],
    }
)
RECIPE = {"stages": [{"resolution": {"min_side": 300}}, "unsafe", {"dedup": {"by": "url"}}]}
KEPT = [0, 1, 5, 7]
DROPPED = {
    "https://b.example.com/2.jpg": ("resolution", "min_side<300"),
    "https://b.example.com/3.jpg": ("unsafe", "punsafe>=0.5"),
    "javascript:alert(1)": ("validity", "url_invalid"),
}
NAMES = [*(f"rows.{f}" for f in ("parquet", *TEXT_FORMATS)), "rows.lines.json"]
NAMES += [f"{n}.gz" for n in NAMES if not n.endswith("parquet")]


@pytest.mark.parametrize("name", [n for n in NAMES if ".txt" not in n])
def test_every_format_gives_the_same_kept_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, error, stats = curate(tmp_path, RECIPE, write(ROWS, tmp_path / name), capsys)
    assert (code, error) == (0, "")
    rows = kept(tmp_path).select(["URL", "TEXT", "WIDTH", "HEIGHT"]).to_pylist()
    want = (
        ROWS.take(KEPT).rename_columns(["URL", "TEXT", "WIDTH", "HEIGHT", "punsafe"]).drop_columns("punsafe")
    )
    assert rows == want.to_pylist()
    assert dropped(tmp_path) == DROPPED | {"https://a.example.com/0.jpg": ("dedup", "duplicate_url")}
    assert (stats["rows_in"], stats["rows_out"]) == (8, 4)


@pytest.mark.parametrize("name", ["urls.txt", "urls.txt.gz"])
def test_a_txt_line_is_one_url_without_caption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """As img2dataset reads txt: no header, no caption. Captionless rows are counted, not kept."""
    code, error, stats = curate(
        tmp_path, {"stages": [{"dedup": {"by": "url"}}]}, write(ROWS, tmp_path / name), capsys
    )
    assert (code, error) == (0, "")
    assert kept(tmp_path).num_rows == 0 and stats["rows_in"] == 8
    assert by_stage(stats) == {"validity": {"url_invalid": 1, "text_missing": 7}}
    rows = pq.read_table(tmp_path / "out" / "dropped").to_pylist()
    assert [r["URL"] for r in rows] == ROWS.column("url").to_pylist()  # the comma did not split a line
    assert {r["TEXT"] for r in rows} == {None}


def test_a_url_list_is_kept_when_validity_does_not_require_captions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """img2dataset downloads a txt list as it is: ``require_text: false`` keeps its rows."""
    recipe = {"stages": [{"validity": {"require_text": False}}, {"dedup": {"by": "url"}}]}
    code, error, stats = curate(tmp_path, recipe, write(ROWS, tmp_path / "urls.txt"), capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == {"validity": {"url_invalid": 1}, "dedup": {"duplicate_url": 1}}
    assert kept(tmp_path).num_rows == 6 and set(kept(tmp_path).column("TEXT").to_pylist()) == {None}


def test_a_folder_of_several_formats_is_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stray README.txt or stats.json beside parquet shards would be read as rows."""
    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(ROWS, folder / "part-0.parquet")
    pq.write_table(ROWS, folder / "part-1.parquet")
    (folder / "README.txt").write_text("https://not-a-row.example.com/\n")
    code, error, _ = curate(tmp_path, {"stages": []}, folder, capsys)
    assert code == 1
    assert error == (
        f"t2iscope: error: {folder}: holds input files of several formats (2 parquet, 1 txt); "
        f"name one with a glob such as '{folder}/*.parquet'"
    )
    code, error, stats = curate(tmp_path, {"stages": []}, folder / "*.parquet", capsys)
    assert (code, error, stats["rows_in"]) == (0, "", 16)


def test_a_json_array_of_laion_rows_reads_like_its_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: ``--input x.json`` holding a JSON array, LAION's own names."""
    table = laion_shaped()
    path = tmp_path / "x.json"
    path.write_text(json.dumps(table.to_pylist()))
    code, _, stats = curate(tmp_path, "sd-improved-aesthetics", path, capsys)
    pq.write_table(table, tmp_path / "x.parquet")
    again = tmp_path / "again"
    again.mkdir()
    code2, _, stats2 = curate(again, "sd-improved-aesthetics", tmp_path / "x.parquet", capsys)
    assert code == code2 == 0 and stats["rows_out"] == stats2["rows_out"] > 0
    assert by_stage(stats) == by_stage(stats2)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        (
            "bad.json",
            '[{"url": "https://a.example.com/1.jpg" "caption": "x"}]',
            "cannot read as json (Invalid",
        ),
        (
            "cut.json",  # DuckDB alone reads an array cut after a comma as whole
            '[{"url": "https://a.example.com/1.jpg", "caption": "x"},\n',
            "a JSON array without its closing ']' (cut short?)",
        ),
        ("bad.jsonl", '{"url": "https://a.example.com/1.jpg"\n', "cannot read as jsonl (Invalid"),
        ("strings.json", '["https://a.example.com/1.jpg"]', "holds JSON values that are not objects"),
    ],
)
def test_bad_json_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    code, error, _ = curate(tmp_path, RECIPE, path, capsys)
    assert code == 1 and error.startswith(f"t2iscope: error: {path}: ") and needle in error
    assert "LINE 1" not in error  # DuckDB's echo of our own query is no news to the user
    assert not (tmp_path / "out").exists()


def test_gzipped_parquet_is_not_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """img2dataset reads no .parquet.gz, nor can DuckDB: refused by name, not half-read."""
    path = tmp_path / "rows.parquet.gz"
    path.write_bytes(gzip.compress(b"PAR1"))
    code, error, _ = curate(tmp_path, RECIPE, path, capsys)
    assert code == 1 and "no input files" in error and "each but .parquet optionally .gz" in error


# -- schemas ----------------------------------------------------------------------------------------

# Eight rows that sd-improved-aesthetics-like recipes sort into every reason: (width, height,
# aesthetic, watermark, url); row 6 repeats row 0's URL and caption (LAION's hash), row 7's URL is bad.
SHAPE = [
    (1024, 768, 6.0, 0.1, "https://a.example.com/0.jpg"),
    (512, 512, 5.0, 0.49, "https://a.example.com/1.jpg"),
    (400, 800, 7.0, 0.0, "https://a.example.com/2.jpg"),
    (600, 600, 4.99, 0.1, "https://a.example.com/3.jpg"),
    (600, 600, 5.5, 0.5, "https://a.example.com/4.jpg"),
    (600, 600, None, 0.1, "https://a.example.com/5.jpg"),
    (700, 700, 6.2, 0.2, "https://a.example.com/0.jpg"),
    (800, 800, 5.1, 0.3, "not a url"),
]
CAPTIONS = [f"a photo of a {c} on a table" for c in ("dog", "cat", "cup", "hat", "pen", "fox", "dog", "box")]
CAPTIONS[6] = CAPTIONS[0]
# sd-improved-aesthetics on SHAPE (resolution 512, aesthetic >= 5, watermark < 0.5, validity, dedup)
AESTHETIC_DROPS = {
    "resolution": {"min_side<512": 1},
    "aesthetic": {"AESTHETIC_SCORE<5": 1, "AESTHETIC_SCORE_missing": 1},
    "watermark": {"pwatermark>=0.5": 1},
    "validity": {"url_invalid": 1},
}


def _column(i: int) -> list[Any]:
    return [row[i] for row in SHAPE]


def _hashes() -> list[int]:
    return [mmh3.hash64(u + t)[0] for u, t in zip(_column(4), CAPTIONS, strict=True)]


def laion_shaped(score: str = "AESTHETIC_SCORE") -> pa.Table:
    """LAION-Aesthetics v2: the 5+ sets name the score ``aesthetic``, the 6+/6.5+ sets AESTHETIC_SCORE."""
    return pa.table(
        {
            "URL": _column(4),
            "TEXT": CAPTIONS,
            "WIDTH": _column(0),
            "HEIGHT": _column(1),
            "similarity": [0.3] * 8,
            "hash": _hashes(),
            "punsafe": [0.01] * 8,
            "pwatermark": _column(3),
            score: _column(2),
        }
    )


def coyo_shaped() -> pa.Table:
    n = len(SHAPE)
    return pa.table(
        {
            "id": pa.array(range(1000, 1000 + n), pa.int64()),
            "url": _column(4),
            "text": CAPTIONS,
            "width": pa.array(_column(0), pa.int32()),
            "height": pa.array(_column(1), pa.int32()),
            "image_phash": ["9f91e133b1924e4e"] * n,
            "text_length": [len(t) for t in CAPTIONS],
            "word_count": [len(t.split()) for t in CAPTIONS],
            "num_tokens_bert": [7] * n,
            "num_tokens_gpt": [8] * n,
            "num_faces": [0] * n,
            "clip_similarity_vitb32": pa.array([0.31] * n, pa.float32()),
            "clip_similarity_vitl14": pa.array([0.25] * n, pa.float32()),
            "nsfw_score_opennsfw2": pa.array([0.9] * n, pa.float32()),  # unsafe by another model
            "nsfw_score_gantman": pa.array([0.9] * n, pa.float32()),
            "watermark_score": pa.array(_column(3), pa.float32()),
            "aesthetic_score_laion_v2": pa.array(_column(2), pa.float32()),
        }
    )


FORMATS = ["parquet", "csv", "tsv.gz", "json", "jsonl.gz"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("score", ["aesthetic", "AESTHETIC_SCORE"])
def test_laion_aesthetics_runs_sd_improved_aesthetics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], score: str, fmt: str
) -> None:
    path = write(laion_shaped(score), tmp_path / f"part-0.{fmt}")
    code, error, stats = curate(tmp_path, "sd-improved-aesthetics", path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == AESTHETIC_DROPS | {"dedup": {"duplicate_hash": 1}}
    assert kept(tmp_path).column("URL").to_pylist() == [SHAPE[0][4], SHAPE[1][4]]
    assert "AESTHETIC_SCORE" in kept(tmp_path).column_names and "aesthetic" not in kept(tmp_path).column_names


@pytest.mark.parametrize("fmt", FORMATS)
def test_coyo_reads_its_laion_scores_and_not_its_nsfw_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """COYO's watermark_score and aesthetic_score_laion_v2 are LAION's models; its NSFW scores are not."""
    path = write(coyo_shaped(), tmp_path / f"part-0.{fmt}")
    recipe = {
        "stages": [
            {"resolution": {"min_side": 512}},
            {"aesthetic": {"min_score": 5.0}},
            {"watermark": {"max_score": 0.5}},
        ]
    }
    code, error, stats = curate(tmp_path, recipe, path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == AESTHETIC_DROPS
    table = kept(tmp_path)
    assert table.column("URL").to_pylist() == [SHAPE[i][4] for i in (0, 1, 6)]  # COYO has no LAION hash
    assert table.column("similarity").to_pylist() == pytest.approx([0.31] * 3)
    assert {"id", "image_phash", "clip_similarity_vitl14", "nsfw_score_opennsfw2"} <= set(table.column_names)
    code, error, _ = curate(tmp_path, {"stages": ["unsafe"]}, path, capsys)
    assert code == 1 and f"{path}: stage 'unsafe' needs column punsafe, which is missing" in error


def datacomp_shaped() -> pa.Table:
    n = len(SHAPE)
    return pa.table(
        {
            "uid": [f"{i:032x}" for i in range(n)],
            "url": _column(4),
            "text": [*CAPTIONS[:2], "dog", *CAPTIONS[3:]],  # row 2: one word
            "original_width": _column(0),
            "original_height": [h if i != 4 else 4 * SHAPE[i][0] for i, h in enumerate(_column(1))],
            "clip_b32_similarity_score": pa.array([0.20 + i / 100 for i in range(n)], pa.float32()),
            "clip_l14_similarity_score": pa.array([0.10 + i / 100 for i in range(n)], pa.float32()),
            "face_bboxes": pa.array(
                [[[0.1, 0.2, 0.3, 0.4]] if i % 2 else [] for i in range(n)], pa.list_(pa.list_(pa.float64()))
            ),
            "sha256": [f"{i:064x}" for i in range(n)],
        }
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_datacomp_basic_filter_on_datacomp_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """DataComp's basic filter without its language stage, on original_width/height; the B/32 score
    reads as LAION's similarity, L/14 keeps its own name."""
    path = write(datacomp_shaped(), tmp_path / f"part-0.{fmt}")
    recipe = {
        "stages": [
            {"caption": {"min_words": 3, "min_chars": 6}},
            {"resolution": {"min_side": 600, "max_aspect_ratio": 3.0}},
        ]
    }
    code, error, stats = curate(tmp_path, recipe, path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == {
        "validity": {"url_invalid": 1},
        "caption": {"words<3": 1},
        "resolution": {"min_side<600": 1, "aspect>3": 1},
    }
    table = kept(tmp_path)
    assert table.column("URL").to_pylist() == [SHAPE[i][4] for i in (0, 3, 5, 6)]
    assert table.column("similarity").to_pylist() == pytest.approx([0.20, 0.23, 0.25, 0.26])
    assert table.column("clip_l14_similarity_score").to_pylist() == pytest.approx([0.10, 0.13, 0.15, 0.16])
    assert {"uid", "sha256", "face_bboxes"} <= set(table.column_names)


def test_laion_400m_passes_its_own_columns_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """LAION-400M's NSFW is a tag, not punsafe: kept as it is, and the unsafe stage says what it lacks."""
    table = laion_shaped().select(["URL", "TEXT", "WIDTH", "HEIGHT", "similarity", "hash"])
    table = table.append_column("NSFW", pa.array(["UNLIKELY", "UNSURE", "NSFW", *["UNLIKELY"] * 5]))
    table = table.append_column("LICENSE", pa.array(["?"] * 8))
    table = table.append_column("SAMPLE_ID", pa.array(range(8), pa.int64()))
    path = write(table, tmp_path / "part00000.parquet")
    recipe = {"stages": [{"resolution": {"min_side": 512}}, {"caption": {"min_words": 2}}, "dedup"]}
    code, error, stats = curate(tmp_path, recipe, path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == {
        "resolution": {"min_side<512": 1},
        "validity": {"url_invalid": 1},
        "dedup": {"duplicate_hash": 1},
    }
    out = kept(tmp_path)
    assert out.column("SAMPLE_ID").to_pylist() == [0, 1, 3, 4, 5]
    assert out.column("NSFW").to_pylist() == ["UNLIKELY", "UNSURE", "UNLIKELY", "UNLIKELY", "UNLIKELY"]
    code, error, _ = curate(tmp_path, {"stages": ["unsafe"]}, path, capsys)
    assert code == 1 and "stage 'unsafe' needs column punsafe, which is missing" in error


def test_laion2b_multi_joined_runs_laion_high_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = laion_shaped().drop_columns(["AESTHETIC_SCORE", "punsafe"])
    table = table.append_column("LANGUAGE", pa.array(["de", "fr", "ja", "en", "nolang", "de", "de", "ru"]))
    sizes = [(1024, 1024), (2048, 1536), (1023, 4000), (1200, 1200), (1100, 1100), (1024, 1024)]
    table = table.set_column(2, "WIDTH", pa.array([w for w, _ in sizes] + [1024, 1024]))
    table = table.set_column(3, "HEIGHT", pa.array([h for _, h in sizes] + [1024, 1024]))
    table = table.append_column("punsafe", pa.array([0.1, 0.2, 0.1, 0.5, 0.3, 0.1, 0.1, 0.1]))
    path = write(table, tmp_path / "part-00000.parquet")
    code, error, stats = curate(tmp_path, "laion-high-resolution", path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == {
        "resolution": {"min_side<1024": 1},
        "unsafe": {"punsafe>=0.5": 1},
        "validity": {"url_invalid": 1},
        "dedup": {"duplicate_hash": 1},
    }
    assert kept(tmp_path).column("LANGUAGE").to_pylist() == ["de", "fr", "nolang", "de"]
    assert stats["languages"]["in"] == {"de": 3, "fr": 1, "ja": 1, "en": 1, "nolang": 1, "ru": 1}


# -- a recipe's columns: ----------------------------------------------------------------------------

MAPPED = {"stages": [{"aesthetic": {"min_score": 5.0}}], "columns": {"AESTHETIC_SCORE": "My_Score"}}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])  # the all-SQL path and the Arrow one
def test_a_recipe_column_mapping_comes_before_the_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """``my_score`` read as AESTHETIC_SCORE (names match case-insensitively, as DuckDB's do); the
    file's own AESTHETIC_SCORE and its ``aesthetic`` alias are other scores, kept beside it."""
    scores = [6.0, 4.0, 5.0, None, 9.0]
    table = pa.table(
        {
            "url": [f"https://a.example.com/{i}.jpg" for i in range(5)],
            "caption": [f"a photo of thing {i}" for i in range(5)],
            "my_score": scores,
            "AESTHETIC_SCORE": [1.0] * 5,  # would drop every row
            "aesthetic": [9.0] * 5,  # would keep every row
        }
    )
    path = write(table, tmp_path / f"rows.{fmt}")
    code, error, stats = curate(tmp_path, MAPPED, path, capsys)
    assert (code, error) == (0, "")
    assert by_stage(stats) == {"aesthetic": {"AESTHETIC_SCORE<5": 1, "AESTHETIC_SCORE_missing": 1}}
    out = kept(tmp_path)
    assert out.column("AESTHETIC_SCORE").to_pylist() == [6.0, 5.0, 9.0]
    assert out.column("input_AESTHETIC_SCORE").to_pylist() == [1.0] * 3
    assert out.column("aesthetic").to_pylist() == [9.0] * 3
    resolved = yaml.safe_load((tmp_path / "out" / "recipe.resolved.yaml").read_text())
    assert resolved["columns"] == {"AESTHETIC_SCORE": "My_Score"}


def test_a_mapped_column_the_file_lacks_names_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(laion_shaped("aesthetic"), tmp_path / "part-0.parquet")
    code, error, _ = curate(tmp_path, MAPPED, path, capsys)
    assert code == 1 and error.startswith(
        f"t2iscope: error: {path}: missing column My_Score, which the recipe's columns.AESTHETIC_SCORE names"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"FOO": "x"}, f"r.yaml: columns.FOO: not a LAION column; valid: {', '.join(LAION_COLUMNS)}"),
        ({"aesthetic_score": "x"}, "r.yaml: columns.aesthetic_score: not a LAION column; valid: URL, TEXT,"),
        ({"URL": 3}, "r.yaml: columns.URL: expected a string, got 3"),
        ({"URL": " "}, "r.yaml: columns.URL: expected an input column name, got ' '"),
        ({"TEXT": "link", "URL": "LINK"}, "r.yaml: columns.URL: LINK is already read as TEXT"),
        (["URL"], "r.yaml: columns: expected a mapping"),
    ],
)
def test_a_bad_column_mapping_is_one_line_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], columns: Any, message: str
) -> None:
    path = write(laion_shaped(), tmp_path / "part-0.parquet")
    code, error, _ = curate(tmp_path, {"stages": ["unsafe"], "columns": columns}, path, capsys)
    assert code == 2 and error.startswith(f"t2iscope: error: {tmp_path / message}")
    assert not (tmp_path / "out").exists()
