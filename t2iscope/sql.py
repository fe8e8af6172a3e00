"""The one way t2iscope builds DuckDB SQL text: values are bound, names are quoted here.

Rules, in order of preference:

1. A value (threshold, reason string, file name, list of files, output path) is a bound
   parameter: write ``$name`` or ``?`` in the SQL and pass the value to ``execute``/``sql``.
   DuckDB binds parameters in table functions (``read_parquet($files)`` takes a string or a
   list) and in ``COPY ... TO $path``. :class:`Params` hands out ``$p0, $p1, ...`` while SQL is
   assembled from pieces, so fragments written apart can be combined and reused in one query.
   A file a reader reads is bound as :func:`file_name` (or :func:`file_names`) writes it, a
   ``COPY`` target as :func:`out_name` does: DuckDB would take a bound name for a glob.
2. An identifier (a column or alias name that comes from a file) goes through :func:`ident`.
3. Only where DuckDB accepts no parameter (e.g. ``SET temp_directory = '...'``), a string goes
   through :func:`literal`.

Never paste a name, a path or a value into SQL by f-string without one of these.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from t2iscope.errors import DataError


def _no_nul(text: str, what: str) -> str:
    # DuckDB ends names and strings at NUL, so a quoted one would silently mean another.
    if "\0" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    return text


def ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (embedded ``"`` doubled); ValueError on NUL."""
    return '"' + _no_nul(name, "identifier").replace('"', '""') + '"'


def literal(text: str | os.PathLike[str]) -> str:
    """``text`` (or a path) as a single-quoted SQL string (embedded ``'`` doubled); ValueError on NUL.

    Only for the few places DuckDB takes no bound parameter: prefer :class:`Params`.
    """
    return "'" + _no_nul(os.fspath(text), "string").replace("'", "''") + "'"


def out_name(path: str | os.PathLike[str]) -> str:
    """``path`` as DuckDB must be given a place to write (``COPY ... TO``, ``temp_directory``) or,
    through :func:`file_name`, a file to read: a local path made absolute, since DuckDB takes a
    relative ``~/x`` for one in the home folder. A URL (``memory://...``) is left as it is.
    Writing expands no glob characters.
    """
    text = os.fspath(path)
    return text if "://" in text else os.fspath(Path(text).absolute())


def file_name(path: str | os.PathLike[str]) -> str:
    """One concrete file (a path or an fsspec URL) as DuckDB's readers must be given it, bound.

    DuckDB expands ``*``, ``?`` and ``[...]`` in every file name its readers get (``read_parquet``,
    ``read_csv``, ``read_json``, ``con.read_parquet``), bound parameters included: a file in
    ``run[1]/`` is read from ``run1/``, one in ``a?/`` together with ``ab/``'s, one under ``**/``
    with every same-named file of the tree. Its globs spell a literal character as a one-character
    class (``[[]``, ``[*]``, ``[?]``), which is what ``glob.escape`` writes; ``]``, ``{`` and a
    name without glob characters read as they are. DuckDB also splits local paths at ``\\``
    before matching, so no escape survives there: such a path with a glob character is a
    DataError naming it. Paths are made absolute first (:func:`out_name`).
    """
    text = out_name(path)
    if "://" not in text and "\\" in text and _GLOB.search(text):
        shown = text if text.isprintable() else repr(text)[1:-1]  # one line, whatever the name holds
        raise DataError(f"{shown}: DuckDB cannot read a path holding both '\\' and one of * ? [; rename it")
    return glob.escape(text)


def file_names(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """:func:`file_name` of each path, as a list to bind (``read_parquet($files)``)."""
    return [file_name(p) for p in paths]


class Params:
    """Named parameters collected while SQL text is built; pass the instance's ``values`` to DuckDB.

    >>> p = Params()
    >>> sql = f"SELECT * FROM read_parquet({p(['a.parquet'])}) WHERE x < {p(0.5)}"
    >>> sql, p.values
    ('SELECT * FROM read_parquet($p0) WHERE x < $p1', {'p0': ['a.parquet'], 'p1': 0.5})
    >>> p.used('SELECT "$p0" FROM t WHERE x < $p1')
    {'p1': 0.5}
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        """Bind ``value``; returns its placeholder (``$p<n>``) to put in the SQL text."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def used(self, sql: str) -> dict[str, Any]:
        """The values ``sql`` refers to: DuckDB refuses a statement given parameters it does not use.

        Lets one ``Params`` serve several statements built from shared fragments. Quoted names and
        strings are skipped, so a column named ``$p1`` is not taken for a placeholder.
        """
        bare = _QUOTED.sub(" ", sql)
        return {name: self.values[name] for name in dict.fromkeys(re.findall(r"\$(p\d+)\b", bare))}


_GLOB = re.compile(r"[*?[]")  # what makes DuckDB glob a name (its HasGlob)
_QUOTED = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'')


def open_duckdb(config: dict[str, Any] | None = None) -> Any:
    """A DuckDB connection (``duckdb.DuckDBPyConnection``) with ``config``, every one t2iscope opens.

    Known extensions are never downloaded (``autoinstall_known_extensions``): DuckDB would fetch
    one such as httpfs from extensions.duckdb.org in its own C code when a query needs it, and
    t2iscope opens no connection it was not asked for (``t2iscope.offline``). Such a query fails
    with DuckDB's one-line error instead.
    """
    import duckdb

    return duckdb.connect(config={**(config or {}), "autoinstall_known_extensions": False})
