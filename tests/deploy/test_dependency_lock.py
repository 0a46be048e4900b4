"""docker/requirements.lock (issue 22, item 7): the image installs exact, hashed versions
that satisfy pyproject.toml's ranges; av, numpy and redis have upper bounds. A dependency
added to pyproject.toml without `make lock` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "docker" / "requirements.lock"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
LINUX_311 = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11",
             "os_name": "posix", "implementation_name": "cpython"}


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


def pins() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes)."""
    out: dict[str, tuple[Version, int]] = {}
    name = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if m:
            name = canonicalize_name(m.group(1))
            assert name not in out, f"{name} pinned twice"
            out[name] = (Version(m.group(2)), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            v, n = out[name]
            out[name] = (v, n + 1)
    return out


def test_every_dependency_is_pinned_within_its_range_with_hashes():
    locked = pins()
    assert locked, "the lock pins nothing"
    for req in runtime_requirements():
        if req.marker and not req.marker.evaluate(LINUX_311):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in docker/requirements.lock: run `make lock`"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} in the lock is outside {req.specifier}: run `make lock`")
    for name, (_, hashes) in locked.items():
        assert hashes >= 1, f"{name} has no hash"


def test_the_named_dependencies_have_upper_bounds():
    reqs = {canonicalize_name(r.name): r for r in runtime_requirements()}
    for name in ("av", "numpy", "redis"):
        assert any(s.operator in ("<", "<=", "==", "~=") for s in reqs[name].specifier), name


def test_the_lock_holds_nothing_of_the_machine_that_made_it():
    text = LOCK.read_text(encoding="utf-8")
    for bad in ("--find-links", "--index-url", "--extra-index-url", "file://", "/opt/", "-e "):
        assert bad not in text, bad
    assert "make lock" in text  # how to regenerate it, said in its header


def test_the_image_installs_the_lock_then_the_package_alone():
    code = "\n".join(x for x in DOCKERFILE.read_text(encoding="utf-8").splitlines()
                     if not x.lstrip().startswith("#"))
    assert re.search(r"^COPY docker/requirements.lock \./$", code, re.M)
    lock_install = re.search(r"pip install --require-hashes\b[^\n]*(\\\n[^\n]*)*-r requirements\.lock",
                             code)
    assert lock_install, "the image must install the lock with --require-hashes"
    pkg = re.search(r"pip install --no-deps \.", code)
    assert pkg and pkg.start() > lock_install.start()
