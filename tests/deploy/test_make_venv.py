"""`make run` / `make test` on a stock Debian or Ubuntu python3 without python3-venv (issue
22, item 7): the targets say exactly what to install and leave no broken .venv; a .venv left
without pip is made again; virtualenv is used when venv cannot. No network: the fake python3
below fails where Debian's does, and nothing reaches `pip install`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pip
import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
VER = f"{sys.version_info[0]}.{sys.version_info[1]}"

# Debian's python3 without python3-venv: `-m venv` makes the directory (python, no pip),
# prints this and exits 1; ensurepip and virtualenv are not there.
# FAKE_VENV_OK=1: python3-venv installed; FAKE_VIRTUALENV=1: a virtualenv module that works.
# Both make a working environment the fast way, without ensurepip's copy of pip (tens of
# seconds on a loaded machine): `--without-pip`, then a .pth file that makes the pip of the
# environment running these tests importable, which is what the Makefile checks.
PIP_SITE = Path(pip.__file__).resolve().parents[1]
FAKE_PYTHON = f"""#!/bin/sh
REAL={REAL}
with_pip() {{
  "$REAL" -m venv --without-pip "$1" || exit 1
  echo "{PIP_SITE}" > "$1/lib/python{VER}/site-packages/_test_pip.pth"
}}
if [ "$1" = "-m" ] && [ "$2" = "venv" ] && [ "$FAKE_VENV_OK" = 1 ]; then
  with_pip "$3"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  shift 2; "$REAL" -m venv --without-pip "$@" || exit 1
  cat <<'MSG'
The virtual environment was not created successfully because ensurepip is not
available.  On Debian/Ubuntu systems, you need to install the python3-venv
package using the following command.

    apt install python{VER}-venv

You may need to use sudo with that command.  After installing the python3-venv
package, recreate your virtual environment.
MSG
  exit 1
fi
if [ "$1" = "-m" ] && [ "$2" = "virtualenv" ] && [ "$FAKE_VIRTUALENV" = 1 ]; then
  shift 2
  [ "$1" = "--version" ] && {{ echo "virtualenv 20.0.0 (fake)"; exit 0; }}
  [ "$1" = "-q" ] && shift
  with_pip "$1"; exit 0
fi
if [ "$1" = "-m" ] && {{ [ "$2" = "ensurepip" ] || [ "$2" = "virtualenv" ]; }}; then
  echo "$0: No module named $2" >&2; exit 1
fi
exec "$REAL" "$@"
"""


@pytest.fixture
def stock_debian(tmp_path):
    """A PATH whose python3 is Debian's without python3-venv, and no virtualenv command."""
    assert REAL.exists(), REAL
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(FAKE_PYTHON)
    (fake / "python3").chmod(0o755)
    path = [str(fake)] + [d for d in os.environ["PATH"].split(os.pathsep)
                          if not (Path(d) / "virtualenv").exists()]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(path)
    return env


def make(target: str, venv: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    assert shutil.which("make"), "make is missing"
    return subprocess.run(["make", "-s", "-C", str(ROOT), target, f"VENV={venv}", "PY=python3"],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("target", ["run", "test"])
def test_without_python3_venv_make_says_what_to_install_and_leaves_no_venv(
        target, tmp_path, stock_debian):
    venv = tmp_path / "proj" / ".venv"
    r = make(target, venv, stock_debian)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"apt-get install python{VER}-venv" in out, out
    assert "python3-venv" in out and "virtualenv" in out, out
    assert "ensurepip is not" in out, out  # what python3 -m venv itself said is shown
    assert not venv.exists(), f"a broken {venv} was left behind"
    assert "Traceback" not in out and "No module named pip" not in out, out


def test_a_venv_left_without_pip_is_removed_then_made_again(tmp_path, stock_debian):
    venv = tmp_path / "proj" / ".venv"
    # what the old Makefile left: a venv with python and no pip (then trusted it)
    subprocess.run([str(REAL), "-m", "venv", "--without-pip", str(venv)], check=True)
    assert (venv / "bin" / "python").exists()
    # still on the stock machine: removed, and not made again half-way
    r = make("run", venv, stock_debian)
    assert r.returncode != 0
    assert "has no working pip" in r.stdout + r.stderr, r.stdout + r.stderr
    assert not venv.exists()
    # after `apt-get install python3-venv`: made again, with pip
    subprocess.run([str(REAL), "-m", "venv", "--without-pip", str(venv)], check=True)
    r = make("venv", venv, dict(stock_debian, FAKE_VENV_OK="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "has no working pip" in r.stdout + r.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_virtualenv_is_used_when_venv_cannot(tmp_path, stock_debian):
    venv = tmp_path / "proj" / ".venv"
    r = make("venv", venv, dict(stock_debian, FAKE_VIRTUALENV="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "made" in r.stdout and "virtualenv" in r.stdout, r.stdout
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import pip"])
    assert check.returncode == 0


def test_an_old_python_is_refused_with_what_to_run(tmp_path, stock_debian):
    fake = Path(stock_debian["PATH"].split(os.pathsep)[0])
    (fake / "python3").write_text("#!/bin/sh\n"
                                  "case \"$*\" in *version_info*) exit 1;; esac\n"
                                  "[ \"$1\" = -V ] && { echo 'Python 3.9.2'; exit 0; }\n"
                                  "exit 1\n")
    venv = tmp_path / "proj" / ".venv"
    r = make("run", venv, stock_debian)
    assert r.returncode != 0
    assert "needs Python >= 3.11; python3 is Python 3.9.2" in r.stdout + r.stderr
    assert not venv.exists()
