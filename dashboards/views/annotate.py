"""Annotate limbs: one generated image at a time, labels saved to the audit's label table.

Keyboard-friendly: type the label's number in the box and press Enter (or click a button).
Resumable: images this annotator already labelled are skipped. Safe with two tabs: each tab
labels the image it shows (kept in its session), every label goes through the audit's label API
(append, never rewrite), and a second label by the same annotator wins with a note.
"""

from __future__ import annotations

import getpass

import pandas as pd
import streamlit as st

from t2iscope.dashboards import data, labels, ui
from t2iscope.errors import T2IError

LABELS = ("correct legs", "too few legs", "too many legs", "no subject", "unsure")
LIMB_WORDS = ("limb", "leg", "dog", "bird", "spider", "person")
HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # labels are stored with an audit run"


def candidates(manifest: pd.DataFrame, limbed_only: bool) -> pd.DataFrame:
    """The images to label, in manifest order; limbed subjects only when asked and tagged."""
    if not limbed_only:
        return manifest
    tags = manifest["tags"].astype(str) if "tags" in manifest else ""
    text = manifest["prompt_id"].astype(str) + " " + tags
    hits = manifest[text.str.lower().str.contains("|".join(LIMB_WORDS))]
    return hits if not hits.empty else manifest


def next_image(queue: pd.DataFrame, done: set[str], skipped: set[str]) -> pd.Series | None:
    todo = queue[~queue["image_path"].isin(done | skipped)]
    return None if todo.empty else todo.iloc[0]


st.title("Annotate limbs")
with ui.friendly():
    found = ui.runs()
    ui.need(found.generations, "generation", ui.CREATE_HINT.format(root=found.root).split("\n")[2])
    ui.need(found.audits, "audit run to store labels in", HINT.format(root=found.root))
    gen = ui.pick("Generation", found.generations, key="generation")
    audit = ui.pick("Store labels in audit", found.audits, key="audit")
    annotator = st.sidebar.text_input("Annotator", value=getpass.getuser(), key="annotator").strip()
    limbed_only = st.sidebar.checkbox("Limbed subjects only", value=True, key="limbed_only")
    if not annotator:
        st.info("Enter your name in the sidebar: labels are kept per annotator.")
        st.stop()

    queue = candidates(data.manifest(str(gen), str(found.root)), limbed_only)
    store = labels.load(audit)
    mine = store[store["annotator"] == annotator]
    done = set(mine["image_path"])
    skipped: set[str] = st.session_state.setdefault("skipped", set())
    state = st.session_state
    if state.get("current") is None or state.get("current_run") != (str(gen), annotator):
        row = next_image(queue, done, skipped)
        state.current = None if row is None else row["image_path"]
        state.current_run = (str(gen), annotator)

    if note := state.pop("note", None):
        st.info(note)
    labelled = int(queue["image_path"].isin(done).sum())
    st.progress(
        labelled / max(len(queue), 1),
        text=f"{labelled} of {len(queue)} images labelled by {ui.literal(annotator)}",
    )
    if state.current is None:
        if labelled < len(queue):
            st.info(f"{len(queue) - labelled} image(s) skipped in this session and not labelled yet.")
            if st.button("Revisit skipped images", key="revisit"):
                skipped.clear()
                st.rerun()
        else:
            st.success(f"All {len(queue)} images are labelled by {ui.literal(annotator)}. Thank you!")
        st.stop()

    row = queue[queue["image_path"] == state.current].iloc[0]
    left, right = st.columns([2, 3])
    with left:
        ui.image_cell(row["image_file"], row["image_path"], row["image_problem"])
    with right:
        st.markdown(f"**{ui.literal(row['prompt'])}**")
        made = f"{row['language']} · seed {row['seed']} · cfg {row['cfg_scale']:g} · {row['steps']} steps"
        st.caption(ui.literal(made))
        with st.form("label", clear_on_submit=True, enter_to_submit=True, border=False):
            typed = st.text_input(
                "Label number, then Enter",
                key="typed",
                help=" · ".join(f"{i} = {name}" for i, name in enumerate(LABELS, 1)),
            )
            # Enter submits through the form's first button, so it is the one that reads the number.
            enter = st.form_submit_button("Save number ↵", type="primary")
            clicked = [st.form_submit_button(f"{i} · {name}") for i, name in enumerate(LABELS, 1)]
            skip = st.form_submit_button("Skip for now")

    chosen = next((name for name, hit in zip(LABELS, clicked, strict=True) if hit), None)
    if enter and chosen is None:
        number = typed.strip()
        if number.isdigit() and 1 <= int(number) <= len(LABELS):
            chosen = LABELS[int(number) - 1]
        else:
            st.warning(ui.literal(f"{number!r} is not a label number (1-{len(LABELS)})."))
    if skip:
        skipped.add(state.current)
    if chosen is not None:
        try:
            previous = labels.save(audit, state.current, chosen, annotator)
        except T2IError as exc:
            st.error(f"The label was not saved: {ui.literal(exc)}")
            st.stop()
        state.note = f"Saved **{chosen}** for {ui.literal(state.current)}."
        if previous:
            state.note += (
                f" You had labelled it **{ui.literal(previous)}** before (another tab?); the latest is kept."
            )
    if chosen is not None or skip:
        state.current = None
        st.rerun()
