"""``validity``: rows no later stage can judge (no URL, a URL that is not one, no or huge caption).

When a recipe does not name it, it is added after the leading numeric stages and before any stage
that reads URL or TEXT (see recipe.py), so malformed rows are counted drops with a reason instead
of errors deep inside a download or a language model.
"""

from __future__ import annotations

from t2iscope.config import PositiveInt
from t2iscope.curate.operators import METADATA, PIXELS, Columns, Rules, StageContext, rule_operator
from t2iscope.curate.urls import PLAIN_FETCHABLE, URL_PROBLEM_SQL
from t2iscope.sql import literal


@rule_operator("validity", phases=(METADATA, PIXELS))
def validity(
    cols: Columns, ctx: StageContext, max_caption_chars: PositiveInt = 4096, require_text: bool = True
) -> Rules:
    """Drop rows without a fetchable http(s) URL or without a caption of sane length.

    ``require_text: false`` keeps rows with no caption (a URL list, img2dataset's ``.txt`` input,
    has none); a caption that is there is still held to ``max_caption_chars``.
    """
    url, text = cols.col("URL"), cols.col("TEXT")
    rules = [
        (f"{url} IS NULL", "url_missing"),
        # curate.urls' parser, registered on every curation connection (readers.configure). CASE
        # evaluates the parser only on rows the plain-URL shortcut does not accept (3.6x faster
        # on 1M world URLs, since most real URLs are plain); the shortcut accepts a subset of
        # what the parser accepts (tests/curate/test_urls.py).
        (
            f"CASE WHEN regexp_full_match({url}, {literal(PLAIN_FETCHABLE)}) THEN false "
            f"ELSE {URL_PROBLEM_SQL}({url}) IS NOT NULL END",
            "url_invalid",
        ),
    ]
    if require_text:
        rules.append((f"{text} IS NULL", "text_missing"))
    rules.append((f"length({text}) > {cols.bind(int(max_caption_chars))}", "text_too_long"))
    return rules
