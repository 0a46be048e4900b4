"""deploy/k8s/ (issue 22, item 4): every manifest validates offline against the Kubernetes
JSON schemas that ``kubernetes-validate`` ships (strict: unknown fields are errors), with the
network closed while it runs, and the manifests agree with what the gateway does: readiness on
/readyz, liveness on /healthz, a grace period that covers the preStop pause and the SIGTERM
drain, the UDP media range, the Secret keys the pods read, one PDB and Services matching the
pods, coturn sharing the TURN secret and the denied peer ranges of docker/compose.yaml.
"""

from __future__ import annotations

import functools
import re
import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# the oldest Kubernetes still maintained when this was written, and the newest the validator
# knows: a field that one of them lacks fails
VERSIONS = ("1.30.0", "1.37.0")


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@functools.cache
def manifests() -> dict[str, list[dict]]:
    return {p.name: documents(p) for p in sorted(K8S.glob("*.yaml"))}


def resources() -> list[dict]:
    return [d for name, docs in manifests().items() if name != "kustomization.yaml"
            for d in docs]


def by_kind(kind: str) -> list[dict]:
    return [d for d in resources() if d["kind"] == kind]


def one(kind: str, name: str) -> dict:
    found = [d for d in by_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


@pytest.fixture
def no_network(monkeypatch):
    """The validator must find every schema in its package: any connection attempt fails."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the schema validation tried to connect: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_kustomization_lists_every_manifest_but_the_secret_example():
    k = documents(K8S / "kustomization.yaml")[0]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(k["resources"]) == files
    assert k["namespace"] == one("Namespace", "livedesk")["metadata"]["name"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version, no_network):
    import kubernetes_validate

    docs = resources()
    assert {d["kind"] for d in docs} >= {"StatefulSet", "Service", "PodDisruptionBudget",
                                         "ConfigMap", "Secret", "Deployment", "Namespace"}
    for d in docs:
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            raise AssertionError(f"{d['kind']}/{d['metadata']['name']} at {path}: "
                                 f"{e.message}") from None


def test_the_validator_rejects_a_wrong_manifest(no_network):
    """The check above can fail: a misspelt field and a wrong type are refused."""
    import kubernetes_validate

    sts = yaml.safe_load(yaml.safe_dump(one("StatefulSet", "livedesk-gw")))
    sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpget"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, VERSIONS[0], strict=True)
    pdb = yaml.safe_load(yaml.safe_dump(one("PodDisruptionBudget", "livedesk-gw")))
    pdb["spec"]["selector"] = "app=livedesk"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pdb, VERSIONS[0], strict=True)


def gateway_pod() -> dict:
    return one("StatefulSet", "livedesk-gw")["spec"]["template"]


def gateway_container() -> dict:
    (c,) = [c for c in gateway_pod()["spec"]["containers"] if c["name"] == "gateway"]
    return c


def config_data() -> dict[str, str]:
    return one("ConfigMap", "livedesk-config")["data"]


def test_probes_follow_health_vs_readiness():
    c = gateway_container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == 8080 and "--port" in c["args"]
    assert c["args"][c["args"].index("--port") + 1] == "8080"


def test_grace_period_covers_the_prestop_pause_and_the_drain():
    """docs/deployment.md: terminationGracePeriodSeconds >= LIVEDESK_DRAIN_S + 10, and here
    the preStop pause comes first (kubelet counts it in the grace period)."""
    spec = gateway_pod()["spec"]
    cmd = gateway_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[0] == "sleep"
    pause = int(cmd[1])
    drain = float(config_data()["LIVEDESK_DRAIN_S"])
    assert spec["terminationGracePeriodSeconds"] >= pause + drain + 10


def test_media_range_node_network_and_one_gateway_per_node():
    data = config_data()
    lo, hi = int(data["LIVEDESK_UDP_PORT_MIN"]), int(data["LIVEDESK_UDP_PORT_MAX"])
    assert 1024 < lo <= hi < 65536
    # the image advertises the same range (docker/Dockerfile EXPOSE)
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert f"EXPOSE {lo}-{hi}/udp" in dockerfile
    spec = gateway_pod()["spec"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["labelSelector"]["matchLabels"].items() <= gateway_pod()["metadata"]["labels"].items()
    env = {e["name"]: e for e in gateway_container()["env"]}
    assert env["LIVEDESK_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["LIVEDESK_MEDIA_ADDRESS"]["value"] == "$(NODE_IP)"


def test_every_secret_and_config_reference_resolves():
    secret = one("Secret", "livedesk-secrets")
    keys = set(secret["stringData"])
    cm = config_data()
    refs = []
    for workload in by_kind("StatefulSet") + by_kind("Deployment"):
        for c in workload["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                src = e.get("valueFrom", {})
                if "secretKeyRef" in src:
                    refs.append(("secret", src["secretKeyRef"]["name"], src["secretKeyRef"]["key"]))
                if "configMapKeyRef" in src:
                    refs.append(("cm", src["configMapKeyRef"]["name"], src["configMapKeyRef"]["key"]))
            for e in c.get("envFrom", []):
                assert e["configMapRef"]["name"] == "livedesk-config"
    for kind, name, key in refs:
        if kind == "secret":
            assert name == "livedesk-secrets" and key in keys, key
        else:
            assert name == "livedesk-config" and key in cm, key
    env = {e["name"]: e for e in gateway_container()["env"]}
    for var in ("LIVEDESK_SECRET", "LIVEDESK_REDIS_URL", "LIVEDESK_DATABASE_URL",
                "LIVEDESK_TURN_SECRET"):
        assert "secretKeyRef" in env[var]["valueFrom"], var
    # no secret in the ConfigMap
    assert not {"LIVEDESK_SECRET", "LIVEDESK_TURN_SECRET", "LIVEDESK_REDIS_URL",
                "LIVEDESK_DATABASE_URL"} & set(cm)
    # every LIVEDESK_* key the ConfigMap sets is a real setting (docs/configuration.md)
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for k in cm:
        if k.startswith("LIVEDESK_"):
            assert f"`{k}`" in doc, k


def test_services_and_pdb_select_the_gateway_pods():
    labels = gateway_pod()["metadata"]["labels"]
    sts = one("StatefulSet", "livedesk-gw")
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sts["spec"]["serviceName"] == "livedesk-gw-nodes"
    assert sts["spec"]["replicas"] >= 2
    for name in ("livedesk-gw", "livedesk-gw-nodes"):
        svc = one("Service", name)
        assert svc["spec"]["selector"].items() <= labels.items(), name
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert one("Service", "livedesk-gw-nodes")["spec"]["clusterIP"] == "None"
    pdb = one("PodDisruptionBudget", "livedesk-gw")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_coturn_shares_the_turn_secret_and_the_denied_ranges_of_compose():
    (c,) = one("Deployment", "coturn")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    gw_env = {e["name"]: e for e in gateway_container()["env"]}
    assert (env["TURN_SECRET"]["valueFrom"]["secretKeyRef"]
            == gw_env["LIVEDESK_TURN_SECRET"]["valueFrom"]["secretKeyRef"])
    assert "--static-auth-secret=$(TURN_SECRET)" in c["args"]
    assert "--use-auth-secret" in c["args"]
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    want = [a for a in compose["services"]["coturn"]["command"] if a.startswith("--denied-peer-ip")]
    assert [a for a in c["args"] if a.startswith("--denied-peer-ip")] == want
    assert "--allow-loopback-peers" not in c["args"]
    # the TURN URLs handed to browsers name coturn's external address
    data = config_data()
    assert all(data["PUBLIC_IP"] in u for u in data["LIVEDESK_TURN_URLS"].split(","))
    assert re.fullmatch(r"\d+", data["TURN_PORT_MIN"]) and re.fullmatch(r"\d+", data["TURN_PORT_MAX"])
