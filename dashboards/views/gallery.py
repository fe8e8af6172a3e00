"""Generation gallery: a prompt's images as a seed x parameter grid, and one concept across languages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from t2iscope.dashboards import data, ui

AXES = ("cfg_scale", "steps", "sampler")


def params(row: pd.Series) -> str:
    """The parameters that made an image, in A1111's order."""
    return f"seed {row['seed']} · cfg {row['cfg_scale']:g} · {row['steps']} steps · {row['sampler']}"


st.title("Generation gallery")
with ui.friendly():
    found = ui.runs()
    ui.need(found.generations, "generation", ui.CREATE_HINT.format(root=found.root).split("\n")[2])
    gen = ui.pick("Generation", found.generations, key="generation")
    df = data.manifest(str(gen), str(found.root))
    if df.empty:
        st.info(f"{ui.literal(found.label(gen))} has an empty manifest.")
        st.stop()
    side = st.sidebar
    if "suite" in df and df["suite"].nunique() > 1:
        df = df[df["suite"] == side.selectbox("Suite", sorted(df["suite"].unique()), key="suite")]
    concept = side.selectbox("Prompt", sorted(df["prompt_id"].astype(str).unique()), key="prompt_id")
    concept_rows = df[df["prompt_id"].astype(str) == concept]
    langs = sorted(concept_rows["language"].unique())
    language = side.selectbox(
        "Language", langs, index=langs.index("en") if "en" in langs else 0, key="language"
    )
    varying = [a for a in AXES if concept_rows[a].nunique() > 1] or ["cfg_scale"]
    axis = side.selectbox("Grid columns", varying, key="axis")
    fixed = {
        a: side.selectbox(a, sorted(concept_rows[a].unique()), key=f"fix_{a}") for a in varying if a != axis
    }
    for a, value in fixed.items():
        concept_rows = concept_rows[concept_rows[a] == value]

    rows = concept_rows[concept_rows["language"] == language]
    st.subheader(ui.literal(rows["prompt"].iloc[0] if len(rows) else concept))
    if len(rows) and "negative_prompt" in rows and rows["negative_prompt"].iloc[0]:
        st.caption(f"Negative prompt: {ui.literal(rows['negative_prompt'].iloc[0])}")
    columns = sorted(rows[axis].unique())
    widths = [1] + [3] * len(columns) + [max(0, 12 - 3 * len(columns))]  # cells stay thumbnail-sized
    header = st.columns(widths)
    header[0].markdown("**seed**")
    for col, value in zip(header[1:], columns, strict=False):
        col.markdown(f"**{axis} = {ui.literal(value)}**")
    for seed in sorted(rows["seed"].unique()):
        cells = st.columns(widths)
        cells[0].text(str(seed))
        for col, value in zip(cells[1:], columns, strict=False):
            hit = rows[(rows["seed"] == seed) & (rows[axis] == value)]
            with col:
                if hit.empty:
                    st.caption("—")
                else:
                    cell = hit.iloc[0]
                    ui.image_cell(cell["image_file"], params(cell), cell["image_problem"])

    st.subheader("Across languages")
    first = concept_rows.sort_values(["language", "seed", axis]).groupby("language").head(1)
    if len(first) < 2:
        st.caption("This prompt was generated in one language only.")
    for col, (_, row) in zip(st.columns(max(len(first), 4)), first.iterrows(), strict=False):
        with col:
            caption = f"{row['language']}: {row['prompt']} · {params(row)}"
            ui.image_cell(row["image_file"], caption, row["image_problem"])
