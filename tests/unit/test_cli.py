"""The CLI runs a DAG's step for any registered use case, and names the declaration field a step lacks."""

from __future__ import annotations

import pytest

from airloop import cli


def test_ingest_a_second_use_case_from_the_command_line(airloop_home, monkeypatch, capsys):
    monkeypatch.setenv("AIRLOOP_USE_CASE", "flights")  # (restored after: --use-case sets the variable)
    assert (
        cli.main(
            ["--use-case", "grid_peak", "ingest", "--first-day", "2014-01-01", "--last-day", "2014-01-02"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 days validated" in out and "demand 96" in out


def test_a_step_names_what_the_declaration_lacks(airloop_home, monkeypatch):
    from airloop import resources
    from airloop.usecases import load_use_case

    bare = load_use_case("grid_peak").model_copy(update={"model": None})
    monkeypatch.setattr(resources, "load_use_case", lambda name: bare)
    with pytest.raises(SystemExit, match=r"declares no 'model' \(UseCase.model\)"):
        cli.main(["train", "--holdout-end", "2014-03-01", "--at", "2014-03-01T00:00:00+10:00"])


def test_an_unknown_use_case_is_named(airloop_home, monkeypatch):
    monkeypatch.setenv("AIRLOOP_USE_CASE", "flights")
    with pytest.raises(KeyError, match="unknown use case 'nope'; registered: \\['flights', 'grid_peak'\\]"):
        cli.main(["--use-case", "nope", "summary", "--first-day", "2014-01-01", "--last-day", "2014-01-01"])
