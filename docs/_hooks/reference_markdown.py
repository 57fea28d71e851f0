"""Markdown helpers shared by the generated reference pages."""

from __future__ import annotations


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped outside code spans.

    Python-Markdown does not split a row on a pipe inside backticks, and shows a backslash there
    literally, so only the pipes outside code spans are escaped.
    """
    parts = str(text).replace("\n", " ").split("`")
    return "`".join(part if index % 2 else part.replace("|", "\\|") for index, part in enumerate(parts))
