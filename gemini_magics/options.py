"""``%%interact``'s options, as IPython's ``magic_arguments`` declares them (they become the help page's
option list and the parser the magic reads its line with). Only IPython's argument helpers and constants
are imported here, so ``%load_ext`` stays fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from ._constants import ASPECT_RATIOS, IMAGE_SIZES, THINKING_LEVELS, VIDEO_RESOLUTIONS

__all__ = ["OPTIONS", "cell_options"]

OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    argument("-m", "--model", help="model id (default: %%config InteractMagics.model); with --over, a,b runs every row on each"),
    argument(
        "--agent",
        help="an agent id instead of a model (e.g. deep-research-pro-preview-12-2025); agents run in the background",
    ),
    argument(
        "--agent-config", metavar="JSON", help='agent settings, e.g. \'{"thinking_summaries": "auto"}\''
    ),
    argument("-s", "--system", help="system instruction for this cell"),
    argument("--chain", default=None, help="name of the conversation chain to continue (default: 'default')"),
    argument("--new", action="store_true", help="start the chain afresh instead of continuing it"),
    argument(
        "--no-store", action="store_true", help="do not store on the server: history is sent from the kernel"
    ),
    argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it"),
    argument(
        "--background",
        action="store_true",
        help="run in the background; the result is bound to -o when done",
    ),
    argument("-o", dest="out", metavar="NAME", help="bind the result object to this variable"),
    argument(
        "--schema", help="name of a pydantic model class or JSON-schema dict: structured output into .data"
    ),
    argument("--image", action="store_true", help="ask for image output (bound as PIL images in .images)"),
    argument(
        "--aspect-ratio",
        choices=ASPECT_RATIOS,
        metavar="W:H",
        help="with --image: " + ", ".join(ASPECT_RATIOS),
    ),
    argument(
        "--image-size", choices=IMAGE_SIZES, metavar="SIZE", help="with --image: " + ", ".join(IMAGE_SIZES)
    ),
    argument("--video", action="store_true",
             help="ask for a video (runs in the background; .video plays inline and .save()s)"),
    argument("--duration", type=int, metavar="SECONDS", help="with --video: its length in seconds"),
    argument("--resolution", choices=VIDEO_RESOLUTIONS, metavar="RES", help="with --video: " + ", ".join(VIDEO_RESOLUTIONS)),
    argument("--audio", action="store_true", help="ask for speech (WAV; .audio plays inline and .save()s)"),
    argument("--voice", metavar="NAME|A=V,B=W",
             help="with --audio: a voice (Kore), or one per speaker named in the prompt (Alice=Kore,Bob=Puck)"),
    argument("--transcribe", nargs="?", const="verbatim", choices=["verbatim", "smart"], metavar="MODE",
             help="transcribe the audio or video the cell references: verbatim (default) or smart (cleaned up)"),
    argument("--speakers", action="store_true", help="with --transcribe verbatim: who said what (diarization)"),
    argument("--temperature", type=float, help="sampling temperature, e.g. 0.2"),
    argument("--max-tokens", type=int, help="maximum output tokens"),
    argument(
        "--thinking",
        choices=THINKING_LEVELS,
        metavar="LEVEL",
        help="thinking level: " + ", ".join(THINKING_LEVELS),
    ),
    argument("--seed", type=int, help="sampling seed"),
    argument(
        "--tools",
        metavar="NAME[,NAME...]",
        help="kernel functions the model may call (run for it), and/or google_search, code_execution, url_context",
    ),
    argument("--max-steps", type=int, default=10, help="rounds of tool calls at most (default 10)"),
    argument(
        "--mcp",
        action="append",
        metavar="URL_OR_stdio:COMMAND",
        help="an MCP server whose tools the model may call (repeatable); local and stdio ones are bridged by the kernel",
    ),
    argument("--mcp-tools", metavar="NAME[,NAME...]", help="only these tools of the --mcp servers"),
    argument(
        "--over",
        metavar="NAME",
        help="run the cell once per row of a DataFrame/Series/list ({{row.col}}); binds a DataFrame to -o",
    ),
    argument("--limit", type=int, metavar="K", help="with --over: the first K rows only"),
    argument(
        "--sample",
        type=int,
        metavar="K",
        help="with --over: K rows drawn at random, the same ones each run (iterate on a prompt before paying for all)",
    ),
    argument("--sample-seed", type=int, default=0, metavar="N", help="with --sample: another draw (default 0)"),
    argument(
        "--flatten",
        action="store_true",
        help="with --over and --schema: nested objects become columns of their own (address.city, address.zip)",
    ),
    argument(
        "--out",
        dest="out_file",
        metavar="PATH",
        help="with --over: write the rows to a .jsonl or .csv file as they are answered (or a .parquet at the end)",
    ),
    argument(
        "--check",
        metavar="LABELS",
        help="with --over: score the answers against labels you have (a DataFrame/Series or an --over column)",
    ),
    argument(
        "--keep-missing",
        action="store_true",
        help="with --over: send rows whose referenced values are missing (NaN, None, empty); default: flag them",
    ),
    argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="with --over: rows at once (default: %%config InteractMagics.concurrency)",
    ),
    argument(
        "--no-cache",
        action="store_true",
        help="with --over: send every row, ignoring (and not filling) the row cache",
    ),
    argument(
        "--budget",
        metavar="LIMIT",
        help="with --over: stop cleanly before the run passes this many tokens (300, 50k) or dollars ($5)",
    ),
    argument("--store", action="store_true", help="with --over: store each row's interaction on the server"),
    argument(
        "--batch",
        action="store_true",
        help="with --over: one Gemini Batch API job (half price, hours); returns at once",
    ),
    argument(
        "--service-tier",
        choices=("standard", "flex", "priority"),
        metavar="TIER",
        help="standard, flex (half price, slower, may be shed) or priority",
    ),
    argument("--dry-run", action="store_true", help="show the request that would be sent, and send nothing"),
]


def cell_options(function: Callable[..., Any]) -> Any:
    """``function`` with every option of :data:`OPTIONS` declared, as if each were stacked on it in order."""
    for declare in reversed(OPTIONS):
        function = declare(function)
    return magic_arguments()(function)  # with .parser, which the magic reads its line with
