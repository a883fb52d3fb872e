"""``url_context`` on the local server: fetch the URLs a prompt names, and their readable text.

Over httpx, with a time limit and a size cap; HTML is reduced to its text by the standard library's
HTML parser (script, style and other non-content elements dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import httpx

TIMEOUT_SECONDS = 10.0
SIZE_LIMIT = 2 * 1024 * 1024
TEXT_LIMIT = 20_000
_SKIPPED = {"script", "style", "noscript", "template", "svg", "head"}
_BREAKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"}


@dataclass(frozen=True)
class Page:
    url: str
    status: str
    """``success`` or ``error``, as the API's url_context_result says."""
    title: str = ""
    text: str = ""
    error: str = ""

    def result(self) -> dict[str, str]:
        out = {"url": self.url, "status": self.status}
        if self.title:
            out["title"] = self.title
        if self.error:
            out["error"] = self.error
        return out


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.title: list[str] = []
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BREAKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skipping:
            self.pieces.append(data)


def html_text(markup: str) -> tuple[str, str]:
    """(title, readable text) of an HTML document."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).splitlines())
    return " ".join("".join(parser.title).split()), "\n".join(line for line in lines if line)


def fetch(url: str, *, timeout: float = TIMEOUT_SECONDS) -> Page:
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", url) as response,
        ):
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > SIZE_LIMIT:
                    break
            if response.status_code >= 400:
                return Page(url, "error", error=f"HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "")
            text = body[:SIZE_LIMIT].decode(response.encoding or "utf-8", "replace")
    except httpx.HTTPError as exc:
        return Page(url, "error", error=f"{type(exc).__name__}: {exc}")
    title, readable = (
        html_text(text) if "html" in content_type or text.lstrip().startswith("<") else ("", text)
    )
    return Page(url, "success", title, readable[:TEXT_LIMIT])
