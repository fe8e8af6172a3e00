"""``language``: detect the caption language offline and keep a list of languages.

Adds ``lang`` and ``lang_score``. Where the input has LAION's LANGUAGE (laion2B-multi), the
stage reports per-language agreement between it and the detector in stats.json.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t2iscope.config import Probability
from t2iscope.curate.operators import METADATA, PIXELS, StageContext, StageResult, decide, operator, require


def _counts(values: pa.Array) -> dict[str, int]:
    vc = pc.value_counts(pc.fill_null(values, ""))
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


@operator("language", phases=(METADATA, PIXELS), outputs={"lang": pa.string(), "lang_score": pa.float32()})
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
