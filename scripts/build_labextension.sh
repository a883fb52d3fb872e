#!/usr/bin/env bash
# Rebuild the JupyterLab extension (Copy and Save on finished answers) into gemini_magics/labextension/.
# Only after changing labextension/: the build is committed, so users and CI need no Node.js. Needs node >= 20
# and the project's venv (scripts/run.sh setup); npm fetches the locked builder into labextension/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
(cd labextension && npm ci --no-audit --no-fund)
rm -rf gemini_magics/labextension
"$VENV/bin/jupyter-builder" build labextension
"$VENV/bin/python" scripts/labextension_digest.py > gemini_magics/labextension/source.sha256
"$VENV/bin/jupyter-builder" develop --overwrite . >/dev/null
echo "built gemini_magics/labextension ($(cat gemini_magics/labextension/source.sha256))"
