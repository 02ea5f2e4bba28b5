"""The console of the light commands (``validate``, ``status``, ``transfer``, ``groups``,
``baselines``)."""

from __future__ import annotations

import sys

from rich.console import Console


def plain_console() -> Console:
    """The console of the light commands. Markup is off: names, labels, columns and paths come
    from the user (a study named ``a[/x]b`` crashed `validate`); styles are ``Text`` styles."""
    plain = {"markup": False, "emoji": False}
    return Console(**plain) if sys.stdout.isatty() else Console(width=200, **plain)
