"""What the commands print. With --json, stdout carries exactly one JSON document (the result, or the API's error
shape) and progress goes to stderr; without it, plain text for people, progress included, on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click


class Output:
    def __init__(self, as_json: bool = False, redact=lambda text: text) -> None:
        self.as_json = as_json
        self.redact = redact

    def progress(self, text: str) -> None:
        """A line for whoever watches: stdout for people, stderr under --json (stdout is the document)."""
        click.echo(self.redact(text), err=self.as_json)

    def result(self, document: Any, text: str | Iterable[str] = "") -> None:
        """The command's result: `document` under --json, else `text` (a string or lines)."""
        if self.as_json:
            click.echo(self.redact(json.dumps(document, indent=2, sort_keys=True, default=str)))
            return
        lines = [text] if isinstance(text, str) else list(text)
        for line in lines:
            click.echo(self.redact(line))

    def error(self, message: str, document: dict) -> None:
        if self.as_json:
            click.echo(self.redact(json.dumps(document, indent=2, sort_keys=True)))
        click.echo(self.redact(f"Error: {message}"), err=True)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> list[str]:
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return lines


def cell_text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fields(document: dict, names: Iterable[str]) -> list[str]:
    """`name: value` lines for the given keys that the document has."""
    present = [n for n in names if n in document]
    width = max((len(n) for n in present), default=0)
    return [f"{(n + ':').ljust(width + 1)} {cell_text(document[n])}" for n in present]


def log_line(line: dict) -> str:
    at = str(line.get("at") or "")
    clock = at[11:19] if len(at) >= 19 else at  # HH:MM:SS of an ISO timestamp
    return f"{clock} {str(line.get('level') or ''):<7} {line.get('message', '')}"
