"""deploy/: the compose file and the Kubernetes manifests parse and carry the fields a
deployment needs; every ``modelroute serve`` option they use exists; their policy loads; the
Dockerfile installs with the README's own command. (No container engine runs here.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from modelroute.cli import main
from modelroute.policy import load_policy, load_policy_text

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            found[doc["kind"]] = doc
    return found


def _serve_options() -> set[str]:
    help_text = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text))


def _flags(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def test_compose_runs_replicas_with_postgres_and_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway", "postgres", "redis"} <= set(services)
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    assert {"postgres", "redis"} <= set(gateway["depends_on"])
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    args = gateway["command"]
    assert args[:2] == ["serve", "/etc/modelroute/policy.yaml"]
    assert _flags(args) <= _serve_options(), _flags(args) - _serve_options()
    assert any(a.startswith("--store=postgresql://") and "@postgres:" in a for a in args)
    assert any(a.startswith("--policy-sync=redis://redis:") for a in args)
    mounted = [v.split(":")[0] for v in gateway["volumes"]]
    assert "./policy.yaml" in mounted and (DEPLOY / "policy.yaml").is_file()
    load_policy(DEPLOY / "policy.yaml")  # the policy it mounts loads
    env = gateway["environment"]
    assert all(str(v).startswith("${") for v in env.values())  # from the caller's environment


def test_kubernetes_manifests_have_the_required_fields() -> None:
    found = _manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= set(found)
    deployment = found["Deployment"]
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    args = container["args"]
    assert _flags(args) <= _serve_options(), _flags(args) - _serve_options()
    secrets = [e for e in container["env"] if "valueFrom" in e]
    assert secrets and all("secretKeyRef" in e["valueFrom"] for e in secrets)
    assert not [e for e in container["env"] if "value" in e and "KEY" in e["name"]]
    assert "--admin-token=env:MODELROUTE_ADMIN_TOKEN" in args
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    config = found["ConfigMap"]
    assert volumes["policy"]["configMap"]["name"] == config["metadata"]["name"]
    assert mounts["policy"] == "/etc/modelroute" and args[1] == "/etc/modelroute/policy.yaml"
    load_policy_text(config["data"]["policy.yaml"], "configmap.yaml")  # the policy loads
    service, hpa = found["Service"], found["HorizontalPodAutoscaler"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_the_dockerfile_installs_with_the_readme_command() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme:install -->\n```bash\n(.*?)```", readme, re.S)
    assert block is not None
    readme_commands = {
        line.strip()
        for line in block.group(1).splitlines()
        if line.strip() and not line.startswith("#")
    }
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    installs = [m.strip() for m in re.findall(r"^RUN (.*pip install.*)$", dockerfile, re.M)]
    assert installs and all(i in readme_commands for i in installs), (installs, readme_commands)
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, re.M)  # the README's Python 3.11+
    assert "EXPOSE 8080" in dockerfile and '"serve"' in dockerfile
