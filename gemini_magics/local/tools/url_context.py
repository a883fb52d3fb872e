"""``url_context`` on the local server: fetch the URLs a prompt names, and their readable text.

Over httpx, under the server's :class:`~gemini_magics.local.policy.Policy` (only hosts the user allowed,
each redirect checked again), with a deadline for the whole fetch and a size cap. HTML is reduced to
its text by the standard library's HTML parser (script, style and other non-content elements dropped).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx

from ..policy import Policy, fetch_refusal

TIMEOUT_SECONDS = 10.0
SIZE_LIMIT = 2 * 1024 * 1024
TEXT_LIMIT = 20_000
MAX_REDIRECTS = 5
POLL_SECONDS = 0.25
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


def fetch(
    url: str,
    policy: Policy,
    *,
    timeout: float = TIMEOUT_SECONDS,
    stop: threading.Event | None = None,
) -> Page:
    """``url`` fetched under ``policy``: every redirect checked again, ``timeout`` seconds in all (not per
    read: a server trickling a byte at a time is cut at the deadline), and ``stop`` heard within a second
    (the fetch is then abandoned; its own deadline ends it)."""
    outcome: list[Page] = []
    deadline = time.monotonic() + timeout
    late = Page(url, "error", error=f"not fetched: no complete answer within {timeout:g} s")
    quit_reading = threading.Event()
    worker = threading.Thread(target=lambda: outcome.append(_fetch(url, policy, deadline, late, quit_reading)),
                              daemon=True, name="gemini-magics-fetch")  # fmt: skip
    worker.start()
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if stop is not None and stop.is_set():
            quit_reading.set()
            return Page(url, "error", error="not fetched: the run was cancelled")
        if time.monotonic() > deadline + POLL_SECONDS:
            quit_reading.set()
            return late
    return outcome[0]


def _fetch(url: str, policy: Policy, deadline: float, late: Page, quit_reading: threading.Event) -> Page:
    """The fetch itself; ``late`` is what a fetch past its deadline comes to, wherever it was."""
    current = url
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                refusal = fetch_refusal(current, policy)
                if refusal is not None:
                    return Page(url, "error", error=refusal if current == url else f"{refusal} (redirected to {current})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return late
                with client.stream("GET", current, timeout=httpx.Timeout(remaining)) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    return _read(url, response, deadline, late, quit_reading)
            return Page(url, "error", error=f"not fetched: more than {MAX_REDIRECTS} redirects")
    except httpx.HTTPError as exc:
        return Page(url, "error", error=f"{type(exc).__name__}: {exc}")


def _read(url: str, response: httpx.Response, deadline: float, late: Page, quit_reading: threading.Event) -> Page:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > SIZE_LIMIT:
            break
        if quit_reading.is_set() or time.monotonic() > deadline:
            return late
    if response.status_code >= 400:
        return Page(url, "error", error=f"HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "")
    text = bytes(body[:SIZE_LIMIT]).decode(response.encoding or "utf-8", "replace")
    title, readable = (
        html_text(text) if "html" in content_type or text.lstrip().startswith("<") else ("", text)
    )
    return Page(url, "success", title, readable[:TEXT_LIMIT])
