"""Does the SmolLM2 engine run on this machine? Asked once per installed build and CPU, in a child.

llama.cpp built for another CPU (``-march=native`` with AMX or AVX-512 where the VM traps them) dies
with an illegal instruction on the first token. The probe loads the model and generates one token in a
separate process, so such a build is one clear line naming the cause and the fix, never a dead kernel.
The outcome is remembered in the cache directory, keyed by the engine library's files, the model file
and the CPU's feature flags: a rebuild or another CPU is probed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["EngineBroken", "probe_engine", "REBUILD_HINT"]

PROBE_TIMEOUT_SECONDS = 180.0
REBUILD_HINT = (
    "rebuild it for any CPU of this kind: bash scripts/run.sh rebuild-engine "
    "(or set GEMINI_MAGICS_ENGINE=scripted)"
)
_PROBE = """
import sys
from llama_cpp import Llama
llama = Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
llama("Hi", max_tokens=1)
print("ok")
"""


class EngineBroken(RuntimeError):
    """The engine cannot run here; ``str()`` names the cause and the fix in one line."""


def _engine_files() -> list[Path]:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p for p in root.rglob("*") if p.suffix in (".so", ".dylib", ".dll") or ".so." in p.name)


def _cpu_flags() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    return platform.processor()


def build_identity(model: Path) -> str:
    """Changes with the engine's libraries, the model file and the CPU's features."""
    digest = hashlib.sha256()
    for path in [*_engine_files(), model]:
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(f"{platform.machine()}:{_cpu_flags()}".encode())
    return digest.hexdigest()


def _remembered(path: Path) -> dict[str, str]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}


def _remember(path: Path, identity: str, outcome: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        known = _remembered(path)
        known[identity] = outcome
        path.write_text(json.dumps(dict(list(known.items())[-20:])))


def _run_probe(model: Path) -> str:
    """``ok``, or the one line saying why the engine cannot run."""
    from ..child import exit_reason

    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, str(model)], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"the SmolLM2 engine (llama.cpp) did not generate a token within {PROBE_TIMEOUT_SECONDS:g} s; {REBUILD_HINT}"
    if done.returncode == 0 and done.stdout.strip().endswith("ok"):
        return "ok"
    said = [line for line in done.stderr.splitlines() if line.strip()]
    why = exit_reason(done.returncode, "smollm2") if done.returncode < 0 else (said[-1] if said else "it failed")
    return f"the SmolLM2 engine cannot run on this machine: {why} while generating a test token; {REBUILD_HINT}"


def known_to_run(cache_dir: Path | None = None) -> bool:
    """Whether a probe of this very build, model and CPU already succeeded (nothing is run to know)."""
    from ...journal import default_cache_dir
    from .smollm2 import find_model_path

    model = find_model_path()
    if model is None:
        return False
    memo = (cache_dir or default_cache_dir()) / "engine-probe.json"
    return _remembered(memo).get(build_identity(model)) == "ok"


def probe_engine(model: Path | None = None, cache_dir: Path | None = None) -> None:
    """Return if the engine runs here (known, or probed now); else raise :class:`EngineBroken`."""
    from ...journal import default_cache_dir
    from .smollm2 import find_model_path

    model = model or find_model_path()
    if model is None:
        return  # nothing to probe: the engine's own error says what to install
    memo = (cache_dir or default_cache_dir()) / "engine-probe.json"
    identity = build_identity(model)
    outcome = _remembered(memo).get(identity)
    if outcome is None:
        outcome = _run_probe(model)
        _remember(memo, identity, outcome)
    if outcome != "ok":
        raise EngineBroken(outcome)
