"""The page shell every dashboard shares: title bar, links between the dashboards, no external resources.

The template is Panel's Bootstrap one: unlike the Fast and Material ones it loads no web fonts from the
internet, so pages render the same with no network.
"""

from __future__ import annotations

import panel as pn
from panel.theme import Bootstrap
from panel.viewable import Viewable

ACCENT = "#6b1f2a"
#: Phones render the page at their width (not 980 px scaled down).
META_VIEWPORT = "width=device-width, initial-scale=1"
#: Visible focus rings for keyboard users, in the page and inside the widgets' shadow roots.
FOCUS_CSS = """
:focus-visible, .bk-input:focus, .bk-btn:focus, select:focus, input:focus, button:focus, a:focus {
  outline: 3px solid #1a73e8 !important; outline-offset: 2px !important;
}
"""
#: Inside every component's shadow root (through the page's design): the focus ring, and inline ``code`` in a
#: contrast WCAG AA accepts on white (Panel's theme writes it #82aaff: 2.3:1; this blue: 7.6:1).
COMPONENT_CSS = ":host { --code-text-color: #0b4a8b; }\n" + FOCUS_CSS


class FumaroleDesign(Bootstrap):
    """Panel's Bootstrap design with :data:`COMPONENT_CSS` added to every component (its shadow root included)."""

    modifiers = {**Bootstrap.modifiers,
                 Viewable: {"stylesheets": [*Bootstrap.modifiers[Viewable]["stylesheets"], COMPONENT_CSS]}}


PAGES = (("VolcPlume", "volcplume"), ("GEO ring", "georing"), ("Kiosk", "kiosk"), ("Archive", "archive"),
         ("User guide", "guide"))


#: On a phone (narrow window) the sidebar goes above the main area, both the window's width, and the title wraps.
NARROW_CSS = """
@media (max-width: 700px) {
  /* the template's 100vh, overflow-hidden container would cut the page at the screen's height: the map, below the
     controls, could not be scrolled to */
  #container { height: auto !important; min-height: 100vh; overflow: visible !important; }
  #content { flex-direction: column; flex-wrap: nowrap; height: auto !important; overflow: visible !important; }
  #content #sidebar.sidenav { max-width: 100% !important; width: 100% !important; height: auto !important;
                              overflow: visible !important; }
  #content #main { width: 100%; max-width: 100%; height: auto !important; overflow: visible !important;
                   padding-left: 4px !important; padding-right: 4px !important; }
  body { overflow-y: auto !important; height: auto !important; }
  #main .bk-panel-models-layout-Column { min-width: 0 !important; }
  #header .title, .navbar-brand { white-space: normal; font-size: 1.1rem; }
}
"""


def header_links(current: str, available=None) -> pn.pane.HTML:
    """Links to the other dashboards (those that exist), the current one in bold."""
    links = []
    for label, slug in PAGES:
        if available is not None and slug not in available:
            continue
        style = "font-weight:bold;text-decoration:underline" if slug == current else ""
        links.append(f'<a href="./{slug}" style="color:white;margin-right:1.2em;{style}">{label}</a>')
    return pn.pane.HTML("".join(links), margin=(12, 10))


def page(title: str, current: str, main, sidebar=(), available=None) -> pn.template.BootstrapTemplate:
    """A served page: title, links to the other dashboards, the main area and an optional sidebar."""
    tpl = pn.template.BootstrapTemplate(
        title=title, header_background=ACCENT, sidebar_width=330, collapsed_sidebar=not sidebar,
        meta_viewport=META_VIEWPORT, raw_css=[FOCUS_CSS, NARROW_CSS], design=FumaroleDesign,
    )
    tpl.header.append(header_links(current, available))
    for item in sidebar:
        tpl.sidebar.append(item)
    for item in main if isinstance(main, list | tuple) else [main]:
        tpl.main.append(item)
    return tpl


#: An inline checkbox group (a dozen radii) wraps to the next line instead of running out of a narrow sidebar.
WRAP_INLINE_CSS = ".bk-input-group { flex-wrap: wrap; row-gap: 2px; }"


def labelled_checkbox(obj, name: str, label: str, **params) -> pn.widgets.CheckBoxGroup:
    """The Boolean parameter ``name`` of ``obj`` as one checkbox that screen readers can name.

    Panel's ``Checkbox`` writes its text in a ``<div>`` beside the box (axe-core: "Form elements must have labels");
    Bokeh's ``CheckboxGroup`` wraps each box and its text in one ``<label>``. Kept in sync both ways.
    """
    box = pn.widgets.CheckBoxGroup(options=[label], value=[label] if getattr(obj, name) else [], **params)

    def on_box(event):
        if (label in event.new) != getattr(obj, name):
            setattr(obj, name, label in event.new)

    def on_state(event):
        if (label in box.value) != bool(event.new):
            box.value = [label] if event.new else []

    box.param.watch(on_box, "value")
    obj.param.watch(on_state, name)
    return box


def animation_export(export, stem: str, css_prefix: str) -> pn.Row:
    """The "Export animation" control: a format (MP4 or GIF) and the button that downloads the loop.

    ``export(fmt)`` returns ``(file name, file-like)``; the button's file name follows the chosen format
    (``{stem}.mp4``/``.gif``) until the loop is made, then is the loop's own name. ``css_prefix`` names the widgets
    for the page's tests (``{css_prefix}-animation-format``, ``{css_prefix}-export-animation``).
    """
    fmt = pn.widgets.RadioButtonGroup(options={"MP4": "mp4", "GIF": "gif"}, value="mp4", button_type="light",
                                      name="Animation format", css_classes=[f"{css_prefix}-animation-format"])

    def make():
        name, data = export(fmt.value)
        button.filename = name
        return data

    button = pn.widgets.FileDownload(callback=make, filename=f"{stem}.mp4", label="Export animation",
                                     button_type="light", css_classes=[f"{css_prefix}-export-animation"])
    fmt.param.watch(lambda e: setattr(button, "filename", f"{stem}.{e.new}"), ["value"])
    return pn.Row(fmt, button)


def focus_rings(items) -> None:
    """Give every widget in ``items`` the visible focus ring (:data:`FOCUS_CSS`) inside its shadow root."""
    for item in items:
        for widget in item.select(pn.widgets.Widget) if hasattr(item, "select") else ():
            if FOCUS_CSS not in widget.stylesheets:
                widget.stylesheets = [*widget.stylesheets, FOCUS_CSS]


def deferred_page(title: str, current: str, build, sidebar: bool = True, available=None):
    """A served page whose content is built after the page has loaded, in a callback of its own.

    Building a dashboard (reading granules, rendering the first map) takes about a second of CPU. Done while the
    page is requested, it ran inside the request on the server's one event loop, and twenty visitors arriving
    together held up every API request and static file for tens of seconds. Here the request returns the shell
    at once (title bar, links and a loading indicator); ``build()`` runs when the browser says the page is ready
    (``pn.state.onload``), so the loop answers others between two builds, and returns ``(main, sidebar)`` lists
    that replace the placeholders. An error while building is shown on the page, named, instead of a blank page.

    When the server runs Panel's session threads (``FUMAROLE_SESSION_THREADS``, experimental) the build runs on
    them.
    """
    main_col = pn.Column(pn.indicators.LoadingSpinner(value=True, size=40),
                         sizing_mode="stretch_width")
    side_col = pn.Column(sizing_mode="stretch_width")
    tpl = page(title, current, [main_col], sidebar=[side_col] if sidebar else (), available=available)

    def _load():
        try:
            main, side = build()
        except Exception as exc:  # noqa: BLE001 - shown on the page and logged, never a blank page
            import logging

            logging.getLogger(__name__).exception("building %s failed", current)
            main_col[:] = [pn.pane.Alert(f"This page could not be built: {type(exc).__name__}: {exc}",
                                         alert_type="danger")]
            return
        focus_rings([*side, *main])
        side_col[:] = list(side)
        main_col[:] = list(main)

    # on a thread of the pool when the server has one (not during the warm-up run at start, which has none yet)
    pn.state.onload(_load, threaded=bool(pn.config.nthreads))
    return tpl

