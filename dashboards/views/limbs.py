"""Limbs: how often generated subjects have the wrong number of legs, with intervals."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import audit_view, data, ui

HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # with a limbs audit in the YAML"

st.title("Limb failures")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    rows = data.audit_rows(tuple(map(str, found.audits)), ("limb",))
    if rows.empty:
        st.info("No limbs audit table (`*limb*.parquet`) in the audit runs. " + HINT.format(root=found.root))
        st.stop()
    metric = audit_view.pick_metric(rows, ["fail"], key="metric")
    if metric:
        audit_view.show(rows, metric, ["kind", "prompt_id", "language"], ["judge", "language", "run"])
    audit_view.skipped_note(rows)
    st.page_link("views/annotate.py", label="Label images by hand →", icon=":material/label:")
