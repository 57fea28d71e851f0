"""deploy/k8s: every overlay rendered by `kubectl kustomize` and validated, then checked for the
properties docs/operations/deploy.md promises.

Built-in kinds are validated by kubernetes-validate (strict: an unknown field fails); KEDA's and
the Prometheus operator's objects by their CRD schemas in `../shared/schemas/` (read from there,
never copied here). kubectl is installed by `make` (scripts/install-kubectl.sh); without it, or
without the schemas, the tests that need them skip and say where to get them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.config import QUEUES, Settings
from tests.unit.test_deploy_compose import logging_restored, resolve  # noqa: F401 (a fixture)
from workers.cli import main

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SCHEMAS = ROOT.parent / "shared" / "schemas"
CRD_SCHEMAS = {
    "ScaledObject": "keda.sh/scaledobject_v1alpha1.json",
    "TriggerAuthentication": "keda.sh/triggerauthentication_v1alpha1.json",
    "ServiceMonitor": "monitoring.coreos.com/servicemonitor_v1.json",
    "PrometheusRule": "monitoring.coreos.com/prometheusrule_v1.json",
}
#: The Kubernetes release the built-in kinds are validated against (EKS's supported range).
KUBERNETES_VERSION = "1.32.0"
HEARTBEAT_PROBE = ["python", "-m", "shared.heartbeat"]

Objects = list[dict[str, Any]]


@functools.cache
def rendered(overlay: str) -> Objects:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing = "kubectl is missing: `make test` installs it (scripts/install-kubectl.sh)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def of_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def worker_queues(deployment: dict[str, Any]) -> set[str]:
    args = container(deployment)["args"]
    return {args[index + 1] for index, arg in enumerate(args) if arg == "--queues"}


def workers(objects: Objects) -> dict[str, dict[str, Any]]:
    return {
        name: obj
        for name, obj in of_kind(objects, "Deployment").items()
        if obj["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    }


def config(objects: Objects) -> dict[str, str]:
    (config_map,) = of_kind(objects, "ConfigMap").values()
    return config_map["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_built_in_kinds_are_valid_kubernetes_objects(overlay):
    problems = []
    for obj in rendered(overlay):
        if obj["kind"] in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {error}")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_and_prometheus_operator_objects_follow_their_crd_schemas(overlay):
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is missing: see its README.md for the sources (datreeio/CRDs-catalog)")
    custom = [obj for obj in rendered(overlay) if obj["kind"] in CRD_SCHEMAS]
    assert {obj["kind"] for obj in custom} == set(CRD_SCHEMAS)
    for obj in custom:
        schema = json.loads((SCHEMAS / CRD_SCHEMAS[obj["kind"]]).read_text())
        errors = [error.message for error in jsonschema.Draft7Validator(schema).iter_errors(obj)]
        assert errors == [], f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_crd_check_fails_on_a_scaled_object_with_an_unknown_field():
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is missing")
    schema = json.loads((SCHEMAS / CRD_SCHEMAS["ScaledObject"]).read_text())
    (scaled,) = list(of_kind(rendered("prod"), "ScaledObject").values())[:1]
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metadta"] = broken["spec"]["triggers"][0].pop("metadata")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken)) != []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_queue_is_consumed_by_exactly_one_worker_group_and_scaled_on_by_its_scaled_object(overlay):
    objects = rendered(overlay)
    groups = {name: worker_queues(deployment) for name, deployment in workers(objects).items()}
    consumed = [queue for queues in groups.values() for queue in queues]
    assert sorted(consumed) == sorted(QUEUES)
    scaled = {obj["spec"]["scaleTargetRef"]["name"]: obj for obj in of_kind(objects, "ScaledObject").values()}
    assert set(scaled) == set(groups)
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        triggers = spec["triggers"]
        assert {trigger["metadata"]["queueName"] for trigger in triggers} == groups[name]
        for trigger in triggers:
            metadata = trigger["metadata"]
            assert trigger["type"] == "rabbitmq"
            assert metadata["protocol"] == "http", "only the management API counts unacked messages"
            assert metadata["mode"] == "QueueLength"
            assert not re.search(r"\.(XQ|DQ)$", metadata["queueName"])
            assert int(metadata["value"]) > Settings().worker_prefetch
            assert trigger["authenticationRef"]["name"] in of_kind(objects, "TriggerAuthentication")
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        assert spec["cooldownPeriod"] >= 60


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_wedged_worker_fails_its_liveness_probe_and_a_stopping_one_may_finish(overlay):
    objects = rendered(overlay)
    settings = config(objects)
    shutdown_s = int(settings["CIRCULATE_WORKER_SHUTDOWN_TIMEOUT_MS"]) / 1000
    time_limit_s = int(settings["CIRCULATE_TIME_LIMIT_MS"]) / 1000
    for name, deployment in workers(objects).items():
        probe = container(deployment)["livenessProbe"]["exec"]["command"]
        assert probe[:3] == HEARTBEAT_PROBE, name
        assert probe[3] == settings["CIRCULATE_HEARTBEAT_DIR"]
        assert float(probe[probe.index("--max-age") + 1]) > time_limit_s
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown_s


#: The processes with a loop of their own and the role their heartbeat is written under
#: (`LoopHeartbeat.for_role` in workers/relay.py, workers/exporter.py, workers/dlq/sweeper.py).
LOOP_ROLES = {
    "circulate-relay": "relay",
    "circulate-exporter": "exporter",
    "circulate-dlq-sweeper": "dlq-sweeper",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_relay_sweeper_and_exporter_fail_their_liveness_probe_when_their_loop_is_wedged(overlay):
    objects = rendered(overlay)
    heartbeat_dir = config(objects)["CIRCULATE_HEARTBEAT_DIR"]
    deployments = of_kind(objects, "Deployment")
    for name, role in LOOP_ROLES.items():
        probe = container(deployments[name])["livenessProbe"]["exec"]["command"]
        assert probe[:4] == [*HEARTBEAT_PROBE, f"{heartbeat_dir}/{role}"], name
        assert float(probe[probe.index("--max-age") + 1]) >= 60, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_is_ready_on_readyz_and_scaled_by_an_hpa(overlay):
    objects = rendered(overlay)
    api = of_kind(objects, "Deployment")["circulate-api"]
    assert container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "circulate-api"
    assert "replicas" not in api["spec"], "the HPA owns the replica count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_no_privileges(overlay):
    for obj in rendered(overlay):
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        pod = obj["spec"]["template"]["spec"]
        resources = container(obj)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container(obj)["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_of_more_than_one_pod_has_a_disruption_budget(overlay):
    objects = rendered(overlay)
    covered = {
        pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for pdb in of_kind(objects, "PodDisruptionBudget").values()
    }
    scaled = {obj["spec"]["scaleTargetRef"]["name"] for obj in of_kind(objects, "ScaledObject").values()}
    scaled |= {
        obj["spec"]["scaleTargetRef"]["name"] for obj in of_kind(objects, "HorizontalPodAutoscaler").values()
    }
    for name, deployment in of_kind(objects, "Deployment").items():
        if name in scaled or deployment["spec"].get("replicas", 1) > 1:
            assert name in covered, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_may_reach_only_the_data_stores_and_the_outbound_group_the_carrier_and_smtp(overlay):
    objects = rendered(overlay)
    policies = of_kind(objects, "NetworkPolicy")
    assert policies["circulate-default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    for deployment in workers(objects).values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        ports = set()
        for policy in policies.values():
            selector = policy["spec"]["podSelector"].get("matchLabels", {})
            if selector.items() <= labels.items():
                ports |= {port["port"] for rule in policy["spec"].get("egress", []) for port in rule["ports"]}
        allowed = {53, 5432, 6432, 5671, 5672, 443, 15671, 15672}
        if labels["circulate.io/worker-group"] == "outbound":
            allowed |= {587, 8100, 2525}
        assert ports <= allowed, labels["app.kubernetes.io/name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_in_the_repository(overlay):
    objects = rendered(overlay)
    assert of_kind(objects, "Secret") == {}
    assert not any(
        re.search(r"(?i)password|secret|://[^/]*:[^/]*@", value) for value in config(objects).values()
    )


def test_the_prometheus_rule_carries_the_same_groups_as_deploy_prometheus():
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    rule = yaml.safe_load((K8S / "base" / "prometheusrule.yaml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    check = subprocess.run(
        [sys.executable, str(K8S / "generate_prometheusrule.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout


def test_the_setup_job_runs_first_under_a_name_its_spec_decides():
    objects = rendered("prod")
    spec = importlib.util.spec_from_file_location("split_setup", K8S / "split_setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    split_objects = module.split
    setup, rollout, name = split_objects(json.loads(json.dumps(objects)))
    assert re.fullmatch(r"circulate-setup-[0-9a-f]{10}", name)
    assert [obj["metadata"]["name"] for obj in setup if obj["kind"] == "Job"] == [name]
    assert not any(obj["kind"] in {"Deployment", "ScaledObject", "HorizontalPodAutoscaler"} for obj in setup)
    assert not any(obj["kind"] == "Job" for obj in rollout)
    (job,) = of_kind(objects, "Job").values()
    assert container(job)["args"] == ["setup"]
    again = split_objects(json.loads(json.dumps(objects)))[2]
    assert again == name
    newer = json.loads(json.dumps(objects))
    for obj in newer:
        if obj["kind"] == "Job":
            container(obj)["image"] = "registry.example.com/circulate:0.2.0"
    assert split_objects(newer)[2] != name


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_real_circulate_command_with_real_options(overlay):
    for obj in rendered(overlay):
        if obj["kind"] not in {"Deployment", "Job"}:
            continue
        args = container(obj)["args"]
        try:
            path = resolve(main, "circulate", args)
        except click.ClickException as error:
            pytest.fail(f"{obj['metadata']['name']}: circulate {' '.join(args)}: {error.format_message()}")
        assert path.startswith("circulate ")
