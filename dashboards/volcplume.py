"""VolcPlume: TROPOMI SO2 maps by day and orbit, the CALIOP curtain, volcanoes; the state is in the URL."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.log_console import LogConsole
from app.views.shell import deferred_page
from app.views.timeseries_panel import TimeSeriesPanel
from app.views.volcplume import VolcPlume

pn.extension("tabulator", notifications=True)

URL_STATE = ["zone", "level", "quantity", "secondary", "date", "so2_min", "so2_max", "height_min", "height_max",
             "qa_min", "edge_pixels", "sza_max",
             "show_borders", "show_timestamps", "orbits", "volcano", "radii", "caliop_granule", "x_range", "y_range"]

def build():
    """The page's content: the map, the time-series card and the log console, and the controls."""
    log = LogConsole()
    app = VolcPlume(log=log)
    pn.state.location.sync(app, {name: name for name in URL_STATE})
    timeseries = TimeSeriesPanel(app)  # follows the map's volcano, filters, level and date; writes to its log
    main = [app,
            pn.Card(timeseries, title="Satellite time series around a volcano", collapsed=True,
                    sizing_mode="stretch_width"),
            pn.Card(log, title="Log console", collapsed=True, sizing_mode="stretch_width")]
    return main, [app.controls()]


if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    deferred_page("VolcPlume — SO2 around volcanoes", "volcplume", build, available=available).servable()
