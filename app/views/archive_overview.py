"""What an archive holds: granules per product and day, and the files skipped with the reason."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from app.data.archive import Archive, get_archive


class ArchiveOverview(pn.viewable.Viewer):
    """A table of the archive's granules by product and day, and the log of files the index skipped."""

    archive = param.ClassSelector(class_=Archive, doc="the archive shown (default: the served catalogue)")
    refreshes = param.Integer(default=0, doc="how many times the index was refreshed from this page")

    def __init__(self, **params):
        if params.get("archive") is None:
            params["archive"] = get_archive()
        super().__init__(**params)
        self._refresh_button = pn.widgets.Button(label="Rescan archive", color="primary", width=160)
        self._refresh_button.on_click(self._on_refresh)

    def _on_refresh(self, _event=None) -> None:
        self.archive.refresh()
        self.refreshes += 1

    def summary_table(self) -> pd.DataFrame:
        """One row per product and day: granules, first start, last end, orbits (TROPOMI)."""
        self.archive.granules(self.archive.products()[0])  # the index is built on first use
        t = self.archive.index.table
        if t.empty:
            return pd.DataFrame(columns=["product", "day", "granules", "first start (UTC)", "last end (UTC)", "orbits"])
        t["day"] = t["start"].dt.strftime("%Y-%m-%d")
        rows = []
        for (product, day), g in t.groupby(["product", "day"], sort=True):
            orbits = g["orbit"].dropna()
            rows.append({
                "product": product,
                "day": day,
                "granules": len(g),
                "first start (UTC)": g["start"].min().strftime("%H:%M"),
                "last end (UTC)": g["end"].max().strftime("%m-%d %H:%M"),
                "orbits": f"{int(orbits.min())}–{int(orbits.max())}" if len(orbits) else "",
            })
        return pd.DataFrame(rows)

    @param.depends("refreshes")
    def _table(self):
        df = self.summary_table()
        if df.empty:
            return pn.pane.Alert(
                f"The archive of {self.archive.catalog_source} holds no granule yet. "
                "Write the sample archive with `fumarole sample`.", alert_type="warning",
            )
        return pn.widgets.Tabulator(df, show_index=False, disabled=True, sizing_mode="stretch_width",
                                    name="granules")

    @param.depends("refreshes")
    def _skipped(self):
        rep = self.archive.last_report
        if rep is None or not rep.skipped:
            return pn.pane.Markdown("No file was skipped.", name="skipped")
        lines = "\n".join(f"- `{p}`: {r}" for p, r in rep.skipped)
        return pn.pane.Markdown(f"**Skipped files**\n\n{lines}", name="skipped")

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(f"## {self.archive.title}\n\nCatalogue: `{self.archive.catalog_source}`"),
            self._refresh_button,
            self._table,
            self._skipped,
            sizing_mode="stretch_width",
        )
