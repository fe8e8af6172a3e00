"""Errors that reach users as one line, never as a traceback."""

from __future__ import annotations


class T2IError(Exception):
    """A problem with the user's input or environment, worded for the user.

    The CLI prints ``t2iscope: error: <message>`` and exits with ``exit_code``. Name the file,
    row or field involved in the message: that is what makes it actionable.
    """

    exit_code = 1


class ConfigError(T2IError):
    """Invalid recipe, suite, option or parameter: detected before any work starts."""

    exit_code = 2


class DataError(T2IError):
    """Unreadable or malformed input data (file, row, column)."""
