"""Limbs: how often generated subjects have the wrong number of legs, with intervals."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import audit_view, data, ui

HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # with a limbs audit in the YAML"

st.title("Limb failures")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    rows = data.audit_rows(tuple(map(str, found.audits)), ("limbs",))
    if rows.empty:
        st.info("No audit run here ran the limbs audit. Create one with:")
        st.code(HINT.format(root=found.root), language="bash")
        st.stop()
    metric = audit_view.pick_metric(rows, ["failure"], key="metric")
    if metric:
        # Failure rates come grouped "by" subject, seed, cfg_scale, steps or sampler; subject first.
        audit_view.show(rows, metric, ["level", "kind"], ["run"], pins={"by": "subject"}, key="limbs")
    audit_view.skipped_note(rows)
    st.page_link("views/annotate.py", label="Label images by hand →", icon=":material/label:")
