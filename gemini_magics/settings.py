"""The magic's settings, set with ``%config InteractMagics.<name> = ...`` (or in ``ipython_config.py``).

A mixin of :class:`~gemini_magics.magics.InteractMagics`, so the names stay ``InteractMagics.<name>``;
``%interact config`` lists them with where each value comes from. Only traitlets is imported here.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode
from traitlets.config import Configurable

from ._constants import DEFAULT_MODEL

__all__ = ["InteractSettings"]


class InteractSettings(Configurable):
    """Every setting of ``%%interact``, each with its default and help."""

    model = Unicode(DEFAULT_MODEL, help="Model used when -m/--model is not given.").tag(config=True)
    image_model = Unicode(
        "gemini-3-pro-image-preview", help="Model used for --image when -m is not given."
    ).tag(config=True)
    audio_model = Unicode(
        "gemini-2.5-flash-preview-tts", help="Model for --audio cells when -m is not given (a text-to-speech model)."
    ).tag(config=True)
    video_model = Unicode(
        "veo-3.1-generate-preview", help="Model for --video cells when -m is not given (a video generation model)."
    ).tag(config=True)
    system = Unicode("", help="Default system instruction (-s/--system overrides it).").tag(config=True)
    stream = Bool(True, help="Stream answers (--no-stream turns it off for one cell).").tag(config=True)
    live = Bool(True, help="Show the live streaming view while an answer arrives.").tag(config=True)
    table_budget = Int(4000, help="Characters a DataFrame summary may take in a prompt.").tag(config=True)
    table_rows = Int(20, help="Rows of a DataFrame's head/tail sample at most.").tag(config=True)
    headers = Dict(
        value_trait=Unicode(), help="Extra HTTP headers sent with every request (proxies, tracing)."
    ).tag(config=True)
    timeout = Float(
        60.0, help="Seconds without an answer (or between two streamed events) before a cell gives up."
    ).tag(config=True)
    agent_config = Dict(help="Default agent settings (--agent-config JSON overrides them).").tag(config=True)
    mcp_bridge = Enum(
        ("auto", "always", "never"), "auto",
        help="--mcp servers the kernel connects to itself: auto (stdio and local ones), always, or never.",
    ).tag(config=True)  # fmt: skip
    mcp_headers = Dict(
        value_trait=Unicode(), help="Headers for MCP servers the API connects to (server-side --mcp)."
    ).tag(config=True)
    preview_px = Int(
        1024, help="Generated images larger than this (pixels, long side) are saved in notebooks as previews."
    ).tag(config=True)
    save_dir = Unicode(
        ".", help="Where Save buttons write images and answers (made on first use; relative to the kernel's "
        "working directory), under readable names taken from the prompt."
    ).tag(config=True)
    tool_timeout = Float(30.0, help="Seconds one --tools function call may take before it is an error.").tag(
        config=True
    )
    cache_dir = Unicode(
        "",
        help="Directory of the row cache and the journal of long runs (default: the platform's user cache dir).",
    ).tag(config=True)
    concurrency = Int(
        0,
        help="Rows of an --over cell sent at once (--concurrency overrides it); 0 follows the backend: 1 for the "
        "embedded SmolLM2 engine (it answers one request at a time), 8 otherwise.",
    ).tag(config=True)
    max_frame_rows = Int(
        200_000,
        help="An --over result with more rows than this is not bound to -o as a DataFrame: -o gets a handle on "
        "the results file (--out, or one in the cache folder) that loads them on request.",
    ).tag(config=True)
    batch_job_rows = Int(
        200_000,
        help="Requests per Batch API job at most: a bigger --batch run is split into several jobs (each also "
        "under the API's 2 GB input file limit), followed together and resumed job by job.",
    ).tag(config=True)
    prices = Dict(
        help='$ per million tokens by model, over the shipped price table: {"model": {"input": 0.5, "output": 3.0}} '
        '(optionally "batch" and "flex" pairs; they default to half).',
    ).tag(config=True)
    local_code_execution = Bool(
        False,
        help="Let the embedded local server run code_execution calls on this machine (isolated, with limits).",
    ).tag(config=True)
    local_fetch_hosts = List(
        Unicode(),
        help="Hosts the embedded server's url_context and agents may fetch: names, *.suffix, * (public "
        "hosts), addresses or networks; loopback and private hosts only when named.",
    ).tag(config=True)
    engine = Unicode(
        "",
        help="Engine of the embedded local server: smollm2 or scripted (default: GEMINI_MAGICS_ENGINE, else smollm2 if installed).",
    ).tag(config=True)

    def local_policy(self) -> Any:
        """What the embedded server's stand-ins may do on this machine, from the two settings above."""
        from .local.policy import Policy

        return Policy(self.local_code_execution, frozenset(h.strip().lower() for h in self.local_fetch_hosts))
