"""Watermark robustness: TPR at 0.1% FPR, AUC or bit accuracy against attack strength, per method."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import audit_view, data, ui

HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # with a watermark audit in the YAML"

st.title("Watermark robustness")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    rows = data.audit_rows(tuple(map(str, found.audits)), ("watermark",))
    if rows.empty:
        st.info("No audit run here ran the watermark audit. Create one with:")
        st.code(HINT.format(root=found.root), language="bash")
        st.stop()
    metric = audit_view.pick_metric(
        rows,
        ["tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr", "auc", "bit_accuracy", "attack_psnr", "accuracy"],
        key="metric",
    )
    if metric:
        audit_view.show(
            rows, metric, ["strength"], ["method", "watermark_method"], mark="line", key="watermark"
        )
    audit_view.skipped_note(rows)
