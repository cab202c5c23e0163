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

    def _body(self) -> str:
        if not self.entries:
            return '<div class="fumarole-log" role="log"><i>Nothing read yet.</i></div>'
        rows = [
            f'<div><span style="color:#666">{t}</span> '
            f'<b style="color:{_COLOURS.get(lv, "#333")}">{lv.upper()}</b> {html.escape(m)}</div>'
            for t, lv, m in reversed(self.entries)
        ]
        return (f'<div class="fumarole-log" role="log" style="font:12px monospace;max-height:220px;overflow-y:auto">'
                f'{"".join(rows)}</div>')

    @param.depends("entries", watch=True)
    def _refresh(self) -> None:
        # one pane, its text replaced: a new line changes one property of one model (it used to build a new pane,
        # hence a new Bokeh model sent to the page, for every line)
        if self._pane is not None:
            self._pane.object = self._body()

    _pane = None

    def __panel__(self):
        if self._pane is None:
            self._pane = pn.pane.HTML(self._body(), sizing_mode="stretch_width")
        return self._pane
