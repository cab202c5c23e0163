"""VolcPlume: TROPOMI SO2 maps by day and orbit, the CALIOP curtain, volcanoes; the state is in the URL."""

import panel as pn

from app.paths import DASHBOARDS
from app.views.log_console import LogConsole
from app.views.shell import deferred_page
from app.views.timeseries_panel import TimeSeriesPanel
from app.views.volcplume import URL_STATE, URL_SYNC, VolcPlume

pn.extension("tabulator", notifications=True)


def lazy_card(make, title: str, **params) -> pn.Card:
    """A collapsed card whose content ``make()`` is built when it is first opened.

    A collapsed card's content would otherwise be built with the page and, for the log console and the time-series
    form, made again on every control change (Bokeh models the browser never shows: ~0.3 s of a first paint and
    of each change on the sample archive).
    """
    card = pn.Card(title=title, collapsed=True, **params)

    def opened(event):
        if not event.new and not card.objects:
            card.objects = [make()]

    card.param.watch(opened, "collapsed")
    return card


def build():
    """The page's content: the map, the time-series card and the log console, and the controls."""
    log = LogConsole()
    app = VolcPlume(log=log)
    # the link's values one by one (a bad one is said over the map and replaced), then kept in sync with the URL,
    # which then holds the values used
    app.apply_query({k: v for k, v in pn.state.location.query_params.items() if k in URL_STATE})
    pn.state.location.sync(app, URL_SYNC, on_error=lambda _bad: None)
    # the cards scroll sideways on a phone rather than widen the page (their forms are wider than 390 px)
    narrow = {"stylesheets": [":host { min-width: 0 !important; overflow-x: auto; }"]}
    main = [app,
            # the time-series panel follows the map's volcano, filters, level and date from when it is opened
            lazy_card(lambda: TimeSeriesPanel(app), "Satellite time series around a volcano",
                      sizing_mode="stretch_width", **narrow),
            lazy_card(lambda: log, "Log console", sizing_mode="stretch_width", **narrow)]
    return main, [app.controls()]


if pn.state.served:
    available = {p.stem for p in DASHBOARDS.glob("*.py")}
    deferred_page("VolcPlume — SO2 around volcanoes", "volcplume", build, available=available).servable()
