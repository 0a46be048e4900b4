"""SRTP protect/unprotect per packet without pylibsrtp's per-call wrapper.

pylibsrtp's ``Session.protect``/``unprotect`` allocate a new ``int *`` and check types on
every call: about as much as the cipher itself (~1.5 µs of each call). Both forwarding
directions (:mod:`.fast_receive`, :mod:`.rtp_forwarding`) call libsrtp the same way on the
session's own buffer instead, and fall back to the public methods when pylibsrtp's layout
is not the one known here.
"""

from __future__ import annotations

try:
    import pylibsrtp
    from pylibsrtp import _binding
except ImportError:  # pylibsrtp moved its binding: the public methods below
    # None: srtp_calls then meets an AttributeError and uses the public methods
    pylibsrtp = _binding = None  # type: ignore[assignment]

HOOK_SRTP = "pylibsrtp.Session._srtp/_cdata/_buffer, pylibsrtp._binding.lib.srtp_(un)protect"


def srtp_calls(session):
    """``(protect, unprotect)`` for a pylibsrtp ``Session``: the same libsrtp calls on the
    session's own buffer as its public methods, without a new ``int *`` and an
    ``isinstance`` per packet (the wrapper costed about as much as the cipher: ~1.5 µs of
    each call). The public methods when pylibsrtp's layout is not the one known here."""
    try:
        srtp, cdata, buf = session._srtp, session._cdata, session._buffer
        lib, ffi = _binding.lib, _binding.ffi
        do_protect, do_unprotect, ok = lib.srtp_protect, lib.srtp_unprotect, lib.srtp_err_status_ok
        errors, trailer = pylibsrtp.ERRORS, pylibsrtp.SRTP_MAX_TRAILER_LEN
    except AttributeError:  # (also: pylibsrtp or its binding did not import)
        return session.protect, session.unprotect
    room = len(cdata)
    len_p = ffi.new("int *")  # reused: one loop thread calls these

    def run(data: bytes, fn, reserve: int) -> bytes:
        n = len(data)
        if n > room - reserve:
            raise ValueError("packet is too long")
        len_p[0] = n
        buf[0:n] = data
        rc = fn(srtp[0], cdata, len_p)
        if rc != ok:
            raise pylibsrtp.Error(errors[rc])
        return buf[0:len_p[0]]

    return (lambda data: run(data, do_protect, trailer),
            lambda data: run(data, do_unprotect, 0))

