"""The page shell: a dashboard built after its page has loaded, and a build that fails said on the page."""

from __future__ import annotations

import panel as pn

from app.views.shell import deferred_page


def _main_objects(tpl):
    (column,) = tpl.main.objects
    return column.objects


def test_the_built_content_replaces_the_spinner():
    built = pn.pane.Markdown("the map")
    controls = pn.widgets.TextInput(label="zone")
    tpl = deferred_page("T", "volcplume", lambda: ([built], [controls]), available={"volcplume"})
    # outside a served session Panel runs onload callbacks at once: the content is there
    assert _main_objects(tpl) == [built]
    (side,) = tpl.sidebar.objects
    assert side.objects == [controls]


def test_a_failed_build_is_said_on_the_page_not_a_blank_page(caplog):
    def build():
        raise KeyError("no granule index")

    with caplog.at_level("ERROR", logger="app.views.shell"):
        tpl = deferred_page("T", "georing", build, sidebar=False)
    (alert,) = _main_objects(tpl)
    assert isinstance(alert, pn.pane.Alert) and alert.alert_type == "danger"
    assert "KeyError" in alert.object and "no granule index" in alert.object
    assert any("building georing failed" in r.getMessage() for r in caplog.records)
    assert tpl.sidebar.objects == []


def test_the_page_fits_phones_and_shows_where_the_keyboard_is():
    from app.views.shell import FOCUS_CSS, META_VIEWPORT

    field = pn.widgets.TextInput(label="zone")
    tpl = deferred_page("T", "volcplume", lambda: ([pn.Column(field)], []), available={"volcplume"})
    assert tpl.meta_viewport == META_VIEWPORT == "width=device-width, initial-scale=1"
    assert FOCUS_CSS in tpl.config.raw_css and "outline: 3px solid" in FOCUS_CSS
    assert FOCUS_CSS in field.stylesheets  # inside the widget's shadow root too


def test_a_labelled_checkbox_follows_its_parameter_both_ways():
    import param

    from app.views.shell import labelled_checkbox

    class State(param.Parameterized):
        show = param.Boolean(default=True)

    state = State()
    box = labelled_checkbox(state, "show", "Show timestamps")
    assert box.options == ["Show timestamps"] and box.value == ["Show timestamps"]
    box.value = []
    assert state.show is False
    state.show = True
    assert box.value == ["Show timestamps"]


def test_every_component_of_a_page_gets_the_focus_ring_and_readable_code():
    from panel.viewable import Viewable

    from app.views.shell import COMPONENT_CSS, FumaroleDesign, page

    tpl = page("T", "archive", [pn.pane.Markdown("`x`")])
    assert tpl.design is FumaroleDesign
    assert COMPONENT_CSS in FumaroleDesign.modifiers[Viewable]["stylesheets"]
    assert "--code-text-color: #0b4a8b" in COMPONENT_CSS and "outline: 3px solid" in COMPONENT_CSS
