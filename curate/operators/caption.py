"""``caption``: DataComp's basic caption rule (enough words and characters) and junk captions.

Junk is what scrapers leave in alt text: file names (``IMG_0042.jpg``), placeholders
(``untitled``, ``image``), bare URLs and strings without a single letter. Word and junk tests are
RE2 regexes in DuckDB.
"""

from __future__ import annotations

from typing import Annotated

from t2iscope.config import Ge, Le, NonNegInt
from t2iscope.curate.operators import METADATA, PIXELS, Columns, Rules, StageContext, rule_operator
from t2iscope.errors import ConfigError

JUNK = (
    r"(?i)^\s*(?:"
    r"[^\pL]*"  # no letter at all
    r"|\S+\.(?:jpe?g|png|gif|webp|bmp|tiff?)"  # a file name
    r"|(?:img|dsc|dscn|dcim|image|photo|pic)[-_ ]?\d+\S*"  # camera/CMS default names
    r"|untitled|image|photo|picture|null|none|n/?a|no description|no title"
    r"|(?:https?://|www\.)\S+"  # a URL as caption
    r")\s*$"
)
# RE2 counts repetitions up to 1000: more words than that cannot be asked for in one pattern.
MAX_WORDS = 1001


@rule_operator("caption", phases=(METADATA, PIXELS))
def caption(
    cols: Columns,
    ctx: StageContext,
    min_words: Annotated[int, Ge(0), Le(MAX_WORDS)] = 0,
    min_chars: NonNegInt = 0,
    reject_junk: bool = False,
) -> Rules:
    """Keep captions with at least ``min_words`` words and ``min_chars`` characters, and not junk."""
    text = cols.col("TEXT")
    rules = [(f"{text} IS NULL", "text_missing")]
    if min_words > 0:
        if min_words > MAX_WORDS:
            # Recipes are refused when read (the annotation); this guards direct calls.
            raise ConfigError(f"stage 'caption': min_words {min_words} is above {MAX_WORDS}")
        # "Has min_words runs of non-space" is one match test: 6x faster than extracting them all.
        at_least = rf"\S+(?:\s+\S+){{{int(min_words) - 1}}}"
        rules.append((f"NOT regexp_matches({text}, {cols.bind(at_least)})", f"words<{min_words}"))
    if min_chars:
        rules.append((f"length({text}) < {cols.bind(int(min_chars))}", f"chars<{min_chars}"))
    if reject_junk:
        rules.append((f"regexp_matches({text}, {cols.bind(JUNK)})", "junk_caption"))
    return rules
