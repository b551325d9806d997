"""The Content-Security-Policy's one exception: a stored report's own styles.

Every page's scripts and styles are files under static/ (settings.CONTENT_SECURITY_POLICY). A report is
stored once as self-contained HTML (the PDF renderer and the HTML download have no static files) with its
own <style> block, and reports made before VelaOps's templates lost their style="" attributes keep those.
The pages that show a stored report allow exactly those styles by their SHA-256 hashes: no 'unsafe-inline',
no script, nothing another report or an injected element could use ('unsafe-hashes' only for the exact
attribute values the report holds, and only when it holds any)."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser

from csp.utils import build_policy
from django.http import HttpResponse


class _InlineStyles(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []  # text of each <style> element
        self.attributes: list[str] = []  # value of each style="" attribute
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [value for name, value in attrs if name == "style" and value is not None]
        if tag == "style":
            self._in_style = True
            self.blocks.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [value for name, value in attrs if name == "style" and value is not None]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.blocks[-1] += data


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_style_sources(html: str) -> list[str]:
    """style-src sources allowing exactly the inline styles of `html`, and nothing else."""
    parser = _InlineStyles()
    parser.feed(html)
    parser.close()
    sources = sorted({_hash(block) for block in parser.blocks})
    if parser.attributes:
        sources += ["'unsafe-hashes'", *sorted({_hash(value) for value in parser.attributes})]
    return sources


def allow_report_styles(response: HttpResponse, *htmls: str) -> HttpResponse:
    """Set this response's own policy: the site's, its style-src extended by the report's style hashes."""
    sources = [source for html in htmls for source in inline_style_sources(html)]
    if sources:
        # django-csp's middleware leaves a response's own header as it is.
        response["Content-Security-Policy"] = build_policy(update={"style-src": sources})
    return response
