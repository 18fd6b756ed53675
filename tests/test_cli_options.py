"""The user-error boundary every tool runs behind: exit 2 with one line, tracebacks only with --verbose."""

from __future__ import annotations

import pytest

from libtlt.cli_options import USER_ERROR_EXIT, run_tool
from libtlt.errors import DataError, SpecError, location


def fail_with(error: Exception):
    def body() -> None:
        raise error

    return body


def test_user_error_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_tool(fail_with(DataError("expected 15 fields, found 3", location=location("l/0.txt", 4))))
    assert info.value.code == USER_ERROR_EXIT
    err = capsys.readouterr().err
    assert err == "Error: l/0.txt:4: expected 15 fields, found 3\n"


def test_verbose_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_tool(fail_with(SpecError("bad", location="s.txt:1:2", field="a.b")), verbose=True)
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("Error: s.txt:1:2: field 'a.b': bad")


def test_bugs_keep_their_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run_tool(fail_with(ZeroDivisionError("bug")))


def test_interrupt_exits_130() -> None:
    with pytest.raises(SystemExit) as info:
        run_tool(fail_with(KeyboardInterrupt()))
    assert info.value.code == 130


def test_success_returns_the_value() -> None:
    assert run_tool(lambda: 42) == 42


def test_multiline_messages_become_one_line() -> None:
    assert "\n" not in str(DataError("a\nb", location="f"))
