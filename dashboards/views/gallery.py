"""Generation gallery: a prompt's images as a seed x parameter grid, and one concept across languages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from t2iscope.dashboards import data, ui

# Settings a grid can sweep; A1111's later ones only when the manifest has them (older ones do not)
AXES = ("cfg_scale", "steps", "sampler", "scheduler", "clip_skip", "subseed_strength", "denoising_strength")


def _setting(row: pd.Series, name: str) -> object:
    """A row's value of ``name``, None when the manifest lacks the column or the row the value."""
    value = row.get(name)
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def params(row: pd.Series) -> str:
    """The parameters that made an image, in A1111's order; A1111's later settings only when not default."""
    sampler = str(row["sampler"])
    schedule = _setting(row, "scheduler")
    if schedule and schedule != "Automatic" and not sampler.endswith(f" {schedule}"):
        sampler = f"{sampler} {schedule}"  # A1111's own spelling: DPM++ 2M Karras
    parts = [f"seed {row['seed']}", f"cfg {row['cfg_scale']:g}", f"{row['steps']} steps", sampler]
    if (strength := _setting(row, "subseed_strength")) and (subseed := _setting(row, "subseed")) is not None:
        parts.append(f"variation {int(subseed)} × {strength:g}")
    if (clip_skip := _setting(row, "clip_skip")) and clip_skip > 1:
        parts.append(f"clip skip {clip_skip:g}")
    if _setting(row, "enable_hr") and (scale := _setting(row, "hr_scale")) is not None:
        upscaler, denoise = _setting(row, "hr_upscaler") or "", _setting(row, "denoising_strength")
        parts.append(f"hires ×{scale:g} {upscaler}" + (f" at {denoise:g}" if denoise is not None else ""))
    return " · ".join(parts)


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
    varying = [a for a in AXES if a in concept_rows and concept_rows[a].nunique() > 1] or ["cfg_scale"]
    axis = side.selectbox("Grid columns", varying, key="axis")
    fixed = {  # a row without the setting (hires off: no denoising strength) is no part of its sweep
        a: side.selectbox(a, sorted(concept_rows[a].dropna().unique()), key=f"fix_{a}")
        for a in varying
        if a != axis
    }
    for a, value in fixed.items():
        concept_rows = concept_rows[concept_rows[a] == value]

    rows = concept_rows[concept_rows["language"] == language]
    st.subheader(ui.literal(rows["prompt"].iloc[0] if len(rows) else concept))
    if len(rows) and "negative_prompt" in rows and rows["negative_prompt"].iloc[0]:
        st.caption(f"Negative prompt: {ui.literal(rows['negative_prompt'].iloc[0])}")
    columns = sorted(rows[axis].dropna().unique())
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
