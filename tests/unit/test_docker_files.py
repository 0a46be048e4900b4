"""The deployment files in ``docker/`` say what docs/deployment.md says they do.

``docker compose config`` (or the older ``docker-compose``) validates the compose file when a
compose CLI is installed; no engine is needed for that. Without one, and always in addition,
the files are checked as text: the services, Redis durability, the shared TURN secret, the
load balancer's readiness routing and WebSocket timeout, the image's non-root user and
health probe. The probe script itself is run against a real local HTTP server.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
HAPROXY = DOCKER / "haproxy.cfg"
ENV_EXAMPLE = DOCKER / ".env.example"
SERVICES = ("gw1", "gw2", "redis", "postgres", "coturn", "lb")
REQUIRED_ENV = {"LIVEDESK_SECRET": "test-secret", "TURN_SECRET": "test-turn-secret",
                "REDIS_PASSWORD": "test-redis-password",
                "POSTGRES_PASSWORD": "test-postgres-password"}


# --- helpers ------------------------------------------------------------------------------

def compose_cli() -> list[str] | None:
    """``docker compose`` (v2 plugin) if it answers, else ``docker-compose``, else None."""
    if shutil.which("docker"):
        try:
            r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
            if r.returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def run_compose_config(env_extra: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    cli = compose_cli()
    env = {k: v for k, v in os.environ.items()
           if k not in REQUIRED_ENV and not k.startswith("COMPOSE_")}
    env.update(env_extra)
    # An empty env file: a developer's docker/.env must not decide the outcome.
    empty = tmp / "empty.env"
    empty.write_text("")
    return subprocess.run([*cli, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def service_blocks(text: str) -> dict[str, str]:
    """Top-level services of a compose file (2-space indent under ``services:``) → text."""
    m = re.search(r"^services:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, "compose.yaml has no top-level services: key"
    blocks: dict[str, str] = {}
    name = None
    for line in m.group(1).splitlines():
        key = re.match(r"^  ([A-Za-z0-9_.-]+):\s*$", line)
        if key:
            name = key.group(1)
            blocks[name] = ""
        elif name:
            blocks[name] += line + "\n"
    return blocks


def anchor_block(text: str, anchor: str) -> str:
    m = re.search(rf"^(\S[^\n]*&{anchor}\n.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, f"anchor &{anchor} not found"
    return m.group(1)


def expand(block: str, text: str) -> str:
    """A service block plus the x-gateway anchor it merges (``<<: *gateway``)."""
    return block + (anchor_block(text, "gateway") if "<<: *gateway" in block else "")


def final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM\s", dockerfile, flags=re.M)[-1]


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", value.strip())
    assert m, f"not a duration: {value!r}"
    n, unit = float(m.group(1)), m.group(2) or "ms"  # HAProxy's default unit is ms
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text()


# --- compose: parsed by the real CLI when there is one ---------------------------------------

def test_compose_config_is_valid_with_the_required_secrets(tmp_path):
    if compose_cli() is None:
        pytest.skip("no docker compose / docker-compose CLI; the text checks below still run")
    r = run_compose_config(REQUIRED_ENV, tmp_path)
    assert r.returncode == 0, f"compose config failed:\n{r.stdout}\n{r.stderr}"


def test_compose_config_refuses_to_run_without_the_secrets(tmp_path):
    if compose_cli() is None:
        pytest.skip("no docker compose / docker-compose CLI")
    for missing in REQUIRED_ENV:
        env = {k: v for k, v in REQUIRED_ENV.items() if k != missing}
        r = run_compose_config(env, tmp_path)
        assert r.returncode != 0, f"compose config accepted a missing {missing}"
        assert missing in (r.stdout + r.stderr)


def test_compose_parses_as_yaml_when_pyyaml_is_installed(compose_text):
    import yaml  # the test extra (pyproject.toml)

    doc = yaml.safe_load(compose_text)
    services = doc["services"]
    assert set(SERVICES) <= set(services)
    for name in ("gw1", "gw2"):
        svc = services[name]
        assert svc["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert svc["environment"]["LIVEDESK_NODE_ID"] == name
        assert "healthcheck" in svc
    for name in SERVICES:
        assert "healthcheck" in services[name], name


def test_compose_gives_the_gateways_postgresql_on_the_private_network(compose_text):
    """The store the archiver writes (docs/deployment.md): a postgres service only on
    ``state``, with a volume and a readiness probe; every gateway waits for it and names it
    in LIVEDESK_DATABASE_URL with the required password."""
    import yaml

    services = yaml.safe_load(compose_text)["services"]
    pg = services["postgres"]
    assert pg["networks"] == ["state"]
    assert "ports" not in pg  # never published on the host
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for name in ("gw1", "gw2"):
        svc = services[name]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = svc["environment"]["LIVEDESK_DATABASE_URL"]
        assert re.fullmatch(r"postgresql://livedesk:\$\{POSTGRES_PASSWORD:\?[^}]*\}"
                            r"@postgres:5432/livedesk", url), url


# --- compose: text checks, always -------------------------------------------------------------

def test_compose_has_every_service_with_a_healthcheck(compose_text):
    blocks = service_blocks(compose_text)
    missing = [s for s in SERVICES if s not in blocks]
    assert not missing, f"services missing from compose.yaml: {missing}"
    for name in SERVICES:
        assert "healthcheck:" in expand(blocks[name], compose_text), f"{name} has no healthcheck"


def test_gateways_are_distinct_nodes_on_the_shared_redis(compose_text):
    blocks = service_blocks(compose_text)
    gateway = anchor_block(compose_text, "gateway")
    assert "context: .." in gateway and "dockerfile: docker/Dockerfile" in gateway
    assert re.search(r"depends_on:\s*\n\s+redis:\s*\n\s+condition: service_healthy", gateway)
    assert re.search(r"LIVEDESK_REDIS_URL: redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/0",
                     gateway), "the gateways' Redis URL must carry the required REDIS_PASSWORD"
    assert re.search(r"LIVEDESK_SECRET: \$\{LIVEDESK_SECRET:\?", gateway), \
        "LIVEDESK_SECRET must be required (${LIVEDESK_SECRET:?...}), never defaulted"
    assert "stop_grace_period:" in gateway
    ranges = []
    for name in ("gw1", "gw2"):
        block = blocks[name]
        assert "<<: *gateway" in block and "<<: *gateway-env" in block, name
        assert re.search(rf"LIVEDESK_NODE_ID: {name}\s*$", block, re.M), name
        lo = re.search(r"LIVEDESK_UDP_PORT_MIN: \$\{(\w+):-(\d+)\}", block)
        hi = re.search(r"LIVEDESK_UDP_PORT_MAX: \$\{(\w+):-(\d+)\}", block)
        assert lo and hi, f"{name} needs LIVEDESK_UDP_PORT_MIN/MAX"
        # the same range is published 1:1 as UDP
        published = f"${{{lo.group(1)}:-{lo.group(2)}}}-${{{hi.group(1)}:-{hi.group(2)}}}"
        assert f'"{published}:{published}/udp"' in block, f"{name} must publish its UDP range 1:1"
        ranges.append((int(lo.group(2)), int(hi.group(2))))
    (a_lo, a_hi), (b_lo, b_hi) = sorted(ranges)
    assert a_lo <= a_hi < b_lo <= b_hi, f"gateway UDP ranges overlap: {ranges}"


def test_redis_keeps_an_append_only_file_and_never_evicts(compose_text):
    redis = service_blocks(compose_text)["redis"]
    flat = " ".join(re.sub(r"^\s*-\s+", "", x).strip().strip('"') for x in redis.splitlines())
    assert "--appendonly yes" in flat
    assert "--appendfsync everysec" in flat
    assert "--maxmemory-policy noeviction" in flat
    assert re.search(r"^\s+- redis-data:/data\s*$", redis, re.M), "Redis data needs a volume"
    assert re.search(r"^volumes:\s*\n\s+redis-data:", compose_text, re.M)


def test_gateways_and_coturn_share_the_turn_rest_secret(compose_text):
    gateway = anchor_block(compose_text, "gateway")
    coturn = service_blocks(compose_text)["coturn"]
    assert re.search(r"LIVEDESK_TURN_SECRET: \$\{TURN_SECRET:\?", gateway)
    assert re.search(r"LIVEDESK_TURN_URLS: turn:", gateway)
    assert re.search(r"- --static-auth-secret=\$\{TURN_SECRET:\?", coturn)
    for flag in ("--use-auth-secret", "--realm=", "--no-cli", "--min-port=", "--max-port="):
        assert flag in coturn, f"coturn lacks {flag}"
    assert '"3478:3478/udp"' in coturn and '"3478:3478/tcp"' in coturn


def test_load_balancer_routes_on_readiness_and_keeps_websockets_open(compose_text):
    lb = service_blocks(compose_text)["lb"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg" in lb
    cfg = HAPROXY.read_text()
    tunnel = re.search(r"^\s*timeout tunnel\s+(\S+)", cfg, re.M)
    assert tunnel and seconds(tunnel.group(1)) >= 3600, "WebSockets need timeout tunnel >= 1h"
    assert re.search(r"^\s*http-check send meth GET uri /readyz\b", cfg, re.M)
    assert re.search(r"^\s*http-check expect status 200\s*$", cfg, re.M)
    checked = re.search(r"^\s*default-server\s.*\bcheck\b", cfg, re.M)
    for node in ("gw1", "gw2"):
        line = re.search(rf"^\s*server {node} {node}:8080\b(.*)$", cfg, re.M)
        assert line, f"haproxy.cfg has no server line for {node}"
        assert checked or "check" in line.group(1), f"{node} is not health-checked"
    assert re.search(r"^\s*option redispatch\s*$", cfg, re.M)


def test_env_example_documents_every_secret_without_values():
    env = ENV_EXAMPLE.read_text()
    for key in REQUIRED_ENV:
        m = re.search(rf"^{key}=(.*)$", env, re.M)
        assert m, f".env.example does not document {key}"
        assert m.group(1).strip() == "", f".env.example must not ship a value for {key}"
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


# --- image ------------------------------------------------------------------------------------

def test_dockerfile_is_slim_non_root_and_health_checked():
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), b)
             for b in re.findall(r"^FROM\s+(\S+)", text, re.M)]
    assert bases and all(b.startswith("python:3.11-slim") for b in bases), bases
    last = final_stage(text)
    users = re.findall(r"^USER\s+(\S+)", last, re.M)
    assert users, "the final stage runs as root: add a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    hc = re.search(r"^HEALTHCHECK\s.*?CMD\s+(.+)$", last, re.M | re.S)
    assert hc and "/healthz" in hc.group(1), "HEALTHCHECK must probe /healthz"
    assert "livedesk-healthcheck" in hc.group(1)
    assert re.search(r"^COPY docker/healthcheck.py /usr/local/bin/livedesk-healthcheck$",
                     last, re.M)
    assert re.search(r"^EXPOSE 8080(/tcp)?$", last, re.M)
    assert re.search(r"^EXPOSE \d+-\d+/udp$", last, re.M)
    assert re.search(r'^ENTRYPOINT \["livedesk", "serve", "--host", "0.0.0.0"\]$', last, re.M)
    code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    for heavy in ("build-essential", "gcc", "apt-get install", "curl"):
        assert heavy not in code, f"the image should not need {heavy}"


def test_dockerignore_lets_through_everything_the_dockerfile_copies():
    allowed = {line[1:].rstrip("/") for line in
               (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    sources = []
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE.read_text(), re.M):
        sources += line.split()[:-1]
    assert sources
    for src in sources:
        assert src.rstrip("/") in allowed, f"COPY {src} is excluded by Dockerfile.dockerignore"


# --- the health probe script, run for real -------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - stdlib name
        status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def probe():
    spec = importlib.util.spec_from_file_location("livedesk_healthcheck", DOCKER / "healthcheck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_health_probe_passes_on_2xx_and_fails_otherwise(probe, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("LIVEDESK_PORT", str(server.server_address[1]))
        assert probe.main(["probe"]) == 0  # default path /healthz
        assert probe.main(["probe", "/healthz"]) == 0
        assert probe.main(["probe", "/readyz"]) == 1
        assert probe.main(["probe", "/nope"]) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_health_probe_fails_when_nothing_listens(probe, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LIVEDESK_PORT", str(port))
    assert probe.main(["probe", "/healthz", "1"]) == 1


# --- operations doc covers every metric -------------------------------------------------------

def test_operations_doc_lists_every_metric():
    from gateway.metrics import Metrics

    doc = (ROOT / "docs" / "operations.md").read_text()
    names = {m.name for m in Metrics().registry.collect()}
    missing = sorted(n for n in names if not re.search(rf"`{re.escape(n)}(_total)?`", doc))
    assert not missing, f"docs/operations.md does not document: {missing}"
