"""Copy and Save on finished answers, in JupyterLab and Notebook 7.

A finished answer stays plain Markdown (or JSON), so every frontend shows it as it is and each image is stored
once. In a kernel, its bundle gains one small entry of :data:`MIME_TYPE` (no content: the file name to use, where the
answer's text sits in ``text/plain``, how many images) and its metadata the answer's token. The ``gemini-magics``
JupyterLab extension (shipped in this package) draws the bundle with Copy and Save around it; a frontend without it
ignores the entry. A widget would not do: reopened without its kernel, it renders "Error displaying widget".

Save asks this kernel over a comm (:data:`COMM_TARGET`): the answer, by token, is written full size to
``InteractMagics.save_dir`` under a name taken from the prompt. Answers are held weakly (IPython's ``Out`` and the
user's variables keep them); one that is gone gets ``reason: unknown`` and the browser downloads what the notebook
holds instead.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["MIME_TYPE", "COMM_TARGET", "serve", "stop", "serving", "entry", "token", "handle"]

MIME_TYPE = "application/vnd.gemini-magics.actions+json"
COMM_TARGET = "gemini_magics.actions"

_answers: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_comm_manager: Any = None


def serve(shell: Any) -> None:
    """Answer the extension's requests in this kernel (nothing outside a kernel: a terminal has no buttons)."""
    global _comm_manager
    if getattr(shell, "kernel", None) is None:
        return
    try:
        from comm import get_comm_manager
    except ImportError:  # an ipykernel too old for the comm package: the answers stay static Markdown
        return
    _comm_manager = get_comm_manager()
    _comm_manager.register_target(COMM_TARGET, _on_open)


def stop() -> None:
    global _comm_manager
    if _comm_manager is not None:
        _comm_manager.unregister_target(COMM_TARGET, _on_open)
        _comm_manager = None


def serving() -> bool:
    return _comm_manager is not None


def _utf16(text: str) -> int:
    """A length as JavaScript counts it (UTF-16 code units), so the extension slices the same characters."""
    return len(text.encode("utf-16-le")) // 2


def entry(plain: str, *, copy_text: str, copy_label: str, after: int, stem: str, images: int) -> dict[str, Any]:
    """The bundle's actions entry: deterministic for a deterministic answer, and no content of its own.

    Copy takes ``copy_text`` out of ``plain`` (the bundle's ``text/plain``, where it starts at or after ``after``) by
    UTF-16 offsets, rather than storing the answer a second time in the notebook.
    """
    actions: dict[str, Any] = {"stem": stem, "images": images}
    found = plain.find(copy_text, after) if copy_text else -1
    if found >= 0:
        start = _utf16(plain[:found])
        actions["copy"] = {"label": copy_label, "start": start, "end": start + _utf16(copy_text)}
    return actions


def token(answer: Any) -> str:
    """The answer's token for the extension's requests (one per answer, whatever the number of reprs)."""
    existing = getattr(answer, "_actions_token", None)
    if existing is None:
        import secrets  # (here: %load_ext imports this module, and secrets costs it 7 ms)

        existing = secrets.token_urlsafe(12)
        answer._actions_token = existing
    _answers[existing] = answer
    return str(existing)


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """One Save request: ``{"action": "save" | "save_image", "result": TOKEN, "image": N}``; the reply says
    what was written, or in one line why not."""
    answer = _answers.get(str(request.get("result")))
    if answer is None:
        return {"ok": False, "reason": "unknown"}
    try:
        if request.get("action") == "save_image":
            return {"ok": True, "saved": [str(answer.save_image(int(request.get("image", 1))))]}
        if request.get("action") == "save":
            return {"ok": True, "saved": [str(p) for p in answer.save_readable()]}
    except (OSError, IndexError, ValueError) as exc:
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    return {"ok": False, "error": f"unknown action {request.get('action')!r}"}


def _on_open(comm: Any, message: dict[str, Any]) -> None:
    # the reply travels in the close message: one round trip, and nothing left open
    comm.close(data=handle(message.get("content", {}).get("data") or {}))
