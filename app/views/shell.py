"""The page shell every dashboard shares: title bar, links between the dashboards, no external resources.

The template is Panel's Bootstrap one: unlike the Fast and Material ones it loads no web fonts from the
internet, so pages render the same with no network.
"""

from __future__ import annotations

import panel as pn

ACCENT = "#6b1f2a"
PAGES = (("VolcPlume", "volcplume"), ("GEO ring", "georing"), ("Kiosk", "kiosk"), ("Archive", "archive"),
         ("User guide", "guide"))


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
    )
    tpl.header.append(header_links(current, available))
    for item in sidebar:
        tpl.sidebar.append(item)
    for item in main if isinstance(main, list | tuple) else [main]:
        tpl.main.append(item)
    return tpl
