"""Bias: prompt adherence by language, and default representation against training data and parity."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import audit_view, data, ui

HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # with language_bias and culture audits"

st.title("Bias")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    audits = tuple(map(str, found.audits))
    adherence = data.audit_rows(audits, ("language_bias",))
    culture = data.audit_rows(audits, ("culture",))
    if adherence.empty and culture.empty:
        st.info("No audit run here ran the language_bias or culture audit. Create one with:")
        st.code(HINT.format(root=found.root), language="bash")
        st.stop()

    st.subheader("Adherence by language")
    metric = (
        audit_view.pick_metric(adherence, ["both_match", "match"], key="adherence")
        if len(adherence)
        else None
    )
    if metric:
        audit_view.show(adherence, metric, ["language"], ["run"], key="adherence")
        audit_view.skipped_note(adherence)
    else:
        st.info("No language_bias audit.")

    st.subheader("Default representation")
    metric = audit_view.pick_metric(culture, ["share"], key="representation") if len(culture) else None
    if metric:
        st.caption(
            "Neutral prompts (no culture named): generated images against the training data and parity."
        )
        of_metric = culture[culture["metric"] == metric]
        if "culture" in of_metric and (of_metric["culture"] != audit_view.ALL).any():
            of_metric = of_metric[of_metric["culture"] != audit_view.ALL]  # per culture, not pooled
        audit_view.show(of_metric, metric, ["culture"], ["source"], mark="bar", key="representation")
        audit_view.skipped_note(culture)
    else:
        st.info("No culture audit.")
