"""Curation funnel: rows in and out of every stage, with drop reasons; two runs side by side.

A download folder (``curate download``) shows its post-download stages, and a near_dedup stage
its example pairs side by side.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import streamlit as st

from t2iscope.dashboards import data, images, ui


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
        near_duplicates(run)


MEASURES = {"phash": "{:g} bits apart", "semantic": "cosine distance {:.4f}"}
PAIRS_PER_ROW = 2
THUMB = 192  # px: near duplicates are judged side by side, not in detail


def near_duplicates(run: Path) -> None:
    """A download's near_dedup example pairs: each removed image beside the kept one it repeats."""
    pairs = data.near_duplicates(str(run), str(ui.runs_dir()))
    if pairs.empty:
        return
    st.subheader("Near duplicates: each removed image, then the kept image it repeats")
    rows = list(pairs.itertuples())
    for start in range(0, len(rows), PAIRS_PER_ROW):
        cols = iter(st.columns(2 * PAIRS_PER_ROW))
        for pair in rows[start : start + PAIRS_PER_ROW]:
            measure = MEASURES.get(pair.by, "distance {:g}").format(pair.distance)
            removed = f"row {pair.row_id} removed ({pair.by}, {measure})"
            for shard, key, what in (
                (pair.removed_shard, pair.removed_key, removed),
                (pair.kept_shard, pair.kept_key, f"row {pair.duplicate_of} kept"),
            ):
                with next(cols):
                    image = images.stored_image(shard, key) if isinstance(shard, str) else None
                    if image is None:
                        st.caption(f"⚠ {ui.literal(f'no readable image: {what}')}")
                    else:
                        st.image(image, caption=ui.literal(what), width=THUMB)


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
