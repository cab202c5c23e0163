"""Accessibility: an axe-core scan of the served VolcPlume page (after its first paint) and of the archive page.

No violation of impact ``serious`` or ``critical`` may remain. A node whose violation comes from Panel's or Bokeh's
own markup, which Fumarole cannot change, is excluded by rule and selector in :data:`EXCLUDED`, each with why.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

pytestmark = pytest.mark.browser

#: (rule id, a piece of the node's target selector or HTML) -> why this node is not ours to fix. Nothing else is
#: excluded: a new violation of these rules elsewhere still fails.
EXCLUDED: dict[tuple[str, str], str] = {
    ("aria-input-field-name", ".noUi-handle"):
        "Bokeh's sliders draw their handle with noUiSlider (role=slider, no aria-label); the slider's title is "
        "shown above it and Bokeh offers no way to name the handle",
    ("button-name", ".bk-spin-btn"):
        "Bokeh's NumericInput (Panel's FloatInput/IntInput) adds up/down spin buttons with no text; the field "
        "itself is labelled and the arrow keys do the same",
    ("label", ".bk-DatePicker"):
        "Bokeh's DatePicker labels its hidden input (<label for=input>); flatpickr's visible text box has no "
        "label of its own, and Bokeh exposes no attribute to give it one",
    ("aria-allowed-attr", ".bk-MultiChoice"):
        "Bokeh's MultiChoice (choices.js) marks its chips (divs without a role) aria-selected; the chips keep "
        "their text and remove buttons",
    ("list", 'class="nav flex-column"'):
        "Panel's Bootstrap template puts the sidebar's components (divs) directly in its <ul class=nav>",
    ("aria-required-children", ".pnx-tabulator"):
        "Panel's Tabulator (tabulator.js) gives its grid role=grid with focusable divs as children",
}
BLOCKING = ("serious", "critical")


def blocking_violations(page) -> list[dict]:
    """The serious and critical violations axe-core finds on the page, less :data:`EXCLUDED` nodes."""
    results = Axe().run(page, options={"resultTypes": ["violations"]})
    found = []
    for v in results.response["violations"]:
        if v["impact"] not in BLOCKING:
            continue
        nodes = [n for n in v["nodes"]
                 if not any(rule == v["id"] and (piece in str(n["target"]) or piece in n["html"])
                            for rule, piece in EXCLUDED)]
        if nodes:
            found.append({**v, "nodes": nodes})
    return found


def describe(violations: list[dict]) -> str:
    """One paragraph per violation: id, impact, help, and each node's target (what to fix, where)."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines += [f"    {n['target']}  {n.get('failureSummary', '').splitlines()[-1:]}" for n in v["nodes"]]
    return "\n".join(lines)


def test_volcplume_has_no_serious_accessibility_violation(dashboard_server, page):
    page.goto(f"{dashboard_server}/volcplume")
    page.get_by_text("Orbits to display").wait_for(timeout=90_000)
    page.wait_for_function("() => Bokeh.documents.length && Bokeh.documents.every(d => d.is_idle)",
                           timeout=60_000)
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert page.title().startswith("VolcPlume")
    violations = blocking_violations(page)
    assert not violations, "axe-core on /volcplume:\n" + describe(violations)


def test_archive_page_has_no_serious_accessibility_violation(dashboard_server, page):
    page.goto(f"{dashboard_server}/archive")
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length && Bokeh.documents.every(d => d.is_idle)",
                           timeout=90_000)
    assert page.evaluate("() => document.documentElement.lang") == "en"
    violations = blocking_violations(page)
    assert not violations, "axe-core on /archive:\n" + describe(violations)
