"""The dashboards' entry point: ``streamlit run app.py -- --runs DIR`` (what `t2iscope dashboard` runs).

One router (``st.navigation``) over one file per page; the pages share nothing but ``ui`` and
``data``, so each can be tested alone with ``AppTest``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="t2iscope", page_icon=":material/travel_explore:", layout="wide")

navigation = st.navigation(
    {
        "Runs": [st.Page(PAGES / "overview.py", title="Overview", icon=":material/folder_open:", default=True)],
        "Curate": [
            st.Page(PAGES / "explorer.py", title="Dataset explorer", icon=":material/table_view:", url_path="explorer"),
            st.Page(PAGES / "funnel.py", title="Curation funnel", icon=":material/filter_alt:", url_path="funnel"),
        ],
        "Generate": [st.Page(PAGES / "gallery.py", title="Generation gallery", icon=":material/photo_library:", url_path="gallery")],
        "Audit": [
            st.Page(PAGES / "bias.py", title="Bias", icon=":material/balance:", url_path="bias"),
            st.Page(PAGES / "limbs.py", title="Limbs", icon=":material/accessibility_new:", url_path="limbs"),
            st.Page(PAGES / "annotate.py", title="Annotate limbs", icon=":material/label:", url_path="annotate"),
            st.Page(PAGES / "watermark.py", title="Watermark robustness", icon=":material/water_drop:", url_path="watermark"),
        ],
    }
)
navigation.run()
