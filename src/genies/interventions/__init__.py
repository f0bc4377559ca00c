"""Tuning interventions behind one registry: each module registers its methods by name with
`@register`, and generic code (config validation, the fit and evaluate commands) finds them here,
never by naming one. A method's heavy imports happen inside its functions, so importing the
registry stays cheap."""

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
    """Every registered method by name, in module order."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(_REGISTRY)


def names() -> list[str]:
    return list(registry())


def get(name: str) -> Intervention:
    methods = registry()
    if name not in methods:
        raise GeniesError(f"unknown intervention {name!r}; known: {', '.join(methods)}")
    return methods[name]()
