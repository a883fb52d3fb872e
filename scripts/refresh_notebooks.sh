#!/usr/bin/env bash
# Rewrites the notebooks from their scripts/make_*.py and stores their outputs, executed on the deterministic
# scripted engine (what nbval compares in CI). Run after changing what a result shows.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
unset GEMINI_API_KEY GOOGLE_API_KEY GEMINI_BASE_URL
GEMINI_MAGICS_CACHE_DIR=$(mktemp -d)  # notebooks show what a first run does
export GEMINI_MAGICS_CACHE_DIR
for maker in scripts/make_quickstart.py scripts/make_tools_notebook.py scripts/make_media_notebook.py \
    scripts/make_mcp_agents_notebook.py scripts/make_extraction_notebook.py; do
    notebook=$("$PY" "$maker")
    (cd notebooks && GEMINI_MAGICS_ENGINE=scripted "../$PY" -m jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.store_widget_state=False "$(basename "$notebook")")
done
