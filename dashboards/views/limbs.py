"""Limbs: how often generated subjects have the wrong number of legs (or fingers), with intervals,
one chart per counted attribute."""

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
        of_metric = rows[rows["metric"] == metric]
        attributes = (
            sorted(of_metric["attribute"].dropna().astype(str).unique()) if "attribute" in of_metric else []
        )
        # Failure rates come grouped "by" subject, seed, cfg_scale, steps or sampler; subject first.
        for i, attribute in enumerate(attributes or [None]):
            part = (
                of_metric if attribute is None else of_metric[of_metric["attribute"].astype(str) == attribute]
            )
            if attribute is not None:
                st.subheader(f"Wrong count of {ui.literal(attribute)}")
            if {"by", "subject"} <= set(part.columns):  # per-subject rows name their subject as level too
                part = part.assign(subject=part["subject"].where(part["by"] != "subject", audit_view.ALL))
            key = "limbs" if i == 0 else f"limbs_{i}"
            audit_view.show(part, metric, ["level", "subject"], ["run"], pins={"by": "subject"}, key=key)
    audit_view.skipped_note(rows)
    st.page_link("views/annotate.py", label="Label images by hand →", icon=":material/label:")
