"""``language``: detect the caption language offline and keep a list of languages.

Adds ``lang`` and ``lang_score``. Where the input has LAION's LANGUAGE (laion2B-multi), the
stage reports per-language agreement between it and the detector in stats.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.config import Probability
from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require

# The labels lid.176 (the detector, curate/langid.py) answers: lower-case ISO 639-1 codes where one
# exists, else 639-3/Wikipedia codes. A constant, so a recipe is checked without loading the model;
# tests/curate/test_langid.py checks it against the model file.
_LID176 = """
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs
cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr
hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc
lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa
pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg
th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh
"""
DETECTOR_LABELS = frozenset(_LID176.split())


def _check_keep(params: dict[str, Any], phase: str) -> None:
    """Recipe-time check: every ``keep`` entry is a label the detector answers (``EN`` or
    ``english`` would silently drop every row)."""
    for i, code in enumerate(params.get("keep") or ()):
        if code not in DETECTOR_LABELS:
            raise ValueError(
                f"keep[{i}]: {code!r} is not a language code the detector answers "
                "(lower-case ISO 639-1 like en, de, zh)"
            )


def _counts(values: pa.Array) -> dict[str, int]:
    vc = pc.value_counts(pc.fill_null(values, ""))
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


@operator(
    "language",
    phases=(METADATA, PIXELS),
    outputs={"lang": pa.string(), "lang_score": pa.float32()},
    check=_check_keep,  # keep names detector labels, checked when the recipe is read
)
def language(
    table: pa.Table, ctx: StageContext, keep: list[str] | None = None, min_score: Probability = 0.0
) -> StageResult:
    """Keep captions detected in one of ``keep`` (all when unset) with score >= ``min_score``."""
    from t2iscope.curate.langid import LanguageDetector

    text = require(table, "TEXT", ctx, "language")
    detector = ctx.state.get("detector")
    if detector is None:
        detector = ctx.state["detector"] = LanguageDetector()
    lang, score = detector(text)
    scores = np.asarray(score.to_numpy(zero_copy_only=False), dtype=np.float32)
    rules = [(scores < min_score, f"lang_score<{min_score:g}")] if min_score else []
    if keep is not None:
        kept = pc.fill_null(pc.is_in(lang, pa.array([str(k) for k in keep])), False)
        rules.append((~np.asarray(kept.to_numpy(zero_copy_only=False), dtype=bool), "lang_not_kept"))
    keep_mask, reason = decide(table.num_rows, rules)
    stats: dict[str, object] = {"detected": _counts(lang)}
    if "LANGUAGE" in table.column_names:
        declared = pc.fill_null(table.column("LANGUAGE").combine_chunks().cast(pa.string()), "")
        agree = pc.equal(declared, lang)
        stats["agreement"] = {
            code: {"n": n, "agree": int(pc.sum(pc.filter(agree, pc.equal(declared, code))).as_py() or 0)}
            for code, n in _counts(declared).items()
        }
    return StageResult(keep_mask, reason, {"lang": lang, "lang_score": score}, stats)
