"""The session-wide token watch (tests/token_watch.py) finds a token wherever it is written
and only then: a watch that could never fire would vouch for nothing."""

from __future__ import annotations

import logging

from signaling import TokenAuthority
from tests import token_watch

SECRET = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"


def test_a_token_in_a_server_output_file_is_found_and_cut(tmp_path):
    token = TokenAuthority(SECRET).issue("agent-1", "agent")
    clean = tmp_path / "clean.log"
    clean.write_text("GET /agent 200\nhello from agent-1\n")
    dirty = tmp_path / "dirty.log"
    dirty.write_text(f"GET /agent 200\nhello {token} from agent-1\n")
    lines, read = token_watch.scan([clean, dirty, tmp_path / "gone.log"])
    assert read == 2
    assert len(lines) == 1 and lines[0].startswith(f"{dirty}:2:")
    assert token not in lines[0] and token[:12] in lines[0]


def test_a_token_in_a_log_record_is_found():
    sink: list[str] = []
    log = logging.getLogger("tests.token_watch.probe")
    spotter = token_watch.TokenSpotter(sink)
    log.addHandler(spotter)
    log.propagate = False  # the session's own spotter must not see this planted token
    try:
        log.warning("refused hello from %s", "viewer-1")
        assert sink == []
        log.warning("refused token %s", TokenAuthority(SECRET).issue("v", "viewer"))
        assert len(sink) == 1 and "eyJ" in sink[0] and "(cut)" in sink[0]
    finally:
        log.removeHandler(spotter)
        log.propagate = True
