"""The platform stays generic: no module outside ``airloop.usecases`` names a column, source, entity, label or
model of any registered use case (everything it needs comes from the declaration). A few words are also the
platform's own vocabulary (a day to score, a feature's name, a model) and are allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airloop.usecases import _REGISTRY, load_use_case

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = sorted(
    [p for p in (ROOT / "include" / "airloop").rglob("*.py") if "usecases" not in p.parts]
    + list((ROOT / "dags").glob("*.py"))
    + list((ROOT / "plugins").glob("*.py"))
)
# Platform vocabulary that a use case may also use as a column name.
GENERIC = {
    "name",
    "model",
    "type",
    "day",
    "year",
    "month",
    "hour",
    "minute",
    "period",
    "engine",
    "engines",
    "key",
    "label",
    "probability",
    "ds",
    "tz",
}
# The one place a use case is named on purpose: the default selection, a setting.
CONFIGURATION = {("include/airloop/settings.py", "flights")}


def use_case_names() -> dict[str, str]:
    """Every name a use case declares -> which use case declares it."""
    names: dict[str, str] = {}
    for case in _REGISTRY:
        uc = load_use_case(case)
        declared = {uc.model_name, uc.label.name, uc.primary_source, *uc.entities}
        for source in uc.sources:
            declared |= {source.name, *(c.name for c in source.columns)}
        if uc.features:
            declared |= {
                g.name for g in [*uc.features.observations, *uc.features.histories, *uc.features.attributes]
            }
            declared |= set(uc.features.request_schema) | set(uc.features.defaults) | {uc.features.service}
        names |= {n: case for n in declared - GENERIC}
    return names


def mentions(path: Path, names: dict[str, str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.arg):
            text = node.arg
        if text in names and (str(path.relative_to(ROOT)), text) not in CONFIGURATION:
            found.append(
                f"{path.relative_to(ROOT)}:{node.lineno}: {text!r} (a name of use case {names[text]})"
            )
    return found


def test_the_check_sees_a_use_case_name():
    """(The check itself works: a module that names a flights column is caught.)"""
    names = use_case_names()
    assert {"tailnum", "dest", "demand_gw", "flight_delay"} <= set(names)


@pytest.mark.parametrize("path", PLATFORM, ids=lambda p: str(p.relative_to(ROOT)))
def test_platform_module_names_no_use_case(path):
    assert mentions(path, use_case_names()) == []


def test_a_planted_mention_is_found(tmp_path):
    planted = ROOT / "include" / "airloop" / "_planted_for_test.py"
    try:
        planted.write_text('def f(frame):\n    return frame["tailnum"]\n')
        assert mentions(planted, use_case_names()) == [
            "include/airloop/_planted_for_test.py:2: 'tailnum' (a name of use case flights)"
        ]
    finally:
        planted.unlink()
