"""Command-line options made from a function's (or a dataclass's) signature: the default and the type come from
the parameter, the help text from the command; nothing is written twice."""
from __future__ import annotations

import argparse
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]  # returns the exit status (None = 0)
    description: str | None = None


def add_options(parser: argparse.ArgumentParser, function, options: dict) -> None:
    """One option per entry of ``options``: ``{parameter: help}`` or ``{parameter: {"help": ..., "flag": "--x" or ("--x", "-x"),
    **more argparse keywords}}``; a ``"default"`` there is only for a parameter without one. The default is the parameter's; a ``True`` default makes a ``--no-...`` switch,
    ``False`` a ``--...`` switch, a tuple or list default a ``nargs="+"`` option (so does ``"many": True``, whose
    default is then ``[the parameter's default]``: a grid of values, one run each)."""
    parameters = inspect.signature(function).parameters
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate here: types from the defaults
        hints = {}
    for name, spec in options.items():
        spec = {"help": spec} if isinstance(spec, str) else dict(spec)
        default = spec.pop("default", parameters[name].default)  # a default of the command's own: a required field
        if default is inspect.Parameter.empty:
            raise TypeError(f"{function.__qualname__}({name}) has no default: make it a positional argument")
        flags = spec.pop("flag", None)
        flags = (flags,) if isinstance(flags, str) else tuple(flags or ())
        if isinstance(default, bool):
            flags = flags or (("--no-" if default else "--") + name.replace("_", "-"),)
            parser.add_argument(*flags, dest=name, action="store_false" if default else "store_true", **spec)
            continue
        kind, many = _value_type(hints.get(name), default)
        if spec.pop("many", False):  # several values for a parameter that takes one (e.g. --seeds for seed)
            default, many = [default], True
        settings = {"type": kind, "default": default, **({"nargs": "+"} if many else {}), **spec}
        if default not in (None, (), []) and "%(default)" not in settings["help"]:
            settings["help"] += " (default: %(default)s)"
        parser.add_argument(*(flags or ("--" + name.replace("_", "-"),)), dest=name, **settings)


def _value_type(hint, default):
    """(the type of one value, whether the option takes several) from a parameter's annotation and default."""
    many = isinstance(default, (tuple, list))
    args = [a for a in typing.get_args(hint) if a is not type(None)] if hint is not None else []
    if many or typing.get_origin(hint) in (list, tuple):
        item = args[0] if args else (type(default[0]) if default else str)
        return (str if item in (Path, typing.Any) else item), True
    if default is not None:
        return type(default), False
    kind = args[0] if args else (hint or str)
    return (kind if kind in (int, float, str) else str), False


def given(args: argparse.Namespace, options: dict) -> dict:
    """The values of ``options`` in the parsed ``args`` (to call the function they were made from)."""
    return {name: getattr(args, name) for name in options}
