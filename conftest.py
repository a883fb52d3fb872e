"""Root conftest: notebooks collected by nbval run their kernels on the deterministic scripted engine,
whose saved outputs they are compared with, never against a real key, and with a row cache and journal
of this test process's own (never the user's, nor another test worker's)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("GEMINI_MAGICS_ENGINE", "scripted")
for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
    os.environ.pop(_name, None)

_CACHE_DIR = tempfile.mkdtemp(prefix="gemini-magics-tests-")
os.environ["GEMINI_MAGICS_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
