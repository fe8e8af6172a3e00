"""Overview: what the runs folder holds, or what to run to fill it."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import ui
from t2iscope.evaluate.folder import UNFINISHED

st.title("t2iscope runs")
with ui.friendly():
    found = ui.runs()
    st.caption(f"Runs folder: {ui.literal(found.root)}")
    if not found.root.is_dir():
        where = ui.literal(found.root)
        st.warning(f"{where} is not a folder. Start the dashboard on the folder your runs are in.")
    elif found.empty:
        st.info("This folder holds no runs yet. Create some with these, then reload this page:")
        st.code(ui.CREATE_HINT.format(root=found.root), language="bash")
    else:
        kinds = {
            "Worlds": found.worlds,
            "Curation runs": found.curations,
            "Generations": found.generations,
            "Audits": found.audits,
        }
        for col, (name, paths) in zip(st.columns(len(kinds)), kinds.items(), strict=True):
            col.metric(name, len(paths))
            for path in paths:
                col.text(found.label(path))
        for path in found.unfinished:  # as `evaluate report` says it; no page reads these
            st.warning(ui.literal(f"{found.label(path)}: {UNFINISHED}"))
