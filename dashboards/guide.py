"""The user guide, rendered from assets/user-guide.md."""

import panel as pn

from app.paths import ASSETS, DASHBOARDS
from app.views.shell import page

pn.extension()

if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    text = (ASSETS / "user-guide.md").read_text(encoding="utf-8")
    page("Fumarole — user guide", "guide", [pn.pane.Markdown(text, sizing_mode="stretch_width", max_width=900)],
         available=available).servable()
