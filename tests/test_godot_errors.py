"""trionet.Error: Godot 4's global error names and numbers."""

from __future__ import annotations

from trionet import Error


def test_numbers_follow_godots_error_list() -> None:
    assert len(Error) == 49
    assert [e.value for e in Error] == list(range(49))
    assert Error.OK == 0
    assert Error.FAILED == 1
    assert Error.ERR_UNCONFIGURED == 3
    assert Error.ERR_FILE_EOF == 18
    assert Error.ERR_ALREADY_IN_USE == 22
    assert Error.ERR_TIMEOUT == 24
    assert Error.ERR_CANT_CONNECT == 25
    assert Error.ERR_CANT_RESOLVE == 26
    assert Error.ERR_CONNECTION_ERROR == 27
    assert Error.ERR_INVALID_DATA == 30
    assert Error.ERR_INVALID_PARAMETER == 31
    assert Error.ERR_ALREADY_EXISTS == 32
    assert Error.ERR_BUSY == 44
    assert Error.ERR_PRINTER_ON_FIRE == 48


def test_ok_is_falsy_and_errors_truthy() -> None:
    assert not Error.OK
    assert all(error for error in Error if error is not Error.OK)
