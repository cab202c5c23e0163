"""Kiosk: a full-screen playlist of events for public outreach, advancing and looping by itself (docs/kiosk.md)."""

import panel as pn

from app.views.kiosk import kiosk_page

pn.extension()

if pn.state.served:
    kiosk_page().servable(title="Fumarole — kiosk")
