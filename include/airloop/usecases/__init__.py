"""Registered use-case declarations. Add a module here and a line in ``_REGISTRY`` to onboard one."""

from __future__ import annotations

from importlib import import_module

from airloop.usecase import UseCase

_REGISTRY: dict[str, str] = {
    "flights": "airloop.usecases.flights",
    "grid_peak": "airloop.usecases.grid_peak",
}


def load_use_case(name: str) -> UseCase:
    """Return the declaration registered as ``name`` (its module's ``USE_CASE``)."""
    try:
        module = import_module(_REGISTRY[name])
    except KeyError:
        raise KeyError(f"unknown use case {name!r}; registered: {sorted(_REGISTRY)}") from None
    return module.USE_CASE
