"""VolcPlume: TROPOMI SO2 maps by day and orbit, the CALIOP curtain, volcanoes; the state is in the URL."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.log_console import LogConsole
from app.views.shell import deferred_page
from app.views.timeseries_panel import TimeSeriesPanel
from app.views.volcplume import URL_STATE, VolcPlume

pn.extension("tabulator", notifications=True)


def build():
    """The page's content: the map, the time-series card and the log console, and the controls."""
    log = LogConsole()
    app = VolcPlume(log=log)
    # the link's values one by one (a bad one is said over the map and replaced), then kept in sync with the URL,
    # which then holds the values used
    app.apply_query({k: v for k, v in pn.state.location.query_params.items() if k in URL_STATE})
    pn.state.location.sync(app, {name: name for name in URL_STATE}, on_error=lambda _bad: None)
    timeseries = TimeSeriesPanel(app)  # follows the map's volcano, filters, level and date; writes to its log
    # the cards scroll sideways on a phone rather than widen the page (their forms are wider than 390 px)
    narrow = {"stylesheets": [":host { min-width: 0 !important; overflow-x: auto; }"]}
    main = [app,
            pn.Card(timeseries, title="Satellite time series around a volcano", collapsed=True,
                    sizing_mode="stretch_width", **narrow),
            pn.Card(log, title="Log console", collapsed=True, sizing_mode="stretch_width", **narrow)]
    return main, [app.controls()]


if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    deferred_page("VolcPlume — SO2 around volcanoes", "volcplume", build, available=available).servable()
