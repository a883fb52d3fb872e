"""``--over`` with a schema on the embedded SmolLM2 engine at default settings: how many of 25 messy reviews end
``ok``, and why the others failed (the model's fault, or a setting's: "cut at the token limit").

    .venv/bin/python benchmarks/bench_smollm2_rows.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

REVIEWS = [
    "5 stars!!! best kettle I ever owned", "Kettle leaks after 2 weeks. 1 star, avoid", "toaster ok-ish, 3 stars, crumbs everywhere",
    "4 stars. the blender is LOUD but strong", "12 stars if I could!!! love this toaster", "2 stars - kettle lid broke",
    "Mixer works. 4 stars", "grille-pain parfait, 5 étoiles", "3 stars, kettle is fine i guess", "1 star. blender died on day one",
    "the lamp is nice", "TERRIBLE chair. wobbly. 1/5", "mug arrived chipped :( 2 stars", "Great value toaster, would buy again - 5",
    "meh. 3", "the kettle whistles, love it, 5 stars", "Blender ok, 4 stars, a bit loud", "lamp flickers, 2 stars",
    "Chair is comfy!! 5/5", "mug too small 3 stars", "kettle: 4 stars, slow to boil", "toaster burnt my bread 1 star",
    "best blender ever 5 stars", "lamp: fine. 3 stars.", "chair squeaks 2 stars",
]  # fmt: skip
SETUP = """
from typing import Literal, Optional
from pydantic import BaseModel

class Review(BaseModel):
    product: str
    rating: Optional[int]
    sentiment: Literal["positive", "negative", "mixed"]
"""


def main() -> None:
    os.environ["GEMINI_MAGICS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-smollm2-rows-")
    os.environ["GEMINI_MAGICS_ENGINE"] = "smollm2"
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
        os.environ.pop(name, None)
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "gemini_magics")
    shell.run_line_magic("config", "InteractMagics.live = False")
    shell.run_cell(SETUP)
    shell.user_ns["reviews"] = pd.DataFrame({"text": REVIEWS})
    started = time.perf_counter()
    outcome = shell.run_cell("%%interact --over reviews --schema Review -o out\n"
                             "Extract the product, its star rating and the sentiment from this review: {{row.text}}")  # fmt: skip
    took = time.perf_counter() - started
    frame = shell.user_ns["out"]
    assert outcome.success, outcome.error_in_exec
    failed = frame.loc[frame["_status"] != "ok", "_error"].str[:80].value_counts().to_dict()
    print(f"{len(frame)} messy reviews on SmolLM2 at default settings: {(frame['_status'] == 'ok').sum()} ok in {took:.1f} s")
    print(f"  failures: {failed or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
