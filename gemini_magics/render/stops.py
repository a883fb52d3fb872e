"""A cell the user stopped (Stop, Cancel, Kernel > Interrupt) ends with a grey badge, not a red traceback.

The cell must still fail, so that Run All halts there. IPython's custom exception hook gives exactly that:
a :class:`CellStopped` raised by the magic is shown by :func:`_show` (the badge, and no traceback), and the
cell's result still carries the error, so the kernel replies ``status: error``. The hook chains to any
handler installed before ours, and :func:`uninstall` puts that one back.
"""

from __future__ import annotations

import html
from typing import Any

from IPython.core.error import UsageError

BADGE_STYLE = (
    "display:inline-block;padding:3px 10px;margin:4px 0;border-radius:12px;font-size:12px;"
    "color:var(--jp-ui-font-color1,#1f1f1f);background:var(--jp-layout-color2,#eeeeee);"
    "border:1px solid var(--jp-border-color1,#bdbdbd)"
)
LABELS = {"stopped": "Stopped", "cancelled": "Cancelled", "interrupted": "Interrupted"}


class CellStopped(UsageError):
    """The user ended the cell; ``str()`` says what was kept. A UsageError, so callers that catch the magic's
    errors catch this one too."""

    def __init__(self, message: str, kind: str = "stopped") -> None:
        super().__init__(message)
        self.kind = kind if kind in LABELS else "stopped"


def badge_bundle(kind: str, message: str) -> dict[str, str]:
    """The badge as a mimebundle: a grey pill in HTML (JupyterLab's theme colours), one line of text."""
    label = LABELS.get(kind, "Stopped")
    said = message.split(": ", 1)[1] if message.lower().startswith(f"{kind}: ") else message  # not "Stopped · stopped:"
    square = "<span style='display:inline-block;width:8px;height:8px;margin-right:6px;background:currentColor;" \
             "border-radius:1px;vertical-align:middle'></span>"  # fmt: skip
    markup = (f"<div class='gm-stopped' data-kind='{kind}' style='{BADGE_STYLE}'>{square}<b>{label}</b> · "
              f"{html.escape(said)}</div>")  # fmt: skip
    return {"text/plain": f"■ {label}: {said}", "text/html": markup}


def _show(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
    if not isinstance(value, CellStopped):
        previous = getattr(shell, "_gemini_previous_exc", None)
        if previous is not None and previous[1] is not None:
            return list(previous[1](etype, value, tb, tb_offset) or [])
        return shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)  # type: ignore[no-any-return]
    from IPython.display import display

    display(badge_bundle(value.kind, str(value)), raw=True)
    return []  # nothing more: the badge says it, and no red block follows


def install(shell: Any) -> None:
    if getattr(shell, "_gemini_previous_exc", None) is not None:
        return
    previous = (tuple(shell.custom_exceptions), shell.CustomTB if shell.custom_exceptions else None)
    shell._gemini_previous_exc = previous
    shell.set_custom_exc(previous[0] + (CellStopped,), _show)


def uninstall(shell: Any) -> None:
    previous = getattr(shell, "_gemini_previous_exc", None)
    if previous is None:
        return
    shell._gemini_previous_exc = None
    if shell.custom_exceptions == previous[0] + (CellStopped,):  # nobody replaced ours meanwhile
        shell.custom_exceptions = previous[0]
        if previous[1] is not None:
            shell.CustomTB = previous[1]
