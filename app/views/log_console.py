"""The log console: what was read, skipped and why, with the time, newest first."""

from __future__ import annotations

import datetime as dt
import html

import panel as pn
import param

_COLOURS = {"info": "#1b5e20", "warning": "#8a5300", "error": "#b71c1c"}


class LogConsole(pn.viewable.Viewer):
    """A session's log of reads, skips and errors; ``write`` is the reporter given to the data layer."""

    entries = param.List(default=[], doc="(UTC time, level, message) tuples, oldest first")
    max_entries = param.Integer(default=500, bounds=(10, None), doc="older entries are dropped beyond this")

    def write(self, level: str, message: str) -> None:
        """Add one entry (level: info, warning or error)."""
        now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
        self.entries = ([*self.entries, (now, level, str(message))])[-self.max_entries :]

    def messages(self, level: str | None = None) -> list[str]:
        """The messages (of one level, or all), oldest first."""
        return [m for _, lv, m in self.entries if level is None or lv == level]

    @param.depends("entries")
    def _html(self):
        if not self.entries:
            body = "<i>Nothing read yet.</i>"
        else:
            rows = [
                f'<div><span style="color:#666">{t}</span> '
                f'<b style="color:{_COLOURS.get(lv, "#333")}">{lv.upper()}</b> {html.escape(m)}</div>'
                for t, lv, m in reversed(self.entries)
            ]
            body = "".join(rows)
        return pn.pane.HTML(
            f'<div class="fumarole-log" style="font:12px monospace;max-height:220px;overflow-y:auto">{body}</div>',
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return pn.Column(self._html, sizing_mode="stretch_width")
