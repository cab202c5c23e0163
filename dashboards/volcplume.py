"""VolcPlume: TROPOMI SO2 maps by day and orbit, the CALIOP curtain, volcanoes; the state is in the URL."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.log_console import LogConsole
from app.views.shell import page
from app.views.timeseries_panel import TimeSeriesPanel
from app.views.volcplume import VolcPlume

pn.extension("tabulator", notifications=True)

URL_STATE = ["zone", "level", "secondary", "date", "so2_min", "so2_max", "qa_min", "edge_pixels", "sza_max",
             "show_borders", "show_timestamps", "orbits", "volcano", "radii", "caliop_granule", "x_range", "y_range"]

if pn.state.served:
    log = LogConsole()
    app = VolcPlume(log=log)
    pn.state.location.sync(app, {name: name for name in URL_STATE})
    timeseries = TimeSeriesPanel(app)  # follows the map's volcano, filters, level and date; writes to its log
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    page(
        "VolcPlume — SO2 around volcanoes", "volcplume",
        [app,
         pn.Card(timeseries, title="Satellite time series around a volcano", collapsed=True,
                 sizing_mode="stretch_width"),
         pn.Card(log, title="Log console", collapsed=True, sizing_mode="stretch_width")],
        sidebar=[app.controls()], available=available,
    ).servable()
