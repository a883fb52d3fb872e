"""The built-in web tools' offline stand-ins as steps: a search that says it cannot happen offline, and
``url_context`` reading the pages a prompt names, for real and under the server's fetch policy."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engines.base import EngineRequest
    from ..engines.writer import StepWriter

__all__ = ["URL_PATTERN", "read_pages", "search_offline"]

URL_PATTERN = re.compile(r"https?://[^\s)>\]`'\"]+")
FETCH_SECONDS_PER_REQUEST = 30.0
URL_SECONDS = 10.0


def search_offline(out: StepWriter, text: str) -> str:
    """A google_search call and result that say the search cannot happen offline; that note."""
    query = text.strip()[:80]
    note = "offline stand-in: the local server cannot reach the internet"
    out.tool_pair("google_search", {"queries": [query]},
                  [{"title": f"Result for {query}", "url": "https://example.invalid/search", "rendered_content": note}])  # fmt: skip
    return note


def read_pages(out: StepWriter, request: EngineRequest, text: str) -> list[Any]:
    """Fetch the URLs ``text`` names, for real and under the server's policy, as a url_context call and
    result; the pages. At most ``MAX_URLS_PER_REQUEST`` URLs and ``FETCH_SECONDS_PER_REQUEST`` in all."""
    from ..policy import MAX_URLS_PER_REQUEST
    from .url_context import Page, fetch

    urls = list(dict.fromkeys(URL_PATTERN.findall(text)))
    deadline = time.monotonic() + FETCH_SECONDS_PER_REQUEST
    pages: list[Page] = []
    for n, url in enumerate(urls):
        out.record.check_cancelled()
        remaining = deadline - time.monotonic()
        if n >= MAX_URLS_PER_REQUEST:
            pages.append(Page(url, "error", error=f"not fetched: over {MAX_URLS_PER_REQUEST} URLs in one request"))
        elif remaining <= 0:
            pages.append(Page(url, "error", error=f"not fetched: the request's {FETCH_SECONDS_PER_REQUEST:g} s for fetching ran out"))
        else:
            pages.append(fetch(url, request.policy, timeout=min(remaining, URL_SECONDS),
                               stop=out.record.cancel_requested))  # fmt: skip
    out.record.check_cancelled()
    out.tool_pair("url_context", {"urls": [p.url for p in pages]}, [p.result() for p in pages],
                  is_error=any(p.status != "success" for p in pages))  # fmt: skip
    return pages


