"""LAION's column names, and how other schemas map onto them.

Every dataset row keeps LAION's names (``URL, TEXT, WIDTH, ...``) so one recipe runs on every
release below. :data:`ALIASES` renames a column only where it means the same thing as LAION's; a
recipe's ``columns:`` (LAION name -> the input's column) is applied before it. Curation's own
columns are lower-case (``lang``, ``domain``, ...), so they never collide.

How each release reads (columns not named here pass through under their own names):

- LAION-400M (URL, TEXT, WIDTH, HEIGHT, similarity, hash, NSFW, LICENSE, SAMPLE_ID): as is.
- LAION-5B laion2B-en, laion2B-multi, laion1B-nolang (+ LANGUAGE) and their ``-joined`` sets
  (+ pwatermark, punsafe): as is.
- LAION-Aesthetics v1 and the v2 5+ sets: ``aesthetic`` -> AESTHETIC_SCORE; the v2 6+ and 6.5+
  sets already say AESTHETIC_SCORE.
- DataComp (uid, url, text, original_width, original_height, clip_b32_similarity_score,
  clip_l14_similarity_score, face_bboxes, sha256): url, text, original_width, original_height
  -> URL, TEXT, WIDTH, HEIGHT; clip_b32_similarity_score -> similarity.
- COYO-700M (id, url, text, width, height, image_phash, text_length, word_count, num_tokens_bert,
  num_tokens_gpt, num_faces, clip_similarity_vitb32, clip_similarity_vitl14, nsfw_score_opennsfw2,
  nsfw_score_gantman, watermark_score, aesthetic_score_laion_v2): url, text, width, height -> URL,
  TEXT, WIDTH, HEIGHT; clip_similarity_vitb32 -> similarity; watermark_score -> pwatermark;
  aesthetic_score_laion_v2 -> AESTHETIC_SCORE.
- img2dataset's own inputs: url, caption -> URL, TEXT.

Same meaning: LAION's ``similarity`` is OpenAI CLIP ViT-B/32 image-text cosine, as are DataComp's
``clip_b32_similarity_score`` and COYO's ``clip_similarity_vitb32``; COYO's ``watermark_score``
comes from LAION's watermark detector and ``aesthetic_score_laion_v2`` from LAION's aesthetic
predictor v2, the model behind LAION-Aesthetics v2's ``aesthetic``/``AESTHETIC_SCORE``.

Left under their own names because they mean something else (a recipe may still map one with
``columns:`` when that is what the user wants):

- ViT-L/14 similarities (DataComp ``clip_l14_similarity_score``, COYO ``clip_similarity_vitl14``):
  another model, on another scale; LAION's 0.28 threshold is for ViT-B/32.
- NSFW: LAION-400M's ``NSFW`` is a tag (UNLIKELY/UNSURE/NSFW), not a probability; COYO's
  ``nsfw_score_opennsfw2`` and ``nsfw_score_gantman`` are other classifiers than the CLIP-based
  one behind LAION's ``punsafe``, with other calibrations.
- Row identities: LAION's ``hash`` is mmh3 of URL+TEXT (what ``dedup: {by: hash}`` keys on);
  DataComp's ``uid`` and ``sha256`` (of the image bytes), COYO's ``id`` and ``image_phash`` (a
  perceptual hash), LAION-400M's ``SAMPLE_ID`` are other keys.
- COYO's ``text_length``, ``word_count``, ``num_tokens_*`` and ``num_faces``, DataComp's
  ``face_bboxes``, LAION-400M's ``LICENSE``: no LAION counterpart (the ``caption`` stage counts
  words itself).
"""

from __future__ import annotations

from collections.abc import Mapping

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

# Other spellings -> LAION name, matched case-insensitively (``url``, ``Url`` and ``URL`` are one
# name). When a file has several spellings of one name, the first listed here wins; the others keep
# their names (see canonical_names).
ALIASES: dict[str, str] = {
    "url": "URL",
    "text": "TEXT",
    "caption": "TEXT",  # img2dataset's caption_col convention
    "width": "WIDTH",
    "original_width": "WIDTH",  # DataComp
    "height": "HEIGHT",
    "original_height": "HEIGHT",
    "language": "LANGUAGE",
    "similarity": "similarity",
    "clip_b32_similarity_score": "similarity",  # DataComp
    "clip_similarity_vitb32": "similarity",  # COYO
    "pwatermark": "pwatermark",
    "watermark_score": "pwatermark",  # COYO
    "punsafe": "punsafe",
    "aesthetic_score": "AESTHETIC_SCORE",
    "aesthetic": "AESTHETIC_SCORE",  # LAION-Aesthetics v1 and v2 5+ sets
    "aesthetic_score_laion_v2": "AESTHETIC_SCORE",  # COYO
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


def canonical_names(columns: list[str], mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map each source column to its output name.

    ``mapping`` (LAION name -> one of ``columns``, a recipe's ``columns:``) comes first, then a
    column already named like LAION's, then :data:`ALIASES` in table order. A column left with a
    name that only differs in case from a LAION name another column took (``text`` beside
    ``caption``, an ``AESTHETIC_SCORE`` when the recipe reads ``my_score`` as that), or named
    ``stage``/``reason`` (the run's own columns), gets :data:`CLASH_PREFIX`, so both survive and
    DuckDB, which matches names case-insensitively, never sees two of one name.
    """
    owner = dict(mapping or {})  # LAION name -> the column read as it
    sources = set(owner.values())
    for col in columns:
        if col in LAION_COLUMNS and col not in sources:
            owner.setdefault(col, col)
    by_lower: dict[str, str] = {}
    for col in columns:
        by_lower.setdefault(col.lower(), col)
    for alias, name in ALIASES.items():
        col = by_lower.get(alias)
        if col is not None and name not in owner and col not in sources and col not in LAION_COLUMNS:
            owner[name] = col
            sources.add(col)
    read_as = {col: name for name, col in owner.items()}
    taken = {name.lower() for name in owner} | {STAGE_COL, REASON_COL}
    return {col: read_as.get(col, CLASH_PREFIX + col if col.lower() in taken else col) for col in columns}
