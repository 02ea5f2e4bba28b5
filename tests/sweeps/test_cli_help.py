"""`sweeps --help` lists each command on a line of its own: its summary is one sentence on one
line (a summary wrapped in the source broke `methods` mid-sentence in the listing)."""

from __future__ import annotations

from sweeps.cli import app
from tests.helpers import cli


def test_every_command_summary_is_one_line_and_the_listing_shows_it_whole():
    listing = cli("--help", env={"COLUMNS": "200"}).stdout
    for command in app.registered_commands:
        summary = (command.callback.__doc__ or "").strip().split("\n\n")[0]
        assert "\n" not in summary, f"{command.callback.__name__}: {summary!r}"
        assert summary.endswith("."), summary
        assert summary in listing, f"{summary!r} not whole in --help"
