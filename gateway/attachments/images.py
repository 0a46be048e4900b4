"""Image processing: decide the type by content, check dimensions before decoding, decode,
re-encode. Pure functions (CPU-bound): the service runs them in a thread pool, never on
the event loop.

Why re-encode every image: a file that decodes *and* re-encodes is an image and nothing
else. Whatever rode along — EXIF (GPS position, camera serial), XMP, ICC profiles, comments,
HTML or script appended after the image's end, a second format hidden in the same bytes —
is not in what we write. The order of checks is the safety argument:

1. **type by magic bytes** (JPEG, PNG, WebP, HEIC/HEIF); the name and the declared
   ``Content-Type`` are never trusted (SVG, text named ``.jpg``, anything else: 415);
2. **nothing after the image's end** for JPEG/PNG/WebP (polyglots: 400);
3. **dimensions from the header only** (``Image.open`` reads the header, not the pixels):
   either side over ``max_side`` or width × height over ``max_pixels`` is refused (413)
   *before* a byte is decoded, so a 64 kB decompression bomb never becomes gigabytes;
   ``Image.MAX_IMAGE_PIXELS`` is set to the same limit as a second fence;
4. **decode** (a malformed file fails here: 400), apply the EXIF orientation, drop
   everything but the pixels, scale to ``out_side``, **encode** (JPEG for photos and HEIC,
   PNG stays PNG, WebP stays WebP), and make the thumbnail once.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .records import AttachmentRefused

# Pillow warns (once per place) about an image between MAX_IMAGE_PIXELS and twice that as it
# opens it; we refuse those ourselves right after, so the warning says nothing new. Set once
# here: warnings.catch_warnings() around each open would not be thread-safe (the pool).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

try:  # HEIC/HEIF from iPhones: decoded by pillow-heif when installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover
    HEIF = False

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
# what each sniffed type may be decoded as (Pillow's format names)
_PIL_FORMATS = {"jpeg": {"JPEG", "MPO"}, "png": {"PNG"}, "webp": {"WEBP"},
                "heic": {"HEIF", "HEIC"}}
_OUT = {"jpeg": ("JPEG", "image/jpeg"), "heic": ("JPEG", "image/jpeg"),
        "png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 12_000
    out_side: int = 2048
    thumb_side: int = 320


@dataclass(frozen=True)
class Processed:
    content_type: str
    width: int
    height: int
    data: bytes
    thumb: bytes
    thumb_type: str


def sniff(data: bytes) -> str | None:
    """The image type by its first bytes: ``jpeg`` | ``png`` | ``webp`` | ``heic`` | None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def _trailing(kind: str, data: bytes) -> int:
    """Bytes after the image's end marker (0 if none, or if the format cannot tell)."""
    if kind == "png":
        end = data.rfind(b"IEND")
        return 0 if end < 0 else max(0, len(data) - (end + 8))
    if kind == "jpeg":
        end = data.rfind(b"\xff\xd9")
        if end < 0:
            return 0  # truncated: the decoder refuses it
        return len(data[end + 2:].rstrip(b"\x00"))
    if kind == "webp":
        size = int.from_bytes(data[4:8], "little") + 8
        return max(0, len(data) - size - (size & 1))
    return 0


def _refuse_type() -> AttachmentRefused:
    return AttachmentRefused("unsupported_type",
                             "only JPEG, PNG, WebP and HEIC images are accepted (the type is "
                             "read from the file's content, not its name)")


def process(data: bytes, limits: ImageLimits) -> Processed:
    """Check, decode and re-encode ``data``; raise :class:`AttachmentRefused` on refusal."""
    if len(data) > limits.max_bytes:
        raise AttachmentRefused("too_large", f"the file is {len(data)} bytes; the limit is "
                                             f"{limits.max_bytes} bytes")
    if not data:
        raise AttachmentRefused("bad_request", "the file is empty")
    kind = sniff(data)
    if kind is None or (kind == "heic" and not HEIF):
        raise _refuse_type()
    extra = _trailing(kind, data)
    if extra > 0:
        raise AttachmentRefused("bad_request", f"{extra} bytes follow the end of the image "
                                               f"(a file that is also something else)")
    Image.MAX_IMAGE_PIXELS = limits.max_pixels  # the second fence (we check first, below)
    try:
        im = Image.open(io.BytesIO(data))  # reads the header only
        if im.format not in _PIL_FORMATS[kind]:
            raise _refuse_type()
        w, h = im.size
        if w <= 0 or h <= 0:
            raise AttachmentRefused("bad_request", "the image has no pixels")
        if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
            raise AttachmentRefused(
                "too_large", f"the image is {w}×{h} pixels; the limits are "
                             f"{limits.max_side} per side and {limits.max_pixels} in all")
        im.seek(0)  # animated images: the first frame only
        im.load()  # decode
        upright: Image.Image = ImageOps.exif_transpose(im) or im  # the tag goes
    except AttachmentRefused:
        raise
    except Image.DecompressionBombError:
        raise AttachmentRefused("too_large", "the image has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise AttachmentRefused("bad_request", f"the image could not be decoded "
                                               f"({type(e).__name__})") from None
    fmt, content_type = _OUT[kind]
    pixels = _pixels_only(upright, keep_alpha=fmt != "JPEG")
    pixels.thumbnail((limits.out_side, limits.out_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=88, optimize=True)  # no exif=, no icc_profile=
    elif fmt == "PNG":
        pixels.save(out, "PNG", optimize=True)  # no pnginfo: text chunks are gone
    else:
        pixels.save(out, "WEBP", quality=85)
    thumb_img = _pixels_only(pixels, keep_alpha=False)
    thumb_img.thumbnail((limits.thumb_side, limits.thumb_side), Image.Resampling.LANCZOS)
    t = io.BytesIO()
    thumb_img.save(t, "JPEG", quality=80)
    return Processed(content_type, pixels.width, pixels.height, out.getvalue(), t.getvalue(),
                     "image/jpeg")


def _pixels_only(im: Image.Image, keep_alpha: bool) -> Image.Image:
    """A new image holding only ``im``'s pixels (RGB, or RGBA where alpha may stay): no
    ``info`` (EXIF, XMP, ICC, comments) is carried over."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha and keep_alpha:
        src = im.convert("RGBA")
    elif has_alpha:
        rgba = im.convert("RGBA")
        src = Image.new("RGB", rgba.size, (255, 255, 255))
        src.paste(rgba, mask=rgba.getchannel("A"))
    else:
        src = im.convert("RGB")
    clean = Image.new(src.mode, src.size)
    clean.paste(src)
    return clean
