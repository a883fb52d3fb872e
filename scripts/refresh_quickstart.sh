#!/usr/bin/env bash
# Rewrites notebooks/quickstart.ipynb from scripts/make_quickstart.py and stores its outputs, executed on the
# deterministic scripted engine (what nbval compares in CI). Run after changing what a result shows.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" scripts/make_quickstart.py
unset GEMINI_API_KEY GOOGLE_API_KEY GEMINI_BASE_URL
GEMINI_MAGICS_ENGINE=scripted "$PY" -m jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.store_widget_state=False notebooks/quickstart.ipynb
