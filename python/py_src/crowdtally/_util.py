"""Small helpers shared by the release object and its views."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def require(module: str, what: str, extra: str) -> Any:
    """Imports an optional dependency, or says which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise ImportError(
            f"{what} needs {module}, which is not installed: pip install crowdtally[{extra}]"
        ) from missing


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def join(values: Any) -> str:
    return ",".join(strings(values))
