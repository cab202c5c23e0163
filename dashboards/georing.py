"""GEO ring: the latest image of each geostationary satellite, one satellite in depth, the global mosaic."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.georing import GeoRing
from app.views.log_console import LogConsole
from app.views.shell import deferred_page

pn.extension(notifications=True)


def build():
    """The page's content: the ring / one satellite / mosaic and the log console, and the controls."""
    log = LogConsole()
    app = GeoRing.from_query(pn.state.location.query_params, log=log)
    app.sync_location(pn.state.location)
    return [app, pn.Card(log, title="Log console", collapsed=True, sizing_mode="stretch_width")], [app.controls()]


if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    deferred_page("GEO ring — geostationary imagery", "georing", build, available=available).servable()
