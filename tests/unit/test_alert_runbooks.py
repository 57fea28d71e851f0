"""Every alert links to a runbook that exists: a page of the docs site and a heading on it.

The `runbook` annotation of each rule in deploy/prometheus/alerts.yml is a repository path with an
anchor (`docs/operations/alerts.md#outboxlag`). The anchors are computed as the site computes them
(Python-Markdown's `toc`, plus `attr_list` for explicit ids), so a renamed heading fails here
before an operator follows a dead link. The README's links into the repository are checked too.
"""

from __future__ import annotations

import re
from pathlib import Path

import markdown
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def _alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def anchors_of(page: Path) -> set[str]:
    """The ids a page's headings (and explicit `{#id}` or HTML ids) get on the site."""
    converter = markdown.Markdown(extensions=["toc", "attr_list", "fenced_code", "tables", "md_in_html"])
    html = converter.convert(page.read_text())
    return set(re.findall(r'\sid="([^"]+)"', html))


def test_the_rules_have_alerts() -> None:
    assert len(_alerts()) >= 10


@pytest.mark.parametrize("rule", _alerts(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_links_to_an_existing_runbook_section(rule: dict[str, object]) -> None:
    annotations = rule.get("annotations")
    assert isinstance(annotations, dict) and "runbook" in annotations, f"{rule['alert']} has no runbook"
    path, _, anchor = str(annotations["runbook"]).partition("#")
    page = ROOT / path
    assert path.startswith("docs/") and page.suffix == ".md", f"not a docs page: {path}"
    assert page.is_file(), f"{rule['alert']}: {path} does not exist"
    assert anchor, f"{rule['alert']}: the runbook link names no section of {path}"
    assert anchor in anchors_of(page), f"{rule['alert']}: {path} has no heading with the anchor #{anchor}"


def test_the_readme_links_only_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = [target for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme) if "://" not in target]
    assert targets, "the README links to no page"
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
