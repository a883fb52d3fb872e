"""Root conftest: notebooks collected by nbval run their kernels on the deterministic scripted engine,
whose saved outputs they are compared with, and never against a real key."""

from __future__ import annotations

import os

os.environ.setdefault("GEMINI_MAGICS_ENGINE", "scripted")
for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
    os.environ.pop(_name, None)
