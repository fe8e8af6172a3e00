"""The annotation page's view of the audits' human-label table (owned by t2iscope.evaluate).

The dashboards never write labels themselves: ``save`` calls evaluate's ``add_label``, which
appends, so two tabs labelling at once both land. Reading keeps each annotator's latest label
per image, which is what "a label written twice keeps the latest" means.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from t2iscope.evaluate.labels import add_label, load_labels

COLUMNS = ("image_path", "label", "annotator")


def load(audit_dir: Path) -> pd.DataFrame:
    """Every annotator's latest label per image in ``audit_dir``'s label table."""
    df = pd.DataFrame(load_labels(audit_dir))
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    return df.drop_duplicates(["image_path", "annotator"], keep="last").reset_index(drop=True)


def save(audit_dir: Path, image_path: str, label: str, annotator: str) -> str | None:
    """Store a label; return the annotator's previous label of this image, if there was one."""
    current = load(audit_dir)
    prior = current[(current["image_path"] == image_path) & (current["annotator"] == annotator)]
    add_label(audit_dir, image_path, label, annotator)
    return None if prior.empty else str(prior["label"].iloc[-1])
