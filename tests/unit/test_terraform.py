"""deploy/terraform parses (python-hcl2) and says what the platform needs of AWS.

No terraform binary, cloud account or provider download here: these read the configuration as
written. checkov's policy checks are in test_terraform_checkov.py.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
FILES = sorted(TERRAFORM.glob("*.tf"))


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes around names and string literals; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@functools.cache
def _parsed(path: Path) -> dict[str, Any]:
    with path.open() as file:
        return hcl2.load(file)


def _blocks(kind: str) -> dict[str, dict[str, Any]]:
    """Every `kind` block (variable, output) of every file, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in FILES:
        for block in _parsed(path).get(kind, []):
            for name, body in block.items():
                found[_unquote(name)] = body
    return found


def _resources(resource_type: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in FILES:
        for block in _parsed(path).get("resource", []):
            for kind, named in block.items():
                if _unquote(kind) == resource_type:
                    found.update({_unquote(name): body for name, body in named.items()})
    return found


def _one(resource_type: str) -> dict[str, Any]:
    (body,) = _resources(resource_type).values()
    return body


def test_there_is_a_terraform_configuration_to_check():
    assert {"versions.tf", "variables.tf", "outputs.tf"} <= {path.name for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_terraform_file_parses(path):
    assert _parsed(path), f"{path.name} is empty"


def test_every_variable_has_a_type_and_a_description():
    variables = _blocks("variable")
    assert variables
    untyped = sorted(name for name, body in variables.items() if not body.get("type"))
    undescribed = sorted(name for name, body in variables.items() if not _unquote(body.get("description")))
    assert untyped == [], f"variables without a type: {untyped}"
    assert undescribed == [], f"variables without a description: {undescribed}"


def test_every_output_has_a_description_for_the_kubernetes_overlay():
    outputs = _blocks("output")
    assert {"database_host", "database_secret_arn", "amqp_endpoint", "rabbitmq_secret_arn"} <= set(outputs)
    assert [name for name, body in outputs.items() if not _unquote(body.get("description"))] == []


def test_the_broker_is_a_rabbitmq_cluster_across_availability_zones_reachable_only_privately():
    broker = _one("aws_mq_broker")
    assert _unquote(broker["engine_type"]) == "RabbitMQ"
    assert _unquote(broker["deployment_mode"]) == "CLUSTER_MULTI_AZ"
    assert broker["publicly_accessible"] is False


def test_the_database_is_multi_az_encrypted_backed_up_and_protected_from_deletion():
    database = _one("aws_db_instance")
    assert database["multi_az"] is True
    assert database["storage_encrypted"] is True
    assert database["publicly_accessible"] is False
    assert database["manage_master_user_password"] is True, "RDS generates the password into Secrets Manager"
    assert "var.db_backup_retention_days" in database["backup_retention_period"]
    assert "var.deletion_protection" in database["deletion_protection"]
    assert _blocks("variable")["deletion_protection"]["default"] is True


def test_the_parameter_group_holds_the_settings_the_workers_rely_on():
    group = _one("aws_db_parameter_group")
    names = {_unquote(parameter["name"]) for parameter in group["parameter"]}
    assert {"max_connections", "idle_in_transaction_session_timeout", "statement_timeout"} <= names


def test_database_and_broker_admit_only_the_workload_security_groups():
    rules = _resources("aws_vpc_security_group_ingress_rule")
    assert rules
    for name, rule in rules.items():
        assert "var.workload_security_group_ids" in rule["for_each"], name
        assert rule["referenced_security_group_id"] == "${each.value}", name
        assert not {"cidr_ipv4", "cidr_ipv6", "prefix_list_id"} & set(rule), f"{name} admits an address range"
    for group in _resources("aws_security_group").values():
        assert "ingress" not in group and "egress" not in group, "rules live in their own resources"


def test_no_credential_is_written_in_the_configuration():
    # Passwords come from random_password or RDS; a literal would sit in the repository.
    assignment = re.compile(r'^\s*"?(\w*(password|secret_string)\w*)"?\s*=\s*"', re.IGNORECASE)
    for path in FILES:
        for line in path.read_text().splitlines():
            assert not assignment.match(line), f"{path.name}: a literal credential: {line.strip()}"
