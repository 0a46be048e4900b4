"""Inbound JSON and text: the one place that decides what outside text may enter the gateway.

Every WebSocket frame and every REST body is parsed by :func:`loads` and every string in
it is checked by :func:`clean_text`, *before* anything is stored or handed to a handler.
Why one place: a string that cannot be encoded (a lone UTF-16 surrogate, JSON
``"\\ud800"``) parsed happily, was stored, and then failed to encode in every frame that
carried it, silencing the viewer, the agent and the admins for good. A rule that lives in
one function is applied everywhere or nowhere, and a test of the function covers them all.

What is refused (each a typed :class:`~signaling.errors.ProtocolError`, never a traceback):

* more than ``max_bytes`` (``too_large``);
* bytes that are not UTF-8, or text that is not JSON (``bad_json``);
* nesting deeper than ``max_depth`` arrays/objects, checked on the raw text *before* the
  parser recurses (``bad_request``);
* a number literal longer than ``max_number_chars`` characters, ``NaN``/``Infinity``, or a
  float that overflows to infinity (``bad_request``), so no 4,300-digit integer reaches
  ``int()`` and nothing non-finite is echoed back as bare ``NaN``;
* in any string (object keys included): an unpaired surrogate, a control character other
  than tab, newline and carriage return, or a C1 control (``bad_request``, naming the
  field and the position).

Strings are NFC-normalised, so two spellings of the same text (é as one code point or as
e + combining accent) are one id, one name, one search key.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from .errors import ErrorCode, ProtocolError

MAX_DEPTH = 16
MAX_NUMBER_CHARS = 32

# C0 controls except \t \n \r, DEL, C1 controls, and every surrogate code point: a str that
# holds one of these is refused. (Paired surrogates never reach a Python str from JSON:
# the parser joins "\ud83d\ude00" into one code point, so any surrogate left is lone.)
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NUMBER = re.compile(rb"-?\d[\d.eE+-]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


def describe_char(ch: str) -> str:
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        return f"an unpaired surrogate (U+{cp:04X})"
    return f"a control character (U+{cp:04X})"


def clean_text(s: str, field: str = "text", max_chars: int | None = None) -> str:
    """Return ``s`` NFC-normalised, or raise ``bad_request`` naming ``field``.

    ``max_chars`` (when given) bounds the length after normalisation; the error names the
    limit so a client can cut its text to fit."""
    bad = _BAD_CHAR.search(s)
    if bad is not None:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"field {field!r} contains {describe_char(bad.group())} at "
                            f"position {bad.start()}; text must be valid Unicode without "
                            f"control characters (tab and newline are fine)")
    if not s.isascii() and not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    if max_chars is not None and len(s) > max_chars:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"field {field!r} is {len(s)} characters; the limit is {max_chars}")
    return s


def clean_tree(obj: Any, field: str = "body") -> Any:
    """Apply :func:`clean_text` to every string (keys too) of a parsed JSON value.

    Returns the value with normalised strings; the error names the path, e.g.
    ``items[2].name``. The caller has already bounded the depth (:func:`loads`)."""
    if type(obj) is str:
        return clean_text(obj, field)
    if type(obj) is dict:
        out = {}
        for k, v in obj.items():
            k = clean_text(k, f"{field} (a key)" if field else "a key")
            out[k] = clean_tree(v, f"{field}.{k}" if field else k)
        return out
    if type(obj) is list:
        return [clean_tree(v, f"{field}[{i}]") for i, v in enumerate(obj)]
    return obj


def _check_depth(raw: bytes, max_depth: int) -> None:
    # Fast path: fewer brackets than the limit cannot nest deeper than it.
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ProtocolError(ErrorCode.BAD_REQUEST,
                                    f"JSON nests deeper than {max_depth} levels")
        else:
            depth -= 1


def _check_numbers(raw: bytes, max_chars: int) -> None:
    # Only when the text could hold a long number at all (the common frame has none).
    if len(raw) <= max_chars:
        return
    for m in _NUMBER.finditer(_STRING.sub(b'""', raw)):
        if len(m.group()) > max_chars:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"a number in the JSON has {len(m.group())} characters; "
                                f"the limit is {max_chars}")


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name} is not a valid JSON number here")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"number {text[:40]} is out of range")
    return v


def loads(data: str | bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH,
          max_number_chars: int = MAX_NUMBER_CHARS, what: str = "frame",
          clean: bool = True) -> Any:
    """Parse untrusted JSON within limits; every string in the result is clean.

    ``what`` names the thing in messages ("frame", "body"). Raises ``ProtocolError``
    (``too_large``, ``bad_json`` or ``bad_request``) and nothing else.

    ``clean=False`` leaves the strings to the caller, who must check every one it keeps
    with :func:`clean_text` (the WebSocket edge does, field by field in
    :func:`signaling.protocol.decode_frame`, so that its error can carry the frame's
    correlation id and name the message type)."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as e:  # a str with a lone surrogate, from a transport
            raise ProtocolError(ErrorCode.BAD_JSON,
                                f"{what} is not valid UTF-8 text ({e.reason})") from None
    else:
        raw = data
    if len(raw) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"{what} is {len(raw)} bytes; the limit is {max_bytes} bytes")
    _check_depth(raw, max_depth)
    _check_numbers(raw, max_number_chars)
    try:
        obj = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(ErrorCode.BAD_JSON, f"{what} is not valid JSON: {e}") from None
    except (RecursionError, ValueError) as e:  # belt and braces behind the checks above
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{what} is not acceptable JSON: "
                                                   f"{type(e).__name__}") from None
    return clean_tree(obj, "") if clean else obj
