"""Bias: prompt adherence by language, and default representation against the training data."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import audit_view, data, ui

HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # with a bias audit in the YAML"

st.title("Bias")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    rows = data.audit_rows(tuple(map(str, found.audits)), ("bias", "culture", "language"))
    if rows.empty:
        st.info("No bias audit table (`*bias*.parquet`) in the audit runs. " + HINT.format(root=found.root))
        st.stop()
    st.subheader("Adherence by language")
    adherence = rows[rows["metric"].str.contains("adher", na=False)]
    metric = audit_view.pick_metric(adherence if not adherence.empty else rows, ["adher"], key="adherence")
    if metric:
        audit_view.show(rows, metric, ["language", "lang"], ["judge", "run"])

    st.subheader("Default representation")
    if "culture" not in rows:
        st.info("This bias audit has no `culture` column.")
    else:
        with_culture = rows[rows["culture"].notna()]
        metric = audit_view.pick_metric(with_culture, ["default", "share"], key="representation")
        if metric:
            cultures = with_culture.loc[with_culture["metric"] == metric, "culture"].nunique()
            st.caption(f"Dashed line: parity (1/{cultures} per culture).")
            audit_view.show(
                with_culture, metric, ["culture"], ["source", "language", "run"], parity=1 / cultures
            )
    audit_view.skipped_note(rows)
