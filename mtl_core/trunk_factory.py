"""A trunk of the user's own, named by a factory ``"package.module:function"``: how the name is
checked (torch-free, for the study file's schema), found (an installed package, or a module
file in a folder the caller names, e.g. the study's) and called.

The factory is called with its options (``model.trunk``'s other keys) and, where its
signature takes them, ``input_shape`` (the shape of one row) and ``hidden_size``; it returns a
``torch.nn.Module`` that maps a batch of rows to a batch of features (any shape: they are
flattened). Architectures that hold several copies of the trunk (experts, towers) call it
once per copy. Importing the module runs its code: name only code you trust, as with any
Python you run.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

FACTORY_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
AUTOMATIC = ("input_shape", "hidden_size")  # passed when the factory's signature takes them


class FactoryError(ValueError):
    """A factory that cannot be found or called as named; the message says why."""


def is_factory_name(value: object) -> bool:
    """``"package.module:function"``, as a study file names a trunk factory."""
    return isinstance(value, str) and FACTORY_NAME.fullmatch(value) is not None


def add_folder(folder: str | Path) -> None:
    """Let this process import module files from ``folder`` (after the installed packages)."""
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def resolve(name: str, folder: str | Path | None = None) -> Callable[..., Any]:
    """The callable ``name`` names, imported from an installed package or, failing that, from
    a module file in ``folder`` (which stays on ``sys.path``, after the installed packages, so
    that the same process finds it again)."""
    if not is_factory_name(name):
        raise FactoryError(f"{name!r} is not 'package.module:function'")
    module_name, attribute = name.split(":")
    if folder is not None:
        add_folder(folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name.split(".")[0]):
            where = f" in {folder}" if folder is not None else ""
            raise FactoryError(
                f"module {module_name!r} is not found{where} nor among the installed packages"
            ) from None
        raise FactoryError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # the user's module raised while it was imported
        raise FactoryError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    factory = getattr(module, attribute, None)
    if factory is None:
        raise FactoryError(f"module {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise FactoryError(f"{name} is a {type(factory).__name__}, not a function or class")
    return factory


def arguments(
    factory: Callable[..., Any],
    options: Mapping[str, Any],
    input_shape: Sequence[int] | None = None,
    hidden_size: int | None = None,
) -> dict[str, Any]:
    """The keywords to call ``factory`` with: the options, plus ``input_shape`` and
    ``hidden_size`` where its signature takes them. FactoryError when the options do not fit
    the signature (an unknown or a missing argument)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: pass the options only
        return dict(options)
    taken = signature.parameters
    anything = any(p.kind is p.VAR_KEYWORD for p in taken.values())
    given: dict[str, Any] = dict(options)
    for name, value in (("input_shape", input_shape), ("hidden_size", hidden_size)):
        if name not in given and (name in taken or anything):
            given[name] = tuple(value) if name == "input_shape" and value is not None else value
    try:
        signature.bind(**given)
    except TypeError as exc:
        takes = ", ".join(taken) or "nothing"
        raise FactoryError(
            f"its options do not fit its signature ({exc}; it takes {takes})"
        ) from None
    return given
