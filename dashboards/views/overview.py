"""Overview: what the runs folder holds, or what to run to fill it."""

from __future__ import annotations

import streamlit as st

from t2iscope.dashboards import ui

st.title("t2iscope runs")
with ui.friendly():
    found = ui.runs()
    st.caption(f"Runs folder: `{found.root}`")
    if not found.root.is_dir():
        st.warning(f"`{found.root}` is not a folder. Start the dashboard on the folder your runs are in.")
    elif found.empty:
        st.info(
            "This folder holds no runs yet. Create some with:\n\n```\n"
            + ui.CREATE_HINT.format(root=found.root)
            + "\n```\nthen reload this page."
        )
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
                col.write(f"`{found.label(path)}`")
