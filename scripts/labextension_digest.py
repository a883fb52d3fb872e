"""The JupyterLab extension's source digest (printed): the committed build must come from the committed source."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["SOURCE", "BUILT", "source_digest"]

SOURCE = Path(__file__).resolve().parents[1] / "labextension"
BUILT = Path(__file__).resolve().parents[1] / "gemini_magics" / "labextension"
_INPUTS = ("package.json", "package-lock.json", "src/index.js", "style/index.css")


def source_digest(root: Path = SOURCE) -> str:
    digest = hashlib.sha256()
    for name in _INPUTS:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    print(source_digest())
