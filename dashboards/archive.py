"""Archive: what the served catalogue holds, product by product and day by day."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.archive_overview import ArchiveOverview
from app.views.shell import page

pn.extension("tabulator")

if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    page("Fumarole — archive", "archive", [ArchiveOverview()], available=available).servable()
