"""Import what a command line names as ``module:attribute``: the model, the data steps."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import sqlalchemy as sa

from .errors import ConfigurationError
from .steps import Steps

__all__ = ["load_model", "load_steps"]


def load_model(spec: str) -> Any:
    """Import ``module:attribute`` (from the current directory too) as a MetaData or Base."""
    found = _import_attribute(spec, "--model", "myapp.models:Base")
    if not isinstance(found, sa.MetaData) and not isinstance(
        getattr(found, "metadata", None), sa.MetaData
    ):
        raise ConfigurationError(
            f"--model {spec}: expected a SQLAlchemy MetaData or declarative base, got {type(found).__name__}"
        )
    return found


def load_steps(spec: str) -> Steps:
    """Import ``module:attribute`` as a :class:`~tenant_sync.steps.Steps` of data steps."""
    found = _import_attribute(spec, "--steps", "myapp.steps:steps")
    if not isinstance(found, Steps):
        raise ConfigurationError(
            f"--steps {spec}: expected a tenant_sync.Steps, got {type(found).__name__}"
        )
    return found


def _import_attribute(spec: str, option: str, example: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{option} must be module:attribute ({example}), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise ConfigurationError(
                f"{option} {spec}: no module named {exc.name!r} (run from the directory "
                "that holds it, or set PYTHONPATH)"
            ) from exc
        raise ConfigurationError(f"{option} {spec}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise ConfigurationError(
            f"{option} {spec}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ConfigurationError(
                f"{option} {spec}: {module_name} has no attribute {attribute!r}"
            )
        found = getattr(found, part)
    return found
