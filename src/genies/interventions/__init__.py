"""Tuning interventions behind one registry: each module registers its methods by name with
`@register`, and generic code (config validation, the fit and evaluate commands) finds them here,
never by naming one. Loading the registry imports every module of this package (torch, pandas);
the heavier libraries a method needs (transformers, scikit-learn, peft) are imported inside the
functions that use them, when the method runs."""

import importlib
import pkgutil
from functools import cache

from genies.errors import GeniesError
from genies.interventions.base import Intervention

_REGISTRY: dict[str, type[Intervention]] = {}


def register(cls: type[Intervention]) -> type[Intervention]:
    if cls.name in _REGISTRY:
        raise ValueError(f"intervention {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


@cache
def registry() -> dict[str, type[Intervention]]:
    """Every registered method, by name in alphabetical order (not import order, which depends on
    what was imported before)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY)}


def names() -> list[str]:
    return list(registry())


def get(name: str) -> Intervention:
    methods = registry()
    if name not in methods:
        raise GeniesError(f"unknown intervention {name!r}; known: {', '.join(methods)}")
    return methods[name]()
