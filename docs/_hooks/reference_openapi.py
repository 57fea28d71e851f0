"""The HTTP API reference: routes, statuses and schemas from the app's own OpenAPI document.

The app is built the way the tests build it (`workers.api.app.create_app(settings)`); building it
opens no connection (the engine is created by the app's lifespan, which never runs here).
"""

from __future__ import annotations

import json
import re
from typing import Any

from reference_markdown import cell

from shared.config import Settings

HTTP_METHODS = ("get", "put", "post", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document `circulate api` serves at /openapi.json."""
    from workers.api.app import create_app

    document: dict[str, Any] = create_app(Settings()).openapi()
    return document


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"


def http_api_markdown() -> str:
    """Every route (auth, parameters, body, responses), then every schema (fields, types)."""
    document = openapi_document()
    lines = [
        f"Generated from the OpenAPI document of *{document['info']['title']}*, version "
        f"{document['info']['version']}.",
        "",
        "## Routes",
        "",
    ]
    for path, operations in document["paths"].items():
        for method in HTTP_METHODS:
            if method in operations:
                lines += _operation(method, path, operations[method])
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += _schema(name, schema)
    return "\n".join(lines)


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{#{_slug(method + ' ' + path)}}}", ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    lines += [f"Auth: {_auth(operation)}.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | required | type | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            required = "yes" if parameter.get("required") else "no"
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {required} "
                f"| {_type(parameter.get('schema', {}))} | {cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [f"Request body (`{media}`): {_type(content.get('schema', {}))}", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in sorted(operation.get("responses", {}).items()):
        schemas = [_type(content.get("schema", {})) for content in response.get("content", {}).values()]
        lines.append(f"| {status} | {cell(response.get('description', ''))} | {', '.join(schemas) or '—'} |")
    return [*lines, ""]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{#{_schema_anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {_type(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} "
            f"| {cell(spec.get('description', ''))} |"
        )
    return [*lines, ""]


def _auth(operation: dict[str, Any]) -> str:
    requirements = operation.get("security")
    if not requirements:
        return "none"
    parts = []
    for requirement in requirements:
        for scheme, scopes in requirement.items():
            named = ", ".join(f"`{scope}`" for scope in scopes)
            parts.append(f"`{scheme}`" + (f" with scope {named}" if scopes else ""))
    return " or ".join(parts)


def _type(schema: dict[str, Any]) -> str:
    """A short, linked description of a JSON schema: `string ≤ 200`, `[Address](#…)`, `A \\| null`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_schema_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " \\| ".join(_type(option) for option in schema[key])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"object of {_type(extra) if isinstance(extra, dict) else 'any'}"
    details = [schema["format"]] if "format" in schema else []
    for key, template in (
        ("minLength", "≥ {} chars"),
        ("maxLength", "≤ {} chars"),
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("pattern", "matches `{}`"),
    ):
        if key in schema:
            details.append(template.format(_number(schema[key])))
    return cell(f"`{kind}`" + (f" ({', '.join(details)})" if details else ""))


def _number(value: object) -> object:
    """`10000000000` rather than `10000000000.0`: pydantic writes integer bounds as floats."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _schema_anchor(name: str) -> str:
    return "schema-" + _slug(name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
