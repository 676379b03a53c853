"""The error hierarchy and the one-line contract of every console script, with its traceback switch."""

from __future__ import annotations

import pytest

from cards.errors import ExternalError, IntegrityError, UsageError, ZooError
from cards.generator import generate
from conftest import one_line_error, script


@pytest.mark.parametrize("error", [UsageError, IntegrityError, ExternalError])
def test_every_project_error_is_a_zoo_error_and_distinct(error):
    assert issubclass(error, ZooError)
    others = {UsageError, IntegrityError, ExternalError} - {error}
    assert not any(issubclass(error, other) for other in others)


def test_bad_input_is_one_line_and_the_switch_shows_the_traceback(tmp_path):
    plain = script("tinysql.cli", "--level", "9", "--out", tmp_path / "a")
    assert "level 9 does not exist" in one_line_error(plain.returncode, plain.stderr)
    shown = script("tinysql.cli", "--level", "9", "--out", tmp_path / "b", env={"INTERP_ZOO_TRACEBACK": "1"})
    assert shown.returncode == 2 and "Traceback" in shown.stderr and "UsageError" in shown.stderr
    assert shown.stderr.strip().splitlines()[-1].startswith("tinysql-gen: error: --level: level 9 does not exist")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_python_callers_get_the_same_checks_as_the_command_line(tmp_path):
    with pytest.raises(UsageError, match="dialect"):
        generate("tinysql", tmp_path / "x", dialect="klingon")
    with pytest.raises(UsageError, match="seed"):
        generate("multmath", tmp_path / "y", seed="7")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
