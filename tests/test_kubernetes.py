"""deploy/kubernetes/: every manifest validated, strictly (unknown fields are errors), against the
Kubernetes API schemas of K8S_VERSION that the `kubernetes-validate` package ships (offline: the
network is shut while it runs), then what a schema cannot see: the Deployment's environment and
command are settings and flags the server accepts, probes and selectors point where they should,
the grace period covers the drain, and the Redis is bounded."""

from __future__ import annotations

import re
import shlex
import socket
from pathlib import Path

import pytest
import yaml

from prerequisites import require_module

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes still supported upstream when this was written
VARIANTS = ("cpu", "gpu")
SECRET_KEYS = {"cache-secret", "redis-password", "api-keys"}  # base/kustomization.yaml says how to make it


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> list[Path]:
    return sorted(p for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml")


def variant(name: str) -> list[dict]:
    """The resources `kubectl apply -k deploy/kubernetes/<name>` creates (this layout only lists
    files: no patches, so each file is what is applied)."""
    found: list[dict] = []

    def collect(directory: Path) -> None:
        for entry in yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]:
            target = (directory / entry).resolve()
            if target.is_dir():
                collect(target)
            else:
                found.extend(documents(target))

    collect(KUBE / name)
    return found


def one(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test that makes it."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during validation: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("path", manifests(), ids=lambda p: str(p.relative_to(KUBE)))
def test_manifest_is_valid_for_kubernetes(path, offline):
    kv = require_module("kubernetes_validate")
    for doc in documents(path):
        # raises for a schema violation; SchemaNotFoundError (an unknown kind or apiVersion) too,
        # which the package's command line would only warn about
        kv.validate(doc, K8S_VERSION, strict=True)


def test_validation_rejects_what_it_should(offline):
    """The validator in use does reject: a misspelt field, a wrong type, an unknown kind."""
    kv = require_module("kubernetes_validate")
    good = documents(KUBE / "base" / "service.yaml")[0]
    kv.validate(good, K8S_VERSION, strict=True)
    misspelt = {**good, "spec": {**good["spec"], "selectr": {}}}
    wrong_type = {**good, "spec": {**good["spec"], "ports": "8000"}}
    unknown = {**good, "kind": "Servise"}
    for bad in (misspelt, wrong_type, unknown):
        with pytest.raises((kv.ValidationError, kv.SchemaNotFoundError)):
            kv.validate(bad, K8S_VERSION, strict=True)


def test_every_manifest_is_in_a_kustomization():
    listed = set()
    for k in KUBE.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(k.read_text())["resources"]:
            target = (k.parent / entry).resolve()
            assert target.exists(), f"{k} lists {entry}, which does not exist"
            listed.add(target)
    assert set(manifests()) <= listed


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def environment(c: dict) -> dict[str, str]:
    """The container's environment as the pod gets it: Secret values stand in as placeholders,
    $(VAR) expanded from variables defined before it (Kubernetes' rule)."""
    env: dict[str, str] = {}
    for var in c["env"]:
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "stream-server" and ref["key"] in SECRET_KEYS, var
            env[var["name"]] = f"secret-{ref['key']}-0123456789abcdef"
        else:
            value = var["value"]
            for used in re.findall(r"\$\((\w+)\)", value):
                assert used in env, f"{var['name']} uses $({used}) before it is defined"
                value = value.replace(f"$({used})", env[used])
            env[var["name"]] = value
    return env


@pytest.mark.parametrize("name", VARIANTS)
def test_deployment_runs_a_server_that_accepts_its_settings(name):
    from stream_server.cli import _parser, settings

    resources = variant(name)
    deployment = one(resources, "Deployment", "stream-server")
    c = container(deployment)
    env = environment(c)
    assert c["command"][0] == "stream-server"
    args = _parser().parse_args(c["command"][1:])  # flags the CLI knows
    config = settings(args, env)  # every STREAM_SERVER_* is a setting, every value valid
    assert config.server.host == "0.0.0.0" and not config.wyoming.enabled
    assert config.engine.device == {"cpu": "cpu", "gpu": "cuda"}[name]
    assert config.auth.api_keys, "listening beyond loopback needs API keys"
    assert "STREAM_SERVER_CACHE_SECRET" in env  # the same Secret on every replica
    redis = one(resources, "Service", "stream-server-redis")
    assert env["REDIS_URL"].endswith(f"@stream-server-redis:{redis['spec']['ports'][0]['port']}/0")

    (port,) = c["ports"]
    assert (port["name"], port["containerPort"]) == ("http", config.server.port)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"

    # preStop, then the drain, then closing: all before Kubernetes' SIGKILL
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep", shlex.join(pre_stop)
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert period >= float(pre_stop[1]) + config.server.shutdown_grace_seconds + 5

    res = c["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[part]), f"{part} needs cpu and memory"
    if name == "gpu":
        assert res["limits"]["nvidia.com/gpu"] == "1"
    assert config.engine.torch_threads == int(res["limits"]["cpu"])


@pytest.mark.parametrize("name", VARIANTS)
def test_service_and_budget_select_the_server_pods(name):
    resources = variant(name)
    deployment = one(resources, "Deployment", "stream-server")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selects = lambda selector: selector.items() <= labels.items()  # noqa: E731
    assert selects(deployment["spec"]["selector"]["matchLabels"])
    service = one(resources, "Service", "stream-server")
    assert selects(service["spec"]["selector"])
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert "sessionAffinity" not in service["spec"]  # a session is one socket: no stickiness needed
    budget = one(resources, "PodDisruptionBudget", "stream-server")
    assert selects(budget["spec"]["selector"]["matchLabels"])
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_redis_is_bounded_and_private():
    resources = variant("cpu")
    redis = one(resources, "Deployment", "stream-server-redis")
    c = container(redis)
    args = c["args"]
    assert args[args.index("--maxmemory") + 1] == "1gb"
    assert args[args.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert "REDIS_PASSWORD" in environment(c)
    service = one(resources, "Service", "stream-server-redis")
    assert service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
