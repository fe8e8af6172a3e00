"""Annotate images: one attribute of one generated image at a time, saved to the audit's label table.

The attribute (t2iscope.generate.attributes: subject, color, legs, count, culture, gender,
watermark, present, ...) is picked in the sidebar; ``legs`` by default. Answers follow its kind:
a count (0-8 buttons for legs), yes / no for a flag, or for a word the words the generation's
prompts expect for it, ``other`` and any word typed; ``unclear`` always.

Keyboard-friendly: type the answer in the box and press Enter (or click a button). Resumable per
annotator and attribute: images this annotator already labelled for it are skipped. Safe with two
tabs: each tab labels the image it shows (kept in its session), every label goes through the
audit's label API (append, never rewrite), and a second label by the same annotator wins with a note.
"""

from __future__ import annotations

import getpass
import re

import pandas as pd
import streamlit as st

from t2iscope.dashboards import data, labels, ui
from t2iscope.errors import T2IError
from t2iscope.generate.attributes import ATTRIBUTES, NO, OTHER, UNCLEAR, YES, Attribute

DEFAULT = "legs"
QUICK = {"legs": range(9)}  # one button per count; other counts are typed
BOX = {
    "number": ("Count, then Enter", "A whole number; u = unclear."),
    "flag": ("y / n / u, then Enter", "y = yes · n = no · u = unclear"),
    "word": ("Word, then Enter", "What you see, in English; or click a word below."),
}
MAX_WORD = 100
HINT = "t2iscope evaluate run audits.yaml --out {root}/audit   # labels are stored with an audit run"


def next_image(queue: pd.DataFrame, done: set[str], skipped: set[str]) -> pd.Series | None:
    todo = queue[~queue["image_path"].isin(done | skipped)]
    return None if todo.empty else todo.iloc[0]


def answers(attribute: Attribute, words: list[str]) -> list[tuple[str, str]]:
    """``(button label, label stored)`` for the answer buttons of ``attribute``."""
    if attribute.kind == "number":
        quick = [(str(n), str(n)) for n in QUICK.get(attribute.name, ())]
    elif attribute.kind == "flag":
        quick = [(YES, YES), (NO, NO)]
    else:  # the words come from the manifest: shown literally
        quick = [(ui.literal(w), w) for w in words if w not in (OTHER, UNCLEAR)] + [(OTHER, OTHER)]
    return [*quick, (UNCLEAR, UNCLEAR)]


def parse(attribute: Attribute, typed: str) -> tuple[str | None, str | None]:
    """``(label, None)`` for an answer typed in the box, or ``(None, why not)``."""
    text = " ".join(typed.split())
    low = text.lower()
    if low in ("u", UNCLEAR):
        return UNCLEAR, None
    if attribute.kind == "number":
        if re.fullmatch(r"[0-9]{1,4}", text):
            return str(int(text)), None
        return None, f"{text!r} is not a count (a whole number, or u for unclear)."
    if attribute.kind == "flag":
        flag = {"y": YES, YES: YES, "n": NO, NO: NO}.get(low)
        return (flag, None) if flag else (None, f"{text!r} is not an answer (y, n or u).")
    if not text or len(text) > MAX_WORD:
        return None, f"Type a word (at most {MAX_WORD} characters), or click an answer."
    return low, None


st.title("Annotate images")
with ui.friendly():
    found = ui.runs()
    ui.need(found.generations, "generation", ui.CREATE_HINT.format(root=found.root).split("\n")[2])
    ui.need(found.audits, "audit run to store labels in", HINT.format(root=found.root))
    gen = ui.pick("Generation", found.generations, key="generation")
    audit = ui.pick("Store labels in audit", found.audits, key="audit")
    annotator = st.sidebar.text_input("Annotator", value=getpass.getuser(), key="annotator").strip()
    names = list(ATTRIBUTES)
    name = st.sidebar.selectbox("Attribute", names, index=names.index(DEFAULT), key="attribute")
    attribute = ATTRIBUTES[name]
    if not annotator:
        st.info("Enter your name in the sidebar: labels are kept per annotator.")
        st.stop()

    manifest = data.manifest(str(gen), str(found.root))
    queue = labels.queue(manifest, name)
    store = labels.load(audit)
    mine = store[(store["annotator"] == annotator) & (store["attribute"] == name)]
    done = set(mine["image_path"])
    state = st.session_state
    run = (str(gen), annotator, name)
    skipped: set[str] = state.setdefault("skipped", {}).setdefault(run, set())
    if state.get("current") is None or state.get("current_run") != run:
        row = next_image(queue, done, skipped)
        state.current = None if row is None else row["image_path"]
        state.current_run = run

    st.subheader(attribute.question)
    if note := state.pop("note", None):
        st.info(note)
    labelled = int(queue["image_path"].isin(done).sum())
    st.progress(
        labelled / max(len(queue), 1),
        text=f"{labelled} of {len(queue)} images labelled for {name} by {ui.literal(annotator)}",
    )
    if state.current is None:
        if labelled < len(queue):
            st.info(f"{len(queue) - labelled} image(s) skipped in this session and not labelled yet.")
            if st.button("Revisit skipped images", key="revisit"):
                skipped.clear()
                st.rerun()
        else:
            st.success(
                f"All {len(queue)} images are labelled for {name} by {ui.literal(annotator)}. Thank you!"
            )
        st.stop()

    row = queue[queue["image_path"] == state.current].iloc[0]
    options = answers(attribute, labels.suggestions(manifest, name) if attribute.kind == "word" else [])
    left, right = st.columns([2, 3])
    with left:
        ui.image_cell(row["image_file"], row["image_path"], row["image_problem"])
    with right:
        st.markdown(f"**{ui.literal(row['prompt'])}**")
        made = f"{row['language']} · seed {row['seed']} · cfg {row['cfg_scale']:g} · {row['steps']} steps"
        st.caption(ui.literal(made))
        with st.form("label", clear_on_submit=True, enter_to_submit=True, border=False):
            box, tip = BOX[attribute.kind]
            typed = st.text_input(box, key="typed", help=tip)
            # Enter submits through the form's first button, so it is the one that reads the box.
            enter = st.form_submit_button("Save ↵", type="primary", key="enter")
            clicked = [st.form_submit_button(text, key=f"answer-{i}") for i, (text, _) in enumerate(options)]
            skip = st.form_submit_button("Skip for now", key="skip")

    chosen = next((value for (_, value), hit in zip(options, clicked, strict=True) if hit), None)
    if enter and chosen is None:
        chosen, problem = parse(attribute, typed)
        if problem:
            st.warning(ui.literal(problem))
    if skip:
        skipped.add(state.current)
    if chosen is not None:
        try:
            previous = labels.save(audit, state.current, chosen, annotator, name)
        except T2IError as exc:
            st.error(f"The label was not saved: {ui.literal(exc)}")
            st.stop()
        state.note = f"Saved {name} **{ui.literal(chosen)}** for {ui.literal(state.current)}."
        if previous:
            state.note += (
                f" You had labelled it **{ui.literal(previous)}** before (another tab?); the latest is kept."
            )
    if chosen is not None or skip:
        state.current = None
        st.rerun()
