"""QR codes for linking a number: as inline SVG for the browser, as text for the terminal."""

from __future__ import annotations

import functools
import io

import qrcode
import qrcode.image.svg


# A code is drawn for each language of its socket event, and again by the page and the API
# that show it: about 15 ms each time. Codes rotate every ~20 s, so a few suffice.
@functools.lru_cache(maxsize=32)
def qr_svg(code: str) -> str:
    """An inline ``<svg>`` element (no XML prolog) for the page and socket events."""
    img = qrcode.make(code, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = img.to_string(encoding="unicode")
    return svg[svg.index("<svg") :]


def qr_terminal(code: str) -> str:
    """The QR code drawn with block characters, for ``manage.py whatsapp_connect``."""
    qr = qrcode.QRCode(border=2)
    qr.add_data(code)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
