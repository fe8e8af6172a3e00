"""The dashboards' entry point: ``streamlit run app.py -- --runs DIR`` (what `t2iscope dashboard` runs).

One router (``st.navigation``) over one file per page; the pages share nothing but ``ui`` and
``data``, so each can be tested alone with ``AppTest``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# Not "pages/": Streamlit would also list that folder itself, beside (and fighting) st.navigation.
PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="t2iscope", page_icon=":material/travel_explore:", layout="wide")


def page(file: str, title: str, icon: str, **kwargs: object) -> st.Page:
    return st.Page(PAGES / file, title=title, icon=f":material/{icon}:", **kwargs)


navigation = st.navigation(
    {
        "Runs": [page("overview.py", "Overview", "folder_open", default=True)],
        "Curate": [
            page("explorer.py", "Dataset explorer", "table_view", url_path="explorer"),
            page("funnel.py", "Curation funnel", "filter_alt", url_path="funnel"),
        ],
        "Generate": [page("gallery.py", "Generation gallery", "photo_library", url_path="gallery")],
        "Audit": [
            page("bias.py", "Bias", "balance", url_path="bias"),
            page("limbs.py", "Limbs", "accessibility_new", url_path="limbs"),
            page("annotate.py", "Annotate images", "label", url_path="annotate"),
            page("watermark.py", "Watermark robustness", "water_drop", url_path="watermark"),
            page("quality.py", "Image quality", "insights", url_path="quality"),
        ],
    }
)
navigation.run()
