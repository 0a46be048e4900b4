"""Typed protocol errors: the only way a handler refuses a request.

Every refusal reaches the client as ``{"type": "error", "code", "message", "id"}``; the
code is machine-readable and stable (a contract), the message is for humans and names the
field or limit at fault.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    BAD_JSON = "bad_json"
    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    FORBIDDEN = "forbidden"
    NOT_MEMBER = "not_member"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    BAD_STATE = "bad_state"
    RESUME_FAILED = "resume_failed"
    BAD_SDP = "bad_sdp"
    GLARE = "glare"
    OUT_OF_STOCK = "out_of_stock"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"  # (HTTP) a request body did not arrive in time
    INTERNAL = "internal"


class ProtocolError(Exception):
    """Raised anywhere below a handler; the hub turns it into an ``error`` frame."""

    def __init__(self, code: ErrorCode | str, message: str):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    def to_wire(self, req_id: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code.value, "message": self.message}
        if req_id is not None:
            out["id"] = req_id
        return out
