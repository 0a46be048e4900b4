"""The real ``livedesk serve`` process (issue 13, finding 3): what the environment can and
cannot switch on. Each test starts ``python -m gateway.cli serve`` on a free loopback port
(or checks that it refuses to start); no packet leaves 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.children import die_with_parent
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
STRONG = "7c1e9a0b5d3f46e28a9c0d1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5"


def serve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_LOOP="asyncio", LIVEDESK_DRAIN_S="0", **extra)
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # --no-store: these are about the dev flag and the secret; a store would be the
    # repository's ./data (make run's), which a test must not write
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", *args, "--no-store"],
                            cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent)


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_up(proc: subprocess.Popen, base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"livedesk serve exited {proc.returncode}: {out}\n{err}")
        try:
            if get(base + "/healthz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("livedesk serve did not come up")


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


# One word in the representative tier; the others start a server each (~3-25 s) for the same
# path, and tests/unit/test_config.py checks every word's parsing without one.
@pytest.mark.parametrize("word", ["off", *(pytest.param(w, marks=pytest.mark.slow)
                                          for w in ("false", "no", "0", "OFF"))])
def test_livedesk_dev_off_serves_no_dev_tokens(word):
    """Before: LIVEDESK_DEV=off (false, no, disabled) turned dev mode on and
    /api/dev/token minted admin tokens."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(["--port", str(port)], serve_env(LIVEDESK_DEV=word, LIVEDESK_SECRET=STRONG))
    try:
        wait_up(proc, base)
        assert get(base + "/api/dev/token?role=admin") == 404
        assert get(base + "/") == 200
    finally:
        out, _err = stop(proc)
    assert "dev mode" not in out


def test_livedesk_dev_on_without_the_flag_refuses_to_start():
    port = free_port()
    proc = start(["--port", str(port)], serve_env(LIVEDESK_DEV="on", LIVEDESK_SECRET=STRONG))
    out, err = stop_after_exit(proc)
    assert proc.returncode == 2 and "--dev" in err, (out, err)


def test_livedesk_dev_disabled_is_not_a_boolean():
    proc = start(["--port", str(free_port())],
                 serve_env(LIVEDESK_DEV="disabled", LIVEDESK_SECRET=STRONG))
    _out, err = stop_after_exit(proc)
    assert proc.returncode == 2 and "LIVEDESK_DEV" in err and "boolean" in err, err


def stop_after_exit(proc: subprocess.Popen, timeout: float = 30.0) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail("livedesk serve started although it should have refused")


@pytest.mark.parametrize("secret", ["a", "changeme", "short-but-not-random-1234"])
def test_weak_secret_refuses_to_start_with_a_clear_message(secret):
    """Before: LIVEDESK_SECRET=a was accepted (tokens forged offline at once)."""
    proc = start(["--port", str(free_port())], serve_env(LIVEDESK_SECRET=secret))
    out, err = stop_after_exit(proc)
    assert proc.returncode == 2, (out, err)
    assert "LIVEDESK_SECRET is too weak" in err and "openssl rand -hex 32" in err, err
    assert "Traceback" not in err and "listening" not in out


def test_dev_refuses_a_public_url_that_is_not_loopback():
    """--dev behind a proxy: the process is told browsers reach it at a public URL.
    (Only configuration is read; nothing is sent to that address.)"""
    proc = start(["--dev", "--port", str(free_port())],
                 serve_env(LIVEDESK_PUBLIC_URL="https://shop.example.com"))
    out, err = stop_after_exit(proc)
    assert proc.returncode == 2 and "LIVEDESK_PUBLIC_URL" in err, (out, err)


def test_make_run_style_dev_still_serves_dev_tokens():
    """`make run` (livedesk serve --dev on 127.0.0.1) keeps working."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(["--dev", "--host", "127.0.0.1", "--port", str(port)], serve_env())
    try:
        wait_up(proc, base)
        assert get(base + "/api/dev/token?role=agent&user=a1") == 200
    finally:
        stop(proc)
