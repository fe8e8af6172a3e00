"""Dataset explorer: filter a world or a curation run and look at what is left.

Everything on the page is an aggregate (count, histogram, domain top-N and coverage curve) or a
24-row sample, so it paints quickly on a million rows.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import streamlit as st

from t2iscope.dashboards import data, ui
from t2iscope.dashboards.images import world_image

st.title("Dataset explorer")
with ui.friendly():
    found = ui.runs()
    sources = [data.Dataset("curation", str(p)) for p in found.curations]
    sources += [data.Dataset("world", str(p)) for p in found.worlds]
    ui.need(sources, "world or curation run", ui.CREATE_HINT.format(root=found.root).split("\n")[0])
    ds = st.sidebar.selectbox(
        "Dataset", sources, format_func=lambda d: f"{d.kind}: {found.label(Path(d.path))}", key="dataset"
    )

    side = st.sidebar
    lang_col = data.language_column(ds)
    everything = data.summary(ds, data.Filters())
    languages: tuple[str, ...] = ()
    if lang_col:
        options = everything.languages["language"].dropna().tolist()
        languages = tuple(side.multiselect("Language", options, key="languages"))
    domains: tuple[str, ...] = ()
    if "domain" in data.schema(ds):
        top = everything.domains["domain"].dropna().head(200).tolist()
        domains = tuple(side.multiselect("Domain (top 200)", top, key="domains"))
    min_width = side.number_input("Min width", min_value=0, value=0, step=64, key="min_width")
    min_height = side.number_input("Min height", min_value=0, value=0, step=64, key="min_height")
    text = side.text_input("Caption contains", key="text")
    ranges: tuple[tuple[str, float, float], ...] = ()
    score = side.selectbox("Score filter", ["(none)", *data.score_columns(ds)], key="score")
    if score != "(none)":
        lo, hi = data.bounds(ds, score)
        if hi > lo:
            low, high = side.slider(score, lo, hi, (lo, hi), key=f"range_{score}")
            ranges = ((score, low, high),)

    filters = data.Filters(languages, domains, int(min_width), int(min_height), ranges, text)
    selected = data.summary(ds, filters)
    total, rows = everything.rows, selected.rows
    st.metric("Rows selected", f"{rows:,}", help=f"of {total:,} rows in {ui.literal(ds.path)}")
    if rows == 0:
        st.info("No rows match these filters.")
        st.stop()

    thumbs, hists, doms = st.tabs(["Thumbnails", "Histograms", "Domains"])
    with thumbs:
        sample = data.sample(ds, filters, 24)
        worlds = [str(p) for p in found.worlds]
        paths = (
            [world_image(worlds, h, found.root) for h in sample["hash"]]
            if "hash" in sample
            else [None] * len(sample)
        )
        if not any(paths):
            st.info("No rendered images for these rows (a world made with `--no-images`?).")
        cols = st.columns(6)
        for i, (path, row) in enumerate(
            zip(paths if any(paths) else [], sample.to_dict("records"), strict=False)
        ):
            text = str(row.get("TEXT", ""))[:60]
            caption = f"{text} · {row.get(lang_col or '', '')} · {row.get('WIDTH')}x{row.get('HEIGHT')}"
            with cols[i % 6]:
                ui.image_cell(path, caption)
    with hists:
        numeric = data.numeric_columns(ds)
        default = next((numeric.index(c) for c in data.score_columns(ds) if c in numeric), 0)
        column = st.selectbox("Column", numeric, index=default, key="hist_column")
        hist = data.histogram(ds, column, filters)
        chart = (
            alt.Chart(hist)
            .mark_bar()
            .encode(x=alt.X("start:Q", bin="binned", title=column), x2="stop:Q", y=alt.Y("rows:Q"))
        )
        st.altair_chart(chart, width="stretch")
        if lang_col:
            st.subheader("Rows per language")
            st.dataframe(selected.languages, hide_index=True)
    with doms:
        if "domain" not in data.schema(ds):
            st.info("This dataset has no `domain` column.")
        else:
            left, right = st.columns(2)
            with left:
                st.subheader("Top domains")
                counts = selected.domains
                st.dataframe(counts.head(25), hide_index=True)
                st.caption(f"{len(counts):,} domains")
            with right:
                st.subheader("Coverage curve")
                cov = data.domain_coverage(counts)
                chart = (
                    alt.Chart(cov)
                    .mark_line(point=True)
                    .encode(
                        x=alt.X("top_domains:Q", scale=alt.Scale(type="log"), title="top k domains"),
                        y=alt.Y("coverage:Q", axis=alt.Axis(format="%"), title="share of rows"),
                    )
                )
                st.altair_chart(chart, width="stretch")
