"""LAION's column names, and how other schemas map onto them.

Every dataset row keeps LAION's names (``URL, TEXT, WIDTH, ...``) so recipes written for
laion2B-en run unchanged on laion2B-multi, the ``-joined`` sets, LAION-Aesthetics or DataComp.
Curation's own columns are lower-case (``lang``, ``domain``, ...), so they never collide.
"""

from __future__ import annotations

# LAION column -> the DuckDB type family it must have ("text" or "number").
LAION_COLUMNS: dict[str, str] = {
    "URL": "text",
    "TEXT": "text",
    "WIDTH": "number",
    "HEIGHT": "number",
    "LANGUAGE": "text",
    "similarity": "number",
    "pwatermark": "number",
    "punsafe": "number",
    "AESTHETIC_SCORE": "number",
    "hash": "number",
}

REQUIRED: tuple[str, ...] = ("URL", "TEXT")

# Other spellings seen in the wild -> LAION name. Matching is case-insensitive, so ``url``,
# ``Url`` and ``URL`` are one name; DataComp's lower-case schema lands here too.
ALIASES: dict[str, str] = {
    "url": "URL",
    "text": "TEXT",
    "caption": "TEXT",
    "width": "WIDTH",
    "height": "HEIGHT",
    "original_width": "WIDTH",
    "original_height": "HEIGHT",
    "language": "LANGUAGE",
    "similarity": "similarity",
    "clip_b32_similarity_score": "similarity",
    "pwatermark": "pwatermark",
    "punsafe": "punsafe",
    "aesthetic_score": "AESTHETIC_SCORE",
    "hash": "hash",
}

# Curation's own outputs: every dropped row gets them.
STAGE_COL = "stage"
REASON_COL = "reason"
# An input column named like one of them (any case: DuckDB matches names case-insensitively), as in
# a previous run's dropped rows fed back in, is renamed with this prefix so both survive.
CLASH_PREFIX = "input_"

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT")
NUMERIC_TYPES += ("UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
TEXT_TYPES = ("VARCHAR",)


def type_family(duckdb_type: str) -> str:
    """'number', 'text' or 'other' for a DuckDB column type string such as ``DECIMAL(9,2)``."""
    base = duckdb_type.split("(")[0].upper()
    if base in NUMERIC_TYPES:
        return "number"
    if base in TEXT_TYPES:
        return "text"
    return "other"


def canonical_names(columns: list[str]) -> dict[str, str]:
    """Map each source column to its output name; LAION names win over aliases of them.

    A file with both ``URL`` and ``url`` keeps ``URL`` and passes ``url`` through unchanged,
    rather than guessing which one is meant. A column named ``stage`` or ``reason`` (any case)
    becomes ``input_stage``/``input_reason`` (:data:`CLASH_PREFIX`): those names are the run's own.
    """
    out: dict[str, str] = {}
    taken = {c for c in columns if c in LAION_COLUMNS}
    for col in columns:
        if col in LAION_COLUMNS:
            out[col] = col
        elif col.lower() in (STAGE_COL, REASON_COL):
            out[col] = CLASH_PREFIX + col
        elif (target := ALIASES.get(col.lower())) is not None and target not in taken:
            out[col] = target
            taken.add(target)
        else:
            out[col] = col
    return out
