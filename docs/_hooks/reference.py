"""MkDocs hook: the reference pages are generated from the code when the site is built.

A page holds prose and a marker line, `<!-- reference: NAME -->`, which this hook replaces with
Markdown built from the code it documents, so the reference cannot drift from it:

- `settings`: `shared.config.Settings.model_fields` (variable, type, default, description);
- `metrics`: the metric objects of `shared.metrics` (name, type, labels, help);
- `http-api`: the OpenAPI document of `workers.api.app.create_app`, also published as
  `reference/openapi.json`.

The CLI page is rendered by mkdocs-click from `workers.cli:main`. Its commands are loaded lazily
(`workers.cli_group.LazyGroup` lists a name and imports the command on first use); `on_config`
loads them all first, in this build process only, so mkdocs-click sees every command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from reference_metrics import metrics_markdown
from reference_openapi import http_api_markdown, openapi_json
from reference_settings import settings_markdown

MARKER = re.compile(r"^<!-- reference: ([a-z-]+) -->$", re.MULTILINE)
RENDERERS: dict[str, Callable[[], str]] = {
    "settings": settings_markdown,
    "metrics": metrics_markdown,
    "http-api": http_api_markdown,
}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    from workers.cli import main

    _load_every_command(main, click.Context(main, info_name="circulate"))
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "reference/openapi.json", content=openapi_json()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files, **_: Any) -> str:
    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise PluginError(f"{page.file.src_uri}: unknown reference {name!r} (known: {sorted(RENDERERS)})")
        return RENDERERS[name]()

    return MARKER.sub(render, markdown)


def _load_every_command(group: click.Command, context: click.Context) -> None:
    """Put every listed subcommand into `group.commands`, where mkdocs-click looks first."""
    if not isinstance(group, click.Group):
        return
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None:
            raise PluginError(f"`{context.command_path} {name}` is listed but cannot be loaded")
        group.commands.setdefault(name, command)
        _load_every_command(command, click.Context(command, parent=context, info_name=name))
