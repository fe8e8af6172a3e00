"""Image quality: FD or CMMD against CLIPScore across guidance scales (the report's trade-off
points, ``report_quality.tradeoff_points``), every metric per setting with n and intervals, and a
generated image beside its nearest reference images."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from t2iscope.dashboards import audit_view, data, images, ui
from t2iscope.dashboards.discover import Runs
from t2iscope.errors import DataError
from t2iscope.evaluate.report_html import with_columns
from t2iscope.evaluate.report_quality import tradeoff_points

HINT = (
    "t2iscope generate suite cfg-steps --out {root}/gen/cfg-steps\n"
    "t2iscope evaluate run audits.yaml --out {root}/audit   # with a quality audit over that generation"
)
DISTANCES = {"cmmd": "CMMD", "fd": "FD"}
NEAREST = "nearest_reference"
THUMB = 160  # px: neighbours are compared side by side, not in detail
SETTINGS = ("cfg_scale", "steps", "sampler", "seed")


def locate(value: object, root: Path) -> Path | None:
    """A file the audit named (as written where it ran: relative to that folder, or absolute),
    inside the runs folder ``root``: as written, else the longest tail of it under ``root`` (a
    runs folder served from elsewhere or moved). None when neither exists inside ``root``."""
    if not isinstance(value, str) or not value:
        return None
    parts = Path(value).parts
    for base, rest in [(".", value), *((root, str(Path(*parts[i:]))) for i in range(1, len(parts)))]:
        found = images.inside(root, base, rest)
        if found is not None and found.exists():
            return found
    return None


def reference_image(label: str, root: Path) -> bytes | None:
    """PNG thumbnail of a reference image the audit named: ``SHARD.tar#KEY`` or ``SHARD.parquet#KEY``
    (img2dataset's shards, read by ``images.stored_image``) or an image file; None if not found."""
    shard, sep, key = label.rpartition("#")
    if sep and Path(shard).suffix in (".tar", ".parquet"):
        found = locate(shard, root)
        return images.stored_image(str(found.with_suffix(".parquet")), key) if found else None
    found = locate(label, root)
    return images.read_image(str(found)) if found else None


def tradeoff_chart(points: pd.DataFrame, distance: str, x_title: str, y_title: str) -> alt.LayerChart:
    """The points of one distance: a line per run and curve in cfg order, 95% intervals both ways."""
    plot = points.assign(
        series=[
            r if c == audit_view.ALL else f"{r} · {c}"
            for r, c in zip(points["run"], points["curve"], strict=True)
        ],
        cfg=[f"cfg {v:g}" for v in points["cfg_scale"]],
    )
    free = alt.Scale(zero=False)  # the curve's spread, not its distance from 0
    x = alt.X("clip_score:Q", title=x_title, scale=free)
    y = alt.Y("distance:Q", title=y_title, scale=free)
    color = alt.Color("series:N", title="run · curve")
    tooltip = ["series:N", "cfg_scale:Q", "clip_score:Q", "distance:Q", "n:Q"]
    base = alt.Chart(plot)
    line = base.mark_line(point=True).encode(x, y, color, order="cfg_scale:Q", tooltip=tooltip)
    x_bars = base.mark_errorbar().encode(alt.X("clip_score_low:Q", title=x_title), x2="clip_score_high", y=y)
    y_bars = base.mark_errorbar().encode(x, alt.Y("distance_low:Q", title=y_title), y2="distance_high")
    labels = base.mark_text(align="left", dx=6, dy=-6, fontSize=10).encode(x, y, text="cfg:N")
    return alt.layer(line, x_bars.encode(color), y_bars.encode(color), labels).properties(
        title=f"{DISTANCES[distance]} vs CLIPScore across guidance scales (95% intervals)"
    )


def tradeoff(rows: pd.DataFrame, root: Path) -> None:
    st.subheader("Closeness to the data vs prompt adherence, across guidance scales")
    distance = st.radio(
        "Distance", list(DISTANCES), format_func=DISTANCES.get, horizontal=True, key="distance"
    )
    points = tradeoff_points(rows, distance)
    if points.empty:
        st.info("No generation in this audit varies cfg_scale. Sweep it with:")
        st.code(HINT.format(root=root).split("\n")[0], language="bash")
        return
    encoder = {m: rows.loc[rows["metric"] == m, "encoder"].dropna() for m in ("clip_score", distance)}
    name = {m: str(e.iloc[0]) if len(e) else "?" for m, e in encoder.items()}
    x_title = f"CLIPScore ({name['clip_score']})"
    y_title = f"{DISTANCES[distance]} ({name[distance]}), lower is closer"
    st.altair_chart(tradeoff_chart(points, distance, x_title, y_title), width="stretch")
    shown = points.rename(columns=lambda c: c.replace("distance", distance))
    st.dataframe(shown, hide_index=True)


def _settings(run: str, image: Path, found: Runs, root: Path) -> str:
    """The prompt and settings of a generated image, from its generation's manifest ('' if none)."""
    for gen in (g for g in found.generations if g.name == run):
        try:
            df = data.manifest(str(gen), str(root))
        except DataError:
            continue
        hit = df[df["image_file"] == str(image)]
        if len(hit):
            row = hit.iloc[0]
            return " · ".join([str(row["prompt"]), *(f"{s} {row[s]}" for s in SETTINGS if s in row)])
    return ""


def neighbours(nearest: pd.DataFrame, found: Runs, root: Path) -> None:
    st.subheader("Nearest reference images of a generated image")
    if nearest.empty:
        st.info("This audit kept no nearest reference images (quality's neighbours: 0).")
        return
    encoder = nearest["encoder"].dropna()
    st.caption(
        f"Cosine distance in {ui.literal(encoder.iloc[0] if len(encoder) else '?')} features. "
        "Images are listed closest first: a near-zero distance is a near-copy of a training image."
    )
    runs = sorted(nearest["run"].astype(str).unique())
    run = st.selectbox("Generation", runs, key="generation") if len(runs) > 1 else runs[0]
    of_run = nearest[nearest["run"].astype(str) == run]
    first = of_run[of_run["rank"] == of_run["rank"].min()].sort_values("value")
    distance = dict(zip(first["level"], first["value"], strict=True))
    image = st.selectbox(
        "Generated image",
        list(distance),
        format_func=lambda f: f"{Path(f).name} · nearest {distance[f]:.3f}",
        key="image",
    )
    file = locate(image, root)
    columns = st.columns(1 + int(of_run["rank"].max()))
    with columns[0]:
        caption = f"generated: {_settings(run, file, found, root) or Path(image).name}" if file else ""
        problem = None if file else f"{image}: not found inside the runs folder; not shown"
        ui.image_cell(file, caption, problem, width=THUMB)
    near = of_run[of_run["level"] == image].sort_values("rank")
    for column, row in zip(columns[1:], near.itertuples(), strict=False):  # ranks 1..k; k may vary
        with column:
            said = f"#{row.rank:g} · distance {row.value:.3f} · {row.reference}"
            thumbnail = reference_image(str(row.reference), root)
            if thumbnail is None:
                st.caption(f"⚠ {ui.literal(f'no readable image: {said}')}")
            else:
                st.image(thumbnail, caption=ui.literal(said), width=THUMB)


st.title("Image quality")
with ui.friendly():
    found = ui.runs()
    ui.need(found.audits, "audit run", HINT.format(root=found.root))
    rows = data.audit_rows(tuple(map(str, found.audits)), ("quality",))
    if rows.empty:
        st.info("No audit run here ran the quality audit. Create one with:")
        st.code(HINT.format(root=found.root), language="bash")
        st.stop()
    audit_runs = sorted(rows["audit_run"].astype(str).unique()) if "audit_run" in rows else []
    if len(audit_runs) > 1:
        chosen = st.sidebar.selectbox("Audit run", audit_runs, key="audit_run")
        rows = rows[rows["audit_run"].astype(str) == chosen]
    table = f"{audit_runs[0] if len(audit_runs) == 1 else 'an audit run'}/quality.parquet"
    try:
        rows = with_columns(
            rows.drop(columns=["audit_run"], errors="ignore"),
            "by", "level", "curve", "encoder",
            optional=("rank", "reference"),
        )  # fmt: skip
    except KeyError as exc:
        raise DataError(f"{table}: not a table the quality audit writes (no {exc} column)") from None
    ref = rows["n_reference"].dropna() if "n_reference" in rows else pd.Series(dtype=float)
    if len(ref):
        st.caption(
            f"Against a reference set of {int(ref.max()):,} images; every value with its n and 95% interval."
        )
    tradeoff(rows, found.root)

    st.subheader("Every metric by setting")
    stats = rows[rows["metric"] != NEAREST]
    metric = audit_view.pick_metric(stats, ["cmmd", "fd", "clip_score"], key="metric")
    if metric:
        audit_view.show(stats, metric, ["level", "q"], ["run"], pins={"by": "cfg_scale"}, key="quality")
    audit_view.skipped_note(rows)
    neighbours(rows[rows["metric"] == NEAREST], found, found.root)
