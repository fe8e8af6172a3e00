"""Curation funnel: rows in and out of every stage, with drop reasons; two runs side by side."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import streamlit as st

from t2iscope.dashboards import data, ui


def show(run: Path) -> None:
    """One run's funnel, reasons and languages, in the current column."""
    with ui.friendly():
        funnel = data.funnel(str(run))
        if funnel.empty:
            st.info("This run has no stages.")
            return
        first, last = int(funnel["rows_in"].iloc[0]), int(funnel["rows_out"].iloc[-1])
        st.metric("Rows kept", f"{last:,}", f"{last - first:,} of {first:,}", delta_color="off")
        bars = funnel.assign(order=range(len(funnel)))
        chart = (
            alt.Chart(bars)
            .mark_bar()
            .encode(
                y=alt.Y("stage:N", sort=alt.SortField("order"), title=None),
                x=alt.X("rows_out:Q", title="rows after stage"),
                tooltip=["stage", "rows_in", "rows_out", "dropped", "seconds"],
            )
        )
        st.altair_chart(chart, width="stretch")
        st.dataframe(funnel, hide_index=True)
        st.subheader("Drop reasons")
        st.dataframe(data.drop_reasons(str(run)), hide_index=True)
        langs = data.languages(str(run))
        if not langs.empty:
            st.subheader("Rows per language, in and kept")
            st.dataframe(langs, hide_index=True)
            st.bar_chart(langs, x="language", y=["rows_in", "rows_out"], stack=False)


st.title("Curation funnel")
with ui.friendly():
    found = ui.runs()
    ui.need(found.curations, "curation run", ui.CREATE_HINT.format(root=found.root).split("\n")[1])
    runs = list(found.curations)
    if len(runs) == 1:
        st.caption(f"Run {ui.literal(found.label(runs[0]))}")
        show(runs[0])
    else:
        cols = st.columns(2)
        for i, col in enumerate(cols):
            with col:
                run = st.selectbox(f"Run {'AB'[i]}", runs, index=i, format_func=found.label, key=f"run_{i}")
                show(run)
