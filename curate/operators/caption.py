"""``caption``: DataComp's basic caption rule (enough words and characters) and junk captions.

Junk is what scrapers leave in alt text: file names (``IMG_0042.jpg``), placeholders
(``untitled``, ``image``), bare URLs and strings without a single letter. Word and junk tests use
RE2 regexes, the engine both DuckDB and Arrow use, so pushdown and Arrow agree row by row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

JUNK = (
    r"(?i)^\s*(?:"
    r"[^\pL]*"  # no letter at all
    r"|\S+\.(?:jpe?g|png|gif|webp|bmp|tiff?)"  # a file name
    r"|(?:img|dsc|dscn|dcim|image|photo|pic)[-_ ]?\d+\S*"  # camera/CMS default names
    r"|untitled|image|photo|picture|null|none|n/?a|no description|no title"
    r"|(?:https?://|www\.)\S+"  # a URL as caption
    r")\s*$"
)


def _sql(
    columns: set[str], min_words: int = 0, min_chars: int = 0, reject_junk: bool = False
) -> list[tuple[str, str]] | None:
    if "TEXT" not in columns:
        return None
    rules = [('"TEXT" IS NULL', "text_missing")]
    if min_words:
        rules.append((f"len(regexp_extract_all(\"TEXT\", '\\S+')) < {int(min_words)}", f"words<{min_words}"))
    if min_chars:
        rules.append((f'length("TEXT") < {int(min_chars)}', f"chars<{min_chars}"))
    if reject_junk:
        rules.append((f"regexp_matches(\"TEXT\", '{JUNK}')", "junk_caption"))
    return rules


def _mask(values: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


@operator("caption", phases=(METADATA, PIXELS), sql=_sql)
def caption(
    table: pa.Table, ctx: StageContext, min_words: int = 0, min_chars: int = 0, reject_junk: bool = False
) -> StageResult:
    """Keep captions with at least ``min_words`` words and ``min_chars`` characters, and not junk."""
    text = require(table, "TEXT", ctx, "caption")
    rules = [(np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool), "text_missing")]
    if min_words:
        rules.append(
            (_mask(pc.less(pc.count_substring_regex(text, r"\S+"), min_words)), f"words<{min_words}")
        )
    if min_chars:
        rules.append((_mask(pc.less(pc.utf8_length(text), min_chars)), f"chars<{min_chars}"))
    if reject_junk:
        rules.append((_mask(pc.match_substring_regex(text, JUNK)), "junk_caption"))
    keep, reason = decide(table.num_rows, rules)
    return StageResult(keep, reason)
