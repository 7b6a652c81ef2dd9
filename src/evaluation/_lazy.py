"""Modules imported on first use, not at import time.

``scipy.stats`` takes about a second to import (its distributions are built at import). The matching stage needs
it only for p-values and intervals after the matching itself, so a researcher's first ``match()`` in a fresh
process (and ``import evaluation``) should not pay for it up front; a proxy imports it on first attribute access.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands in for a module; the first attribute access imports it (``stats.norm`` works as usual)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self._module is not None else ''}>"


stats = LazyModule("scipy.stats")
optimize = LazyModule("scipy.optimize")
