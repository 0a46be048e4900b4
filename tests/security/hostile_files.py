"""Files made to hurt an image pipeline, generated in the test (no binary fixtures)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def jpeg_with_gps(rgb=(200, 40, 40), size=(64, 48)) -> bytes:
    """A JPEG whose EXIF holds a GPS position (and a camera model)."""
    im = Image.new("RGB", size, rgb)
    exif = Image.Exif()
    exif[0x0110] = "LeakyCam 9000"  # Model
    gps = {1: "N", 2: (39.0, 54.0, 15.0), 3: "E", 4: (116.0, 23.0, 29.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    assert b"Exif" in data and b"LeakyCam" in data
    return data


def png(rgb=(20, 200, 20), size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_bomb(side: int = 50_000) -> bytes:
    """A PNG that says it is side × side pixels (2.5 G pixels, 7.5 GB decoded): its header
    is honest about it, its pixel data a few kB of compressed zeros."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * side) * 64, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows)
            + _chunk(b"IEND", b""))


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><script>alert(document.cookie)</script></svg>')


def polyglot() -> bytes:
    """A valid JPEG with an HTML page after its end: a browser sniffing it finds a page."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "JPEG")
    return out.getvalue() + b"<html><body><script>alert(document.domain)</script></body></html>"


def jpeg_magic_then_html() -> bytes:
    """JPEG's magic bytes in front of a web page: sniffed as JPEG, but not an image."""
    return b"\xff\xd8\xff\xe0" + b"<html><script>alert(1)</script></html>" * 20


TEXT_AS_JPG = b"this is not a photo, whatever the file name says\n" * 10


def heic(rgb=(10, 20, 200), size=(64, 48)) -> bytes:
    """An iPhone-style HEIC (encoded by pillow-heif), with a camera model in its EXIF."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0110] = "LeakyPhone 15"
    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, "HEIF", exif=exif.tobytes())
    return out.getvalue()


def webp_with_alpha(size=(30, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (10, 200, 20, 128)).save(out, "WEBP")
    return out.getvalue()
