"""Every user mistake is one UsageError line that says what and how to fix, and changes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from conftest import Shell, requests_to
from gemini_magics.local import start_server

BAD_CELLS = [
    ("%%interact --frobnicate\nhi", "unrecognized arguments"),
    ("%%interact\nTell me about {{nope}}", "unknown name in {{...}}: nope"),
    ("%%interact\nUse {{a}} and {{b}}", "unknown names in {{...}}: a, b"),
    ("%%interact --temperature hot\nhi", "invalid float value"),
    ("%%interact --temperature 5\nhi", "between 0 and 2"),
    ("%%interact --max-tokens 0\nhi", "positive"),
    ("%%interact --max-tokens many\nhi", "invalid int value"),
    ("%%interact --seed 1.5\nhi", "invalid int value"),
    ("%%interact --schema Missing\nhi", "--schema Missing: no such variable"),
    ("%%interact --schema number\nhi", "expected a pydantic model class or a JSON-schema dict"),
    ("%%interact -o 1bad\nhi", "needs a Python identifier"),
    ("%%interact --thinking extreme\nhi", "invalid choice"),
    ("%%interact --agent deep -m gemini-x\nhi", "not both"),
    ("%%interact --agent deep --temperature 0.5\nhi", "apply to models"),
    ("%%interact --background --no-store\nhi", "drop --no-store"),
    ("%%interact\n   \n", "the cell is empty"),
    ('%%interact\nLook at {{d["missing"]}}', 'cannot index dict with "missing"'),
    ("%%interact\nLook at {{d.nothing}}", "has no attribute 'nothing'"),
    ("%%interact\nRead {{missing_file}}", "no such file"),
    ("%%interact --chain 'bad name!'\nhi", "--chain needs a simple name"),
    ("%interact frobnicate", "invalid choice"),
    ("%interact history --chain nowhere", "no chain named 'nowhere'"),
    ("%interact reset --chain nowhere", "no chain named 'nowhere'"),
    ("%interact get v1_doesnotexist", "404"),
    ("%interact cancel v1_doesnotexist", "404"),
    ("%interact get", "the following arguments are required: id"),
    ("%interact last", "no %%interact cell has run yet"),
    ('%interact reset "unterminated', "cannot parse the line"),
]


def state(shell: Shell) -> tuple:  # type: ignore[type-arg]
    chains = {
        n: [t.interaction_id for t in shell.magics.chains.turns(n)] for n in shell.magics.chains.names()
    }
    names = sorted(k for k in shell.ip.user_ns if not k.startswith("_"))
    return chains, names, copy.deepcopy(shell.magics.usage_totals)


@pytest.mark.parametrize(
    ("cell", "expected"), BAD_CELLS, ids=[c[0].split("\n")[0] + f"#{i}" for i, c in enumerate(BAD_CELLS)]
)
def test_bad_input_is_one_usage_error_line_and_changes_nothing(
    shell: Shell, server, cell: str, expected: str
) -> None:  # type: ignore[no-untyped-def]
    shell.ip.user_ns.update({"number": 5, "d": {"k": 1}, "missing_file": Path("/nonexistent/file.txt")})
    if not cell.startswith("%interact last"):
        shell.run("%%interact -o kept\nHi, my name is Gus.")
    before = state(shell)
    posts_before = len(
        [r for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions")]
    )
    error = shell.fail(cell)
    assert type(error).__name__ == "UsageError", repr(error)
    message = str(error)
    assert "\n" not in message and expected in message, message
    assert state(shell) == before
    assert (
        len([r for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions")])
        == posts_before
    )


def test_server_errors_and_a_missing_key_are_one_line_too(
    monkeypatch: pytest.MonkeyPatch, make_shell
) -> None:  # type: ignore[no-untyped-def]
    with start_server(engine="scripted", api_key="the-right-key") as keyed:
        monkeypatch.setenv("GEMINI_BASE_URL", keyed.base_url)
        shell = make_shell()
        error = shell.fail("%%interact\nhi")
        assert type(error).__name__ == "UsageError" and "401" in str(error) and "GEMINI_API_KEY" in str(error)
        assert "\n" not in str(error) and shell.magics.chains.names() == []
        monkeypatch.setenv("GEMINI_API_KEY", "the-right-key")
        shell.run("%%interact -o ok\nHi, my name is Hal.")
        shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Fail": "503:9"}')
        before = state(shell)
        error = shell.fail("%%interact\nWhat is my name?")
        assert "503" in str(error) and "\n" not in str(error) and state(shell) == before


def test_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch, make_shell) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    error = make_shell().fail("%%interact\nhi")
    assert "cannot reach" in str(error) and "\n" not in str(error)


def test_run_all_stops_at_the_failed_cell(shell: Shell) -> None:
    cells = ["%%interact -o a1\nfirst", "%%interact\n{{undefined_thing}}", "%%interact -o a3\nthird"]
    ran = []
    for cell in cells:
        result = shell.ip.run_cell(cell)
        ran.append(cell)
        if not result.success:
            break
    assert len(ran) == 2 and "a3" not in shell.ip.user_ns


def test_an_expression_on_an_undefined_name_is_the_same_error_as_an_undefined_name(shell: Shell) -> None:
    for cell in ("%%interact\nSummarise {{df.head()}}", "%%interact\nSummarise {{nope}}", "%%interact\nSum {{xs[0] + 1}}"):
        error = shell.fail(cell)
        assert str(error).startswith("unknown name in {{...}}:") and "\n" not in str(error), str(error)
    shell.run("df = 1")
    assert "is not a reference" in str(shell.fail("%%interact\nSummarise {{df.head()}}"))  # defined: not run either
    assert "{{name is}}" in shell.run("%%interact --dry-run\nA {{name is}} placeholder").request["input"]  # prose stays
