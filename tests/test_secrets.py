"""An API key never appears in output, reprs, errors, logs or history."""

from __future__ import annotations

import logging

import pytest

from conftest import Shell
from gemini_magics.local import start_server

SECRET = "AIzaSyTEST-do-not-print-0123456789"


def test_the_key_appears_nowhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    with start_server(engine="scripted", api_key=SECRET) as server:
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        shell = Shell(server.base_url)
        produced: list[str] = []
        try:
            result = shell.run("%%interact -o r --thinking low\nHi, my name is Ivy.")
            produced += [repr(result), str(result._repr_mimebundle_()), repr(result.interaction)]
            for sub in ("config", "chains", "history", "usage", "models", f"get {result.id}"):
                value = shell.ip.run_line_magic("interact", sub)
                produced += [repr(value), str(getattr(value, "_repr_mimebundle_", lambda: "")())]
            shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Fail": "500:9"}')
            produced.append(str(shell.fail("%%interact\nfail please")))
            shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
            produced.append(repr(shell.run("%%interact --dry-run\nx")))
            produced.append(repr(shell.magics.session.backend().client))
            produced.append(str(list(server.api.requests)))
            assert "set, from GEMINI_API_KEY" in produced[3]
        finally:
            shell.close()
        out = capsys.readouterr()
        produced += [out.out, out.err, caplog.text]
        for text in produced:
            assert SECRET not in text
