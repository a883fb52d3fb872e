"""The everyday cell, honest and safe: each defect found by using the magic as a new user would.

Terminal cases run in a real ``InteractiveShell`` without cell ids (as terminal IPython runs them);
notebook cases pass cell ids as a frontend does, or run in a real kernel through nbclient.
"""

from __future__ import annotations

import base64
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from conftest import Shell, requests_to
from gemini_magics.render.result import DryRun, InteractionResult
from gemini_magics.run.handle import BackgroundRun


def last_create(server: Any) -> dict[str, Any]:
    return requests_to(server, "/interactions")[-1]["json"]


def chain_ids(shell: Shell, name: str = "default") -> list[str | None]:
    return [t.interaction_id for t in shell.magics.chains.turns(name)]


# -- chains never lose turns silently ------------------------------------------------------------------


def test_without_cell_ids_the_same_text_twice_is_two_turns(shell: Shell, server: Any) -> None:
    first = shell.run("%%interact\nContinue.")
    why = shell.run("%%interact\nWhy?")
    again = shell.run("%%interact\nContinue.")
    assert last_create(server)["previous_interaction_id"] == why.id  # not a rewind to the first cell
    assert chain_ids(shell) == [first.id, why.id, again.id]
    assert again.notes == []


def test_a_notebook_rerun_rewinds_says_so_and_can_be_undone(shell: Shell, server: Any, capsys: Any) -> None:
    turns = [shell.run(f"%%interact\nStep {i}.", cell_id=f"c{i}") for i in (1, 2, 3, 4)]
    rerun = shell.run("%%interact\nStep 2, reworded.", cell_id="c2")
    assert chain_ids(shell) == [turns[0].id, rerun.id]
    line = rerun.footer()
    assert "chain default rewound to turn 2; 2 later turns dropped" in line and "%interact restore 4" in line
    assert "rewound to turn 2" in rerun._repr_mimebundle_()[0]["text/markdown"]
    everything = repr(shell.ip.run_line_magic("interact", "history --all"))
    assert everything.count("dropped") == 3 and turns[3].id in everything and rerun.id in everything
    assert turns[3].id not in repr(shell.ip.run_line_magic("interact", "history"))
    capsys.readouterr()
    shell.ip.run_line_magic("interact", "restore 4")
    assert "now ends at turn #4 (4 turns); 1 turn(s) left it" in capsys.readouterr().out
    assert chain_ids(shell) == [t.id for t in turns]
    shell.run("%%interact\nAnd then?", cell_id="c5")
    assert last_create(server)["previous_interaction_id"] == turns[3].id
    error = shell.fail("%interact restore 99")
    assert "no turn #99" in str(error) and "\n" not in str(error)


# -- endings that tell the truth -------------------------------------------------------------------------


def test_an_answer_cut_by_the_token_limit_says_so(shell: Shell) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Deltas": "10"}')
    cut = shell.run("%%interact --max-tokens 4\nTell me a long story.")
    assert cut.status == "incomplete" and len(cut.text) < len(shell.run("%%interact --new\nTell me a long story.").text)
    assert "stopped at the 4-token limit: raise --max-tokens" in cut.footer()
    shell.ip.user_ns["Spec"] = {"type": "object", "properties": {"name": {"type": "string"}, "city": {"type": "string"}}}
    error = shell.fail("%%interact --schema Spec --max-tokens 2\nAda lives in Paris.")
    message = str(error)
    assert "cut before its JSON was complete" in message
    assert "stopped at the 2-token limit: raise --max-tokens" in message and "EOF" not in message


def test_config_shows_the_embedded_engines_token_limit(make_shell: Any) -> None:
    shell = make_shell()
    shell.run("%%interact\nHello")
    config = repr(shell.ip.run_line_magic("interact", "config"))
    row = next(line for line in config.splitlines() if line.startswith("max output tokens"))
    assert "65536 unless --max-tokens says otherwise" in row and "the embedded scripted engine" in row


def test_footers_history_and_metadata_name_what_really_answered(shell: Shell) -> None:
    result = shell.run("%%interact -m gemini-2.5-pro\nHello")
    assert result.footer().startswith("local:scripted (asked for gemini-2.5-pro)")
    _, metadata = result._repr_mimebundle_()
    assert metadata["gemini_magics"]["model"] == "local:scripted"
    assert metadata["gemini_magics"]["requested_model"] == "gemini-2.5-pro"
    assert "local:scripted" in repr(shell.ip.run_line_magic("interact", "history"))


@pytest.mark.serial  # signals the whole test process: alone, not beside another file's tests
def test_ctrl_c_in_a_terminal_is_one_line_and_keeps_the_partial_answer(
    shell: Shell, server: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemini_magics.run.cell as cell

    shown = threading.Event()  # set once the cell has shown some ten deltas of the answer
    deltas: list[Any] = []

    def seen(event: Any) -> None:
        deltas.append(event) if event.event_type == "step.delta" else None
        if len(deltas) >= 10:
            shown.set()

    real_feed = cell.feed
    monkeypatch.setattr(cell, "feed", lambda events, on_event, idle=None: real_feed(
        events, lambda event: (on_event(event), seen(event)), idle))
    first = shell.run("%%interact\nHi, my name is Ivy.")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "60"}')
    def interrupt_once_streaming() -> None:  # Ctrl-C once the answer shows, however loaded the machine
        shown.wait(30)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt_once_streaming, daemon=True)
    timer.start()
    error = shell.fail("%%interact -o never\nTell me everything.")
    timer.join()
    assert type(error).__name__ == "CellStopped" and str(error).startswith("interrupted:") and "\n" not in str(error)
    captured = capsys.readouterr()
    out = captured.out
    assert "**Scripted reply**" in out and "interrupted by you: partial answer, not added to chain default" in out, (str(error), out)
    footer = next(line for line in out.splitlines() if "interrupted by you" in line)
    assert "(turn" not in footer  # the footer names no turn the answer did not join
    assert f"■ Interrupted: {str(error).removeprefix('interrupted: ')}" in out and "Traceback" not in captured.err and "UsageError" not in captured.err
    assert chain_ids(shell) == [first.id] and "never" not in shell.ip.user_ns
    partial = shell.ip.run_line_magic("interact", "last")
    assert 0 < len(partial.text) < 400 and partial.status == "in_progress"
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    assert shell.run("%%interact\nWhat is my name?").text == "Your name is Ivy."


def test_a_cancelled_background_run_says_cancelled_and_that_out_was_not_bound(shell: Shell) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "200"}')
    run = shell.run("%%interact --background -o report\nA slow report")
    assert isinstance(run, BackgroundRun)
    shell.ip.run_line_magic("interact", f"cancel {run.id}")
    error = shell.fail("%interact wait")
    assert type(error).__name__ == "CellStopped" and error.kind == "cancelled"  # a neutral badge, not a red block
    assert "cancelled" in str(error) and "'report' was not bound" in str(error) and "\n" not in str(error)
    assert shell.run("%interact wait") is not None  # reported once: the next wait moves on (nothing left to wait for)
    assert run.status == "cancelled" and "'report' was not bound" in repr(run) and "report" not in shell.ip.user_ns
    assert "**cancelled**" in run._repr_mimebundle_()["text/markdown"]


class TerminalInteractiveShell(InteractiveShell):
    """What the live view recognises terminal IPython by (the real one needs a tty)."""


def test_a_terminal_prints_a_streamed_answer_once(server: Any, monkeypatch: Any, capfd: Any) -> None:
    from traitlets.config import Config

    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    config = Config()
    config.HistoryManager.enabled = False
    ip = TerminalInteractiveShell(config=config)
    try:
        ip.run_line_magic("load_ext", "gemini_magics")
        result = ip.run_cell("%%interact\nTell me about tea.")
        assert result.success
        out = capfd.readouterr().out
        assert out.count("**Scripted reply**") == 1 and "-- local:scripted" in out
        assert result.result.printed and result.result.text.startswith("**Scripted reply**")
    finally:
        ip.run_line_magic("unload_ext", "gemini_magics")
        TerminalInteractiveShell.clear_instance()


# -- strict, visible references -------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["{{df.head()}}", "{{df.a.sum()}}", "{{np.arange(5)}}", "Look at {{df"])
def test_expressions_in_references_are_refused_in_one_line(shell: Shell, server: Any, cell: str) -> None:
    import numpy as np
    import pandas as pd

    shell.ip.user_ns.update(df=pd.DataFrame({"a": [1, 2]}), np=np)
    posts = len(requests_to(server, "/interactions"))
    error = shell.fail(f"%%interact\n{cell}")
    message = str(error)
    assert "\n" not in message and ("is not a reference" in message or "is not closed" in message)
    assert "compute anything else in a cell first" in message
    assert len(requests_to(server, "/interactions")) == posts
    assert "no calls" in shell.magics.interact.__doc__  # the help page says what the syntax allows


def test_an_invalid_json_schema_is_refused_before_sending(shell: Shell, server: Any) -> None:
    shell.ip.user_ns["Bad"] = {"type": "objekt"}
    posts = len(requests_to(server, "/interactions"))
    error = shell.fail("%%interact --schema Bad\nhi")
    assert "--schema Bad is not a valid JSON Schema" in str(error) and "\n" not in str(error)
    assert len(requests_to(server, "/interactions")) == posts


def test_numeric_arrays_are_data_and_image_arrays_are_images(shell: Shell, server: Any) -> None:
    import numpy as np

    shell.ip.user_ns.update(grid=np.arange(12).reshape(3, 4), photo=np.zeros((8, 8, 3), dtype=np.uint8))
    shell.run("%%interact --new\nSum {{grid}}")
    assert last_create(server)["input"] == (
        "Sum array grid shape=(3, 4) dtype=int64:\n[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]"
    )
    shell.run("%%interact --new\nDescribe {{photo}}")
    assert last_create(server)["input"][1]["type"] == "image"


def test_tables_that_fit_go_whole_and_sampled_ones_say_so(shell: Shell, server: Any) -> None:
    import pandas as pd

    shell.ip.user_ns.update(small=pd.DataFrame({"n": range(25)}), big=pd.DataFrame({"n": range(200_000)}))
    whole = shell.run("%%interact --new\nLook at {{small}}")
    sent = last_create(server)["input"]
    assert all(f"\n{i},{i}" in sent for i in range(25)) and "sample" not in sent and whole.notes == []
    sampled = shell.run("%%interact --new\nLook at {{big}}")
    assert "big: 20 of 200,000 rows sent" in sampled.footer()


def test_dry_run_sizes_are_exact_and_out_binds_the_request(shell: Shell, tmp_path: Path) -> None:
    blob = tmp_path / "blob.png"
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3 + b"x"  # a length that base64 pads
    blob.write_bytes(data)
    shell.ip.user_ns["blob"] = blob
    shown = shell.run("%%interact --dry-run -o req\nLook at {{blob}}")
    assert f"<{len(data)} bytes image/png>" in repr(shown)
    assert isinstance(shell.ip.user_ns["req"], DryRun) and shell.ip.user_ns["req"] is shown
    assert base64.b64decode(shown.request["input"][1]["data"]) == data


# -- works with the rest of IPython ----------------------------------------------------------------------


def test_cell_magics_stack_above_interact_in_a_kernel(tmp_path: Path) -> None:
    from test_notebooks import run_cells

    cells = [
        "%load_ext gemini_magics",
        "%%time\n%%interact -o timed\nHello from under time",
        "%%capture captured\n%%interact -o quiet\nHello from under capture",
        "print(timed.text[:16], '|', quiet.text[:16], '|', type(captured).__name__)",
    ]
    notebook = run_cells(cells, tmp_path)
    printed = "".join(o.get("text", "") for o in notebook.cells[3].outputs)
    assert printed.strip() == "**Scripted reply | **Scripted reply | CapturedIO"
    assert "Wall time" in "".join(o.get("text", "") for o in notebook.cells[1].outputs)


@pytest.mark.smollm2
def test_changing_the_engine_restarts_the_embedded_server_and_says_so(make_shell: Any, capsys: Any) -> None:
    shell = make_shell()
    shell.run("%%interact\nHi, my name is Max.")
    capsys.readouterr()
    shell.ip.run_line_magic("config", 'InteractMagics.engine = "smollm2"')
    said = capsys.readouterr().out
    assert "the embedded server (embedded local server" in said and "chain(s) default start afresh" in said
    config = repr(shell.ip.run_line_magic("interact", "config"))
    assert "'smollm2'" in config and "not started yet" in config  # nothing shown that is not in force
    answer = shell.run("%%interact --max-tokens 8\nSay hi.")
    assert "engine: smollm2" in capsys.readouterr().out
    assert isinstance(answer, InteractionResult) and answer.footer().startswith("local:SmolLM2-135M-Instruct")
    assert "engine: smollm2" in repr(shell.ip.run_line_magic("interact", "config"))


def test_kernel_interrupt_is_one_line_and_keeps_the_partial_answer() -> None:
    """Kernel > Interrupt during a streamed answer, in a real kernel (what JupyterLab's menu sends)."""
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    km, kc = start_new_kernel(kernel_name="python3", env={**env, "GEMINI_MAGICS_ENGINE": "scripted"})
    try:

        statuses: dict[str, str] = {}

        def run(code: str, interrupt_after: float | None = None) -> list[dict[str, Any]]:
            msg_id = kc.execute(code)
            statuses["last"] = msg_id
            if interrupt_after is not None:
                threading.Timer(interrupt_after, km.interrupt_kernel).start()
            outputs = []
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    reply = kc.get_shell_msg(timeout=10)
                    statuses[msg_id] = reply["content"]["status"] if reply["parent_header"]["msg_id"] == msg_id else "?"
                    return outputs
                if msg["msg_type"] in ("stream", "display_data", "execute_result", "error", "clear_output"):
                    outputs.append({"type": msg["msg_type"], **msg["content"]})

        run("%load_ext gemini_magics")
        run("%%interact\nHi, my name is Zoe.")
        run('%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "80"}')
        outputs = run("%%interact -o never\nTell me a long story.", interrupt_after=1.5)
        # a grey badge, no red block: nothing on stderr, no error output; the cell still fails (Run All stops)
        assert statuses[statuses["last"]] == "error"
        assert not [o for o in outputs if o["type"] == "error" or o.get("name") == "stderr"], outputs
        badges = [o["data"] for o in outputs if "gm-stopped" in o.get("data", {}).get("text/html", "")]
        assert len(badges) == 1 and badges[0]["text/plain"].startswith("■ Interrupted: the answer so far is kept"), outputs
        assert "data-kind='interrupted'" in badges[0]["text/html"] and "var(--jp-ui-font-color1" in badges[0]["text/html"]
        kept = [o for o in outputs if o["type"] == "display_data" and "text/markdown" in o.get("data", {})]
        assert kept and "interrupted by you: partial answer" in kept[-1]["data"]["text/markdown"]
        run("%config InteractMagics.headers = {}")
        after = run("print('never' in dir(), get_ipython().run_cell_magic('interact', '', 'What is my name?').text)")
        assert "".join(o.get("text", "") for o in after).strip() == "False Your name is Zoe."
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_rewind_marks_the_dropped_turns_outputs_in_place_in_a_real_kernel() -> None:
    """Re-running the first cell (the same cell id, as JupyterLab sends it) drops the second turn: the second
    cell's output is updated where it stands to say so, and how to bring it back."""
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    km, kc = start_new_kernel(kernel_name="python3", env={**env, "GEMINI_MAGICS_ENGINE": "scripted"})
    try:

        def run(code: str, cell_id: str) -> list[dict[str, Any]]:
            msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                     "user_expressions": {}, "allow_stdin": False}, metadata={"cellId": cell_id})  # fmt: skip
            kc.shell_channel.send(msg)
            seen = []
            while True:
                got = kc.get_iopub_msg(timeout=60)
                if got["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                    continue
                if got["msg_type"] == "status" and got["content"]["execution_state"] == "idle":
                    return seen
                seen.append({"type": got["msg_type"], **got["content"]})

        run("%load_ext gemini_magics", "load")
        run("%%interact\nHi, my name is Ann.", "first")
        second = run("%%interact\nWhat is my name?", "second")
        shown = [o for o in second if o["type"] == "display_data"][-1]  # shown under a display id, not execute_result
        assert not [o for o in second if o["type"] == "execute_result"], second
        display_id = shown["transient"]["display_id"]
        again = run("%%interact\nHi, my name is Ann.", "first")
        updates = [o for o in again if o["type"] == "update_display_data" and o["transient"]["display_id"] == display_id]
        assert updates and "dropped from chain default — `%interact restore 2` brings it back" in updates[-1]["data"]["text/markdown"]
        value = run("print(type(_).__name__, _.text)", "check")
        assert "InteractionResult Nice to meet you, Ann!" in "".join(o.get("text", "") for o in value)  # still the value
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
