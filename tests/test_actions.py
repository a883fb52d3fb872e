"""Copy and Save on finished answers: the bundle entry the JupyterLab extension draws them from, the comm its Save
buttons talk to in a real kernel, and the committed build of the extension itself (the browser test clicks them)."""

from __future__ import annotations

import json
import os
import runpy
import uuid
from pathlib import Path
from typing import Any

import pytest

import gemini_magics
from gemini_magics.render import actions

ROOT = Path(__file__).resolve().parents[1]


def js_slice(text: str, start: int, end: int) -> str:
    """``text.slice(start, end)`` as JavaScript does it: in UTF-16 code units."""
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le")


def test_the_committed_extension_is_built_from_the_committed_source() -> None:
    digest = runpy.run_path(str(ROOT / "scripts" / "labextension_digest.py"))["source_digest"]()
    built = ROOT / "gemini_magics" / "labextension"
    assert (built / "source.sha256").read_text().strip() == digest, (
        "labextension/ changed since its build: run `bash scripts/build_labextension.sh` and commit the result"
    )
    package = json.loads((built / "package.json").read_text())
    assert package["name"] == "gemini-magics" and package["version"] == gemini_magics.__version__
    assert (built / package["jupyterlab"]["_build"]["load"]).is_file()
    (path,) = gemini_magics._jupyter_labextension_paths()
    assert (Path(gemini_magics.__file__).parent / path["src"] / "package.json").is_file()
    assert path["dest"] == package["name"]


@pytest.mark.parametrize(
    ("calls", "copy_text"),
    [
        ("", "Hello 🌍, and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢!"),
        ("[get_weather(city='Paris') → {'city': 'Paris 🌍'}]\n", "Paris is 21 °C."),
        ("[f() → Paris]\n", "Paris"),  # the answer's words also in the call and the footer
    ],
)
def test_copy_takes_the_answer_out_of_text_plain_as_javascript_counts(calls: str, copy_text: str) -> None:
    plain, after = f"{calls}{copy_text}\n-- local:scripted · Paris", len(calls)
    entry = actions.entry(plain, copy_text=copy_text, copy_label="Copy", after=after, stem="s", images=0)
    assert js_slice(plain, entry["copy"]["start"], entry["copy"]["end"]) == copy_text


def test_an_answer_with_nothing_to_copy_has_no_copy() -> None:
    entry = actions.entry("[1 image(s)]\n-- local:scripted", copy_text="", copy_label="Copy", after=0, stem="draw", images=1)
    assert entry == {"stem": "draw", "images": 1}


def test_outside_a_kernel_the_bundle_is_unchanged(shell: Any) -> None:
    result = shell.run("%%interact\nSay hello.")
    data, metadata = result._repr_mimebundle_()
    assert actions.MIME_TYPE not in data and "result" not in metadata["gemini_magics"]


def test_an_unknown_answer_or_a_bad_request_is_said_in_one_line() -> None:
    assert actions.handle({"action": "save", "result": "nope"}) == {"ok": False, "reason": "unknown"}


class Kernel:
    """A real ipykernel with the extension loaded, driven as JupyterLab drives it (execute and comm messages)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _until_idle(self, msg_id: str) -> list[dict[str, Any]]:
        seen = []
        while True:
            got = self.client.get_iopub_msg(timeout=60)
            if got["parent_header"].get("msg_id") != msg_id:
                continue
            if got["msg_type"] == "status" and got["content"]["execution_state"] == "idle":
                return seen
            seen.append({"type": got["msg_type"], **got["content"]})

    def run(self, code: str) -> list[dict[str, Any]]:
        return self._until_idle(self.client.execute(code))

    def answer(self, code: str) -> dict[str, Any]:
        (shown,) = [o for o in self.run(code) if o["type"] in ("display_data", "execute_result") and "text/plain" in o["data"]]
        return shown

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """What the extension's ``ask`` does: open a comm with the request; the reply is in its close."""
        comm_id = uuid.uuid4().hex
        msg = self.client.session.msg("comm_open", {"comm_id": comm_id, "target_name": actions.COMM_TARGET, "data": request})
        self.client.shell_channel.send(msg)
        closes = [o for o in self._until_idle(msg["header"]["msg_id"]) if o["type"] == "comm_close" and o["comm_id"] == comm_id]
        assert len(closes) == 1, closes
        return dict(closes[0]["data"])


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from jupyter_client.manager import start_new_kernel

    folder = tmp_path_factory.mktemp("kernel")
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(folder), env={**env, "GEMINI_MAGICS_ENGINE": "scripted"})
    try:
        running = Kernel(kc)
        running.run("%load_ext gemini_magics")
        running.run('%config InteractMagics.save_dir = "saved"')
        running.folder = folder  # type: ignore[attr-defined]
        yield running
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_in_a_kernel_an_answer_carries_its_actions_and_save_writes_readable_files(kernel: Any) -> None:
    shown = kernel.answer("%%interact --chain hi\nSay hello to the 🌍 in one line.")
    entry, token = shown["data"][actions.MIME_TYPE], shown["metadata"]["gemini_magics"]["result"]
    assert entry["stem"] == "say-hello-to-the-in-one" and entry["images"] == 0
    copied = js_slice(shown["data"]["text/plain"], entry["copy"]["start"], entry["copy"]["end"])
    assert copied and "🌍" in copied and not copied.startswith("--") and "local:scripted" not in copied
    assert "text/markdown" in shown["data"] and "application/vnd.jupyter.widget-view+json" not in shown["data"]

    first = kernel.ask({"action": "save", "result": token})
    again = kernel.ask({"action": "save", "result": token})
    assert first == {"ok": True, "saved": ["saved/say-hello-to-the-in-one.md"]}
    assert again == {"ok": True, "saved": ["saved/say-hello-to-the-in-one-2.md"]}  # never over an earlier file
    assert copied in (kernel.folder / "saved" / "say-hello-to-the-in-one.md").read_text()
    kernel.run('%config InteractMagics.save_dir = "/dev/null/saved"')  # a folder that cannot be made
    try:
        shown = kernel.answer("%%interact --chain nowhere\nSay hello.")
        refused = kernel.ask({"action": "save", "result": shown["metadata"]["gemini_magics"]["result"]})
    finally:
        kernel.run('%config InteractMagics.save_dir = "saved"')
    assert refused["ok"] is False and "/dev/null" in refused["error"] and "\n" not in refused["error"]


def test_in_a_kernel_each_image_saves_full_size_and_json_copies_whole(kernel: Any) -> None:
    from PIL import Image

    shown = kernel.answer("%%interact --image --chain pics\nDraw two images of a kite over the sea")
    entry, token = shown["data"][actions.MIME_TYPE], shown["metadata"]["gemini_magics"]["result"]
    assert entry["images"] == 2
    said = js_slice(shown["data"]["text/plain"], entry["copy"]["start"], entry["copy"]["end"])
    assert said and "image(s)" not in said and "-- " not in said  # the answer's words, not the summary lines
    (second,) = kernel.ask({"action": "save_image", "result": token, "image": 2})["saved"]
    assert second.startswith("saved/draw-two-images-of-a-kite-2.")
    with Image.open(kernel.folder / second) as image:
        assert image.size[0] > 0
    assert kernel.ask({"action": "save_image", "result": token, "image": 3}) == {"ok": False, "error": "no image 3: this answer has 2"}
    assert kernel.ask({"action": "shred", "result": token}) == {"ok": False, "error": "unknown action 'shred'"}

    kernel.run("from pydantic import BaseModel\nclass City(BaseModel):\n    name: str")
    shown = kernel.answer("%%interact --schema City --chain data\nExtract the city: I moved to Paris last year.")
    entry = shown["data"][actions.MIME_TYPE]
    assert entry["copy"]["label"] == "Copy JSON" and "application/json" in shown["data"]
    assert json.loads(js_slice(shown["data"]["text/plain"], entry["copy"]["start"], entry["copy"]["end"])) == {"name": "Paris"}
