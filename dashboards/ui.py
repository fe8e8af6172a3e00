"""What every page shares: the runs folder, run pickers, friendly failures, image cells.

Pages are plain scripts run by ``st.navigation``; each calls ``runs()`` and wraps its body in
``friendly()``, so bad input (an empty folder, a missing table, a corrupt file) becomes a
message on the page instead of a traceback.

Text from files (prompts, captions, folder and column names, error messages naming them) is
shown as text: Streamlit renders Markdown in ``st.markdown``/``caption``/``info``..., in image
captions, widget labels and tooltips, so a prompt holding ``![x](http://host/y)`` would make the
viewer's browser fetch that URL. Such text goes through ``literal()`` on its way into any of
those, or into ``st.text``/``st.code``/``st.dataframe``, which render none.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import streamlit as st

from t2iscope.dashboards.discover import Runs, discover
from t2iscope.dashboards.images import read_image
from t2iscope.errors import T2IError

RUNS_ENV = "T2ISCOPE_RUNS"
CREATE_HINT = """\
t2iscope world make --out {root}/world --rows 2000 --seed 0
t2iscope curate run sd-improved-aesthetics --input {root}/world --out {root}/curated
t2iscope generate suite multilingual --out {root}/gen
t2iscope evaluate run audits.yaml --out {root}/audit"""


def literal(text: object) -> str:
    """Markdown that shows exactly ``text`` (on one line): an inline code span.

    Code spans are the one Markdown construct whose content is never parsed: escaping each
    character would still let GFM turn ``http://...`` and ``www.`` into links, and Streamlit
    its ``:color[...]`` directives, emoji shortcodes and ``$`` math. The fence is one backtick
    longer than any run of backticks in the text; line breaks become spaces.
    """
    body = " ".join(str(text).splitlines())
    if not body:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    # A backtick next to the fence would lengthen it; and CommonMark strips one space from each
    # end when both ends are spaces. A space on each side covers both.
    if "`" in (body[0], body[-1]) or (body[0] == body[-1] == " " and body.strip(" ")):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def runs_dir() -> Path:
    """The folder given as ``streamlit run app.py -- --runs DIR`` (or $T2ISCOPE_RUNS)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs", default=os.environ.get(RUNS_ENV, "runs"))
    args, _ = parser.parse_known_args(sys.argv[1:])
    return Path(args.runs)


@st.cache_data(ttl=30, show_spinner=False)
def _discover(root: str) -> Runs:
    return discover(root)


def runs() -> Runs:
    return _discover(str(runs_dir()))


@contextlib.contextmanager
def friendly() -> Iterator[None]:
    """Turn any failure in the block into an error box naming what went wrong."""
    try:
        yield
    except T2IError as exc:
        st.error(literal(exc))  # messages name files, columns and values from the runs folder
    except Exception as exc:  # a page must never show a traceback to the person looking at it
        st.error(f"This page could not be drawn: {literal(f'{type(exc).__name__}: {exc}')}")


def need(paths: Sequence[Path], what: str, command: str) -> None:
    """Stop the page with a hint when the runs folder holds no run of the kind it shows."""
    if not paths:
        st.info(f"No {what} under {literal(runs_dir())}. Create one with:")
        st.code(command, language="bash")
        st.stop()


def pick(label: str, paths: Sequence[Path], key: str) -> Path:
    """A run picker in the sidebar (shown only when there is a choice)."""
    if len(paths) == 1:
        return paths[0]
    return st.sidebar.selectbox(label, list(paths), format_func=runs().label, key=key)


def image_cell(
    path: str | Path | None, caption: str, problem: str | None = None, width: int | str = "stretch"
) -> None:
    """One image with its caption (plain text), or a placeholder saying why it cannot be shown.

    ``problem`` is why there is no path to show (a manifest row pointing out of the runs folder).
    """
    if problem:
        st.warning(literal(problem))
    data = read_image(str(path)) if path else None
    if data is None:
        reason = "no image" if path is None else f"unreadable image: {Path(path).name}"
        st.caption(f"⚠ {literal(reason)}\n\n{literal(caption)}")
    else:
        st.image(data, caption=literal(caption), width=width)
