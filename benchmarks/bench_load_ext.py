"""`%load_ext gemini_magics` time in a fresh IPython, against importing the official SDK, same run.

Each sample is a new process (so nothing is cached in memory); medians of several runs.

    .venv/bin/python benchmarks/bench_load_ext.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

SNIPPETS = {
    "%load_ext gemini_magics": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "import time\nt = time.perf_counter()\nip.run_line_magic('load_ext', 'gemini_magics')\n"
        "print(time.perf_counter() - t)"
    ),
    "from google import genai (the SDK a user would import instead)": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "import time\nt = time.perf_counter()\nfrom google import genai\n"
        "print(time.perf_counter() - t)"
    ),
    "%load_ext + first use of the client types (paid at the first %%interact)": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "import time\nt = time.perf_counter()\nip.run_line_magic('load_ext', 'gemini_magics')\n"
        "import gemini_magics._client, gemini_magics.types\n"
        "print(time.perf_counter() - t)"
    ),
}


def sample(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    for _ in range(args.repeats):
        for name, code in SNIPPETS.items():
            times[name].append(sample(code))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median of {args.repeats} fresh processes each (IPython already imported, as in a kernel)")
    for name, value in medians.items():
        print(f"  {name:72s} {value * 1000:8.1f} ms")
    ours = medians["%load_ext gemini_magics"]
    sdk = medians["from google import genai (the SDK a user would import instead)"]
    print(
        f"  %load_ext is {sdk / ours:.0f}x faster than importing google-genai; target < 150 ms: {'met' if ours < 0.15 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
