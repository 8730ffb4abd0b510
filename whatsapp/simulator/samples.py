"""Tiny but real media files, made on the fly.

When a control-API caller asks a contact to send a photo or a voice note
without supplying bytes, the simulator still delivers a file that opens in a
browser or player: the rest of the system (thumbnails, ``<audio>``, MIME
sniffing) then behaves as it would with real WhatsApp media. Every generator
is pure Python (zlib, struct, wave), deterministic, and a few hundred bytes.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (37, 211, 102)) -> bytes:
    """A solid-colour RGB PNG (WhatsApp green by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width  # filter byte 0 (None) then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


# A 1x1 lossless WebP (the probe image browsers' feature detection uses).
_WEBP_1X1 = bytes.fromhex("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")


def webp() -> bytes:
    """A 1x1 WebP, the format WhatsApp stickers use."""
    return _WEBP_1X1


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4() -> bytes:
    """An ISO-BMFF (MP4) file with ``ftyp`` and an empty ``moov``: a valid, zero-track movie."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    identity_matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">I", 0)  # version 0, no flags
        + struct.pack(">IIII", 0, 0, 1000, 0)  # created, modified, timescale, duration
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + b"\x00" * 10
        + identity_matrix
        + b"\x00" * 24
        + struct.pack(">I", 1),  # next track id
    )
    return ftyp + _box(b"moov", mvhd)


def wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    """Mono 16-bit PCM silence."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def _ogg_crc(data: bytes) -> int:
    # Ogg uses CRC-32 with polynomial 0x04C11DB7, MSB first, no reflection and
    # no final xor, which zlib.crc32 (the reflected variant) cannot compute.
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], *, seq: int, granule: int, flags: int) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = (
        b"OggS\x00"
        + bytes([flags])
        + struct.pack("<qIII", granule, 0x5157A51, seq, 0)
        + bytes([len(lacing)])
        + lacing
    )
    page = header + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(frames: int = 5) -> bytes:
    """An Ogg Opus voice note of ``frames`` x 20 ms of silence (WhatsApp's PTT format)."""
    pre_skip = 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"vbcrm-simulator"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    # 0xF8 0xFF 0xFE: one 20 ms CELT full-band frame that decodes to silence.
    silence = [b"\xf8\xff\xfe"] * frames
    return (
        _ogg_page([head], seq=0, granule=0, flags=0x02)
        + _ogg_page([tags], seq=1, granule=0, flags=0x00)
        + _ogg_page(silence, seq=2, granule=pre_skip + 960 * frames, flags=0x04)
    )


def pdf(text: str = "VB CRM simulator") -> bytes:
    """A one-page PDF that shows ``text`` (ASCII), with a correct xref table."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\")
    safe = safe.replace(b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 18 Tf 36 100 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += str(number).encode() + b" 0 obj\n" + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 " + str(len(objects) + 1).encode() + b"\n0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size " + str(len(objects) + 1).encode() + b" /Root 1 0 R >>\n"
    out += b"startxref\n" + str(xref_at).encode() + b"\n%%EOF\n"
    return bytes(out)


# kind -> (bytes factory, mimetype, default filename)
SAMPLES = {
    "image": (png, "image/png", ""),
    "sticker": (webp, "image/webp", ""),
    "video": (mp4, "video/mp4", ""),
    "audio": (wav, "audio/wav", ""),
    "voice": (ogg_opus, "audio/ogg; codecs=opus", ""),
    "document": (pdf, "application/pdf", "document.pdf"),
}


def sample(kind: str) -> tuple[bytes, str, str]:
    """``(data, mimetype, filename)`` of a small real file for a media ``kind``."""
    factory, mimetype, filename = SAMPLES[kind]
    return factory(), mimetype, filename
