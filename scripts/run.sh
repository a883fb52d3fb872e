#!/usr/bin/env bash
# One entry point for people and CI.
#   bash scripts/run.sh quickstart   set up, then run notebooks/quickstart.ipynb headless on the embedded SmolLM2 model
#   bash scripts/run.sh test         set up (incl. Debian's chromium), then run every test, notebook and browser check
#   bash scripts/run.sh setup        only create .venv and install the package with its extras
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python

setup() {
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
    # llama-cpp-python builds from source the first time (about 5 minutes on 2 cores); pip caches the wheel
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} "$PY" -m pip install -q --disable-pip-version-check -e ".[local,test]"
}

browser() {
    if ! command -v chromium >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
    fi
}

jupyter_home() {
    # keep Jupyter, IPython and matplotlib out of $HOME
    local dir=$ROOT/.artifacts/home
    mkdir -p "$dir"/{cfg,data,rt,ipython,mpl,xdg_config,xdg_cache}
    export JUPYTER_CONFIG_DIR=$dir/cfg JUPYTER_DATA_DIR=$dir/data JUPYTER_RUNTIME_DIR=$dir/rt IPYTHONDIR=$dir/ipython \
        MPLCONFIGDIR=$dir/mpl JUPYTER_PLATFORM_DIRS=1 XDG_CONFIG_HOME=$dir/xdg_config XDG_CACHE_HOME=$dir/xdg_cache
}

quickstart() {
    setup
    jupyter_home
    mkdir -p .artifacts
    unset GEMINI_API_KEY GOOGLE_API_KEY GEMINI_BASE_URL
    GEMINI_MAGICS_ENGINE=${GEMINI_MAGICS_ENGINE:-smollm2} "$VENV/bin/jupyter" nbconvert --to notebook --execute \
        notebooks/quickstart.ipynb --output-dir .artifacts --output quickstart.executed.ipynb
    "$PY" scripts/show_notebook.py .artifacts/quickstart.executed.ipynb
}

run_tests() {
    setup
    browser
    jupyter_home
    unset GEMINI_API_KEY GOOGLE_API_KEY GEMINI_BASE_URL
    export GEMINI_MAGICS_ENGINE=scripted
    # a fresh row cache and journal: notebooks must show what a first run does
    GEMINI_MAGICS_CACHE_DIR=$(mktemp -d)
    export GEMINI_MAGICS_CACHE_DIR
    "$PY" -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider -q -rs "$@"
}

case "${1:-}" in
    setup) setup ;;
    quickstart) quickstart ;;
    test) shift; run_tests "$@" ;;
    *) echo "usage: bash scripts/run.sh quickstart|test|setup" >&2; exit 2 ;;
esac
