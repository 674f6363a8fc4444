"""compose.yaml, the Dockerfile and the Kubernetes manifests refer only to things that exist.

Docker does not run on CI, so these files are checked by parsing them.
"""

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(settings.BASE_DIR)
KUBE = ROOT / "platform" / "kubernetes"


def known_variables() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", text, re.M))


def check_command(command: list[str]) -> None:
    """The program and its arguments name a real ASGI app, Celery app or management command."""
    program = command[0]
    if program == "uvicorn":
        module, _, attribute = command[1].partition(":")
        assert hasattr(importlib.import_module(module), attribute), command
    elif program == "celery":
        app_module = command[command.index("--app") + 1]
        app = importlib.import_module(app_module).celery_app
        assert app.main == "switchboard"
        assert command[command.index("--app") + 2] in {"worker", "beat", "inspect"}, command
    elif program == "python" and command[1] == "manage.py":
        assert command[2] in get_commands(), command
        if command[2] == "runworker":
            from config.routing import channel_consumers

            assert command[3:] and set(command[3:]) <= set(channel_consumers), command
    else:
        raise AssertionError(f"unexpected program {program!r} in {command}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


APP_SERVICES = {"migrate", "web", "worker", "sideband", "beat"}


def test_compose_has_every_process(compose: dict[str, Any]) -> None:
    assert {"postgres", "redis"} | APP_SERVICES <= set(compose["services"])


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_app_services_use_the_one_image(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["image"] == "switchboard:latest"
    assert service["build"]["dockerfile"] == "platform/docker/Dockerfile"
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    check_command(service["command"])
    environment = service["environment"]
    assert set(environment) <= known_variables()
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")


def test_compose_services_have_health_checks_and_wait_for_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert "migrate" not in services["migrate"]["depends_on"]


@pytest.mark.django_db
def test_the_web_health_check_is_a_real_endpoint(compose: dict[str, Any], client: Any) -> None:
    probe = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    path = re.search(r"127\.0\.0\.1:8000(/\w+)", probe)
    assert path is not None
    assert client.get(path.group(1)).json()["status"] == "ok"


def test_dockerfile_installs_the_lock_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "platform" / "docker" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert (ROOT / "requirements.lock").is_file()
    assert re.search(r"^USER app$", dockerfile, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None
    check_command(yaml.safe_load(cmd.group(1)))


def kube_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        documents += [d for d in yaml.safe_load_all((KUBE / resource).read_text()) if d]
    return documents


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in kube_documents() if d["kind"] == kind}


def test_kubernetes_has_every_piece() -> None:
    deployments = by_kind("Deployment")
    assert {
        "switchboard-web",
        "switchboard-worker",
        "switchboard-sideband",
        "switchboard-beat",
    } <= set(deployments)
    assert "switchboard-web" in by_kind("Service")
    assert "switchboard-migrate" in by_kind("Job")
    assert deployments["switchboard-beat"]["spec"]["replicas"] == 1


def test_kubernetes_containers_use_the_image_and_real_commands() -> None:
    secret = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
    config_maps = by_kind("ConfigMap")
    workloads = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    for workload in workloads:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == "switchboard"
            check_command(container["command"])
            sources = container["envFrom"]
            assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} <= set(
                config_maps
            )
            assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} == {
                secret["metadata"]["name"]
            }
    for config_map in config_maps.values():
        assert set(config_map["data"]) <= known_variables()
    # A secret's key is either a setting, or a value a manifest maps onto one (the migrate job
    # connects as the tables' owner: DATABASE_OWNER_URL becomes its DATABASE_URL).
    mapped = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]["key"]
        for workload in workloads
        for container in workload["spec"]["template"]["spec"]["containers"]
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert set(mapped) <= known_variables()
    assert set(mapped.values()) <= set(secret["stringData"])
    assert set(secret["stringData"]) <= known_variables() | set(mapped.values())


@pytest.mark.django_db
def test_web_probes_use_real_endpoints(client: Any) -> None:
    web = by_kind("Deployment")["switchboard-web"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert client.get(web[probe]["httpGet"]["path"]).json()["status"] == "ok"


def test_autoscalers_target_the_web_and_worker_deployments() -> None:
    deployments = by_kind("Deployment")
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in by_kind("HorizontalPodAutoscaler").values()
    }
    assert targets == {"switchboard-web", "switchboard-worker"}
    assert targets <= set(deployments)


def test_every_channel_has_a_worker_in_compose_and_kubernetes(compose: dict[str, Any]) -> None:
    from config.routing import channel_consumers

    def served(commands: list[list[str]]) -> set[str]:
        return {name for c in commands if c[1:3] == ["manage.py", "runworker"] for name in c[3:]}

    in_compose = served([s["command"] for s in compose["services"].values() if "command" in s])
    in_kubernetes = served(
        [
            container["command"]
            for deployment in by_kind("Deployment").values()
            for container in deployment["spec"]["template"]["spec"]["containers"]
        ]
    )
    assert set(channel_consumers) <= in_compose
    assert set(channel_consumers) <= in_kubernetes
