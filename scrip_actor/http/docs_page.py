"""``/docs``: a readable, self-contained HTML page rendered from the OpenAPI document.

No scripts, no CDN, no web fonts: one HTML string with inline CSS, so it works offline and behind any proxy.
Each operation shows its method, path, description, parameters, body and responses; each schema a table of its
properties. Built once per app, since the document does not change while the server runs.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render_docs"]

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}h2{border-bottom:2px solid #ddd;margin-top:2em}h3{margin:1.4em 0 .3em}
code{background:#f4f4f4;padding:0 .25em;border-radius:3px}table{border-collapse:collapse;margin:.3em 0 1em}
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}th{background:#fafafa}
.m{display:inline-block;min-width:4.5em;font-weight:bold;color:#fff;border-radius:3px;text-align:center;margin-right:.5em}
.GET{background:#2b7bb9}.POST{background:#2e8540}.PATCH{background:#b9770e}
.PUT{background:#7d3c98}.DELETE{background:#c0392b}
.op{border:1px solid #e5e5e5;border-radius:6px;padding:.2em 1em .6em;margin:1em 0}
pre{white-space:pre-wrap;margin:.3em 0}
nav ul{columns:2}
"""


def _type_text(schema: dict[str, Any]) -> str:
    """A short, linked description of a JSON schema: ``Program``, ``array of Posting``, ``"A" | "B"``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type_text(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f"<code>{escape(repr(value))}</code>" for value in schema["enum"])
    if "const" in schema:
        return f"<code>{escape(repr(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + _type_text(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of string to " + _type_text(schema["additionalProperties"])
    text = escape(str(kind))
    if "format" in schema:
        text += f" ({escape(schema['format'])})"
    return text


def _limits(schema: dict[str, Any]) -> str:
    names = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern", "default")
    return ", ".join(f"{name} {escape(repr(schema[name]))}" for name in names if name in schema)


def _parameters(operation: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td><td>{'yes' if p['required'] else ''}</td>"
        f"<td>{_type_text(p['schema'])}</td><td>{_limits(p['schema'])}</td></tr>"
        for p in operation["parameters"]
    )
    if not rows:
        return ""
    return (
        "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th><th>limits</th></tr>" + rows + "</table>"
    )


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    parts = [
        f'<div class="op" id="op-{escape(operation["operationId"])}">',
        f'<h3><span class="m {method.upper()}">{method.upper()}</span><code>{escape(path)}</code></h3>',
        f"<pre>{escape(operation['description'])}</pre>",
        _parameters(operation),
    ]
    body = operation.get("requestBody")
    if body is not None:
        parts.append("<p>Body (JSON): " + _type_text(body["content"]["application/json"]["schema"]) + "</p>")
    rows = []
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        shape = " ".join(_type_text(media["schema"]) for media in content.values())
        rows.append(f"<tr><td>{status}</td><td>{escape(response['description'])}</td><td>{shape}</td></tr>")
    parts.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>" + "".join(rows) + "</table>")
    parts.append("<p>Needs an API key.</p>" if operation["security"] else "<p>No API key needed.</p>")
    return "".join(parts) + "</div>"


def _schema(name: str, schema: dict[str, Any]) -> str:
    head = f'<h3 id="schema-{escape(name)}">{escape(schema.get("title", name))}</h3>'
    description = f"<pre>{escape(schema['description'])}</pre>" if "description" in schema else ""
    properties = schema.get("properties")
    if not properties:
        return head + description + f"<p>{_type_text(schema)}</p>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(field)}</code></td><td>{'yes' if field in required else ''}</td>"
        f"<td>{_type_text(sub)}</td><td>{_limits(sub)}</td></tr>"
        for field, sub in properties.items()
    )
    return (
        head
        + description
        + "<table><tr><th>field</th><th>required</th><th>type</th><th>limits</th></tr>"
        + rows
        + "</table>"
    )


def render_docs(document: dict[str, Any]) -> str:
    """The whole HTML page for an OpenAPI document."""
    info = document["info"]
    by_tag: dict[str, list[str]] = {}
    toc: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            tag = operation["tags"][0]
            by_tag.setdefault(tag, []).append(_operation(path, method, operation))
            toc.setdefault(tag, []).append(
                f'<li><a href="#op-{escape(operation["operationId"])}">{method.upper()} {escape(path)}</a></li>'
            )
    sections = "".join(f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>' + "".join(ops) for tag, ops in by_tag.items())
    nav = "".join(f"<h4>{escape(tag)}</h4><ul>{''.join(items)}</ul>" for tag, items in toc.items())
    schemas = "".join(_schema(name, schema) for name, schema in sorted(document["components"]["schemas"].items()))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(info['title'])}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(info['title'])} <small>{escape(info['version'])}</small></h1>"
        f"<p>{escape(info['description'])}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>.</p>"
        f"<nav>{nav}</nav>{sections}<h2>Schemas</h2>{schemas}</body></html>"
    )
