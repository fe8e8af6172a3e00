"""``validity``: rows no later stage can judge (no URL, a URL that is not one, no or huge caption).

When a recipe does not name it, it is added after the leading numeric stages and before any stage
that reads URL or TEXT (see recipe.py), so malformed rows are counted drops with a reason instead
of errors deep inside a download or a language model.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

# scheme://host.tld[...] with no whitespace: what img2dataset can fetch.
URL_PATTERN = r"^https?://[^\s/?#@]+\.[^\s/?#@]+(?:[/?#]\S*)?$"


def _sql(columns: set[str], max_caption_chars: int = 4096) -> list[tuple[str, str]] | None:
    if not {"URL", "TEXT"} <= columns:
        return None
    return [
        ('"URL" IS NULL', "url_missing"),
        (f"NOT regexp_full_match(\"URL\", '{URL_PATTERN}')", "url_invalid"),
        ('"TEXT" IS NULL', "text_missing"),
        (f'length("TEXT") > {int(max_caption_chars)}', "text_too_long"),
    ]


@operator("validity", phases=(METADATA, PIXELS), sql=_sql)
def validity(table: pa.Table, ctx: StageContext, max_caption_chars: int = 4096) -> StageResult:
    """Drop rows without a fetchable http(s) URL or without a caption of sane length."""
    url = require(table, "URL", ctx, "validity")
    text = require(table, "TEXT", ctx, "validity")
    url_null = np.asarray(pc.is_null(url).to_numpy(zero_copy_only=False), dtype=bool)
    url_ok = pc.fill_null(pc.match_substring_regex(url, URL_PATTERN), True)
    text_null = np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)
    too_long = pc.fill_null(pc.greater(pc.utf8_length(text), int(max_caption_chars)), False)
    keep, reason = decide(
        table.num_rows,
        [
            (url_null, "url_missing"),
            (~np.asarray(url_ok.to_numpy(zero_copy_only=False), dtype=bool), "url_invalid"),
            (text_null, "text_missing"),
            (np.asarray(too_long.to_numpy(zero_copy_only=False), dtype=bool), "text_too_long"),
        ],
    )
    return StageResult(keep, reason)
