"""Bias: prompt adherence by language, and default representation (culture, gender) against
training data and parity, one chart per judged attribute."""

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
    # all_match: every attribute the prompt asks for right; <attr>_match, gaps and 'other' rates to pick
    metric = (
        audit_view.pick_metric(adherence, ["all_match", "match"], key="adherence") if len(adherence) else None
    )
    if metric:
        audit_view.show(adherence, metric, ["language"], ["run"], key="adherence")
        audit_view.skipped_note(adherence)
    else:
        st.info("No language_bias audit.")

    st.subheader("Default representation")
    measured = culture[culture["metric"] != "skipped"] if len(culture) else culture
    attributes = (
        sorted(measured["attribute"].dropna().astype(str).unique()) if "attribute" in measured else []
    )
    if attributes:
        st.caption(
            "Prompts that name no culture or gender: what the judge saw in the generated images, "
            "against the training data (culture, with a world) and parity."
        )
    for i, attribute in enumerate(attributes):
        rows = culture[culture["attribute"].astype(str) == attribute]
        st.markdown(f"**Attribute** {ui.literal(attribute)}")
        metric = audit_view.pick_metric(rows, ["share"], key=f"representation_{i}")
        if not metric:
            continue
        of_metric = rows[rows["metric"] == metric]
        if "label" in of_metric and (of_metric["label"] != audit_view.ALL).any():
            of_metric = of_metric[of_metric["label"] != audit_view.ALL]  # per label, not pooled
        audit_view.show(of_metric, metric, ["label"], ["source"], mark="bar", key=f"representation_{i}")
    if len(culture):
        audit_view.skipped_note(culture)
    if not attributes:
        st.info("No culture audit measured a culture or gender distribution.")
