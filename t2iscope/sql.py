"""The one way t2iscope builds DuckDB SQL text: values are bound, names are quoted here.

Rules, in order of preference:

1. A value (threshold, reason string, file name, list of files, output path) is a bound
   parameter: write ``$name`` or ``?`` in the SQL and pass the value to ``execute``/``sql``.
   DuckDB binds parameters in table functions (``read_parquet($files)`` takes a string or a
   list) and in ``COPY ... TO $path``. :class:`Params` hands out ``$p0, $p1, ...`` while SQL is
   assembled from pieces, so fragments written apart can be combined and reused in one query.
2. An identifier (a column or alias name that comes from a file) goes through :func:`ident`.
3. Only where DuckDB accepts no parameter (e.g. ``SET temp_directory = '...'``), a string goes
   through :func:`literal`.

Never paste a name, a path or a value into SQL by f-string without one of these.
"""

from __future__ import annotations

import os
import re
from typing import Any


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


_QUOTED = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'')
