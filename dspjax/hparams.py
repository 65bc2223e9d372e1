"""Declaring and validating hyperparameters that a sweep may vary.

Every sweepable hyperparameter is a field of a ``flax.struct.dataclass`` and therefore an array
leaf of the training state (METHOD.md §4): one compiled program can ``jax.vmap`` over a population
of them. Discrete choices (importance measure, threshold rule, ...) are integer leaves whose names
are declared here with ``choices`` and dispatched with ``lax.switch`` by the code that uses them.

``hparam`` attaches the allowed range and help text to a field so the CLI, the sweep builder and
``validate`` share one source of truth, and bad input is refused before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """A configuration value is out of range or unknown. The message names the field."""


def hparam(default, *, help: str, low=None, high=None, low_open=False, high_open=False,
           choices: Sequence[str] | None = None, integer: bool = False):
    """A dataclass field with its allowed range (``low``/``high``, inclusive unless ``*_open``)
    or, for a discrete choice, the names of its integer codes (``choices``)."""
    meta = dict(help=help, low=low, high=high, low_open=low_open, high_open=high_open,
                choices=tuple(choices) if choices else None, integer=integer or bool(choices))
    return dataclasses.field(default=default, metadata=meta)


def specs(cls) -> Iterator[tuple[str, dict, Any]]:
    """Yields ``(name, metadata, default)`` for each declared hyperparameter of ``cls``."""
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            yield f.name, f.metadata, f.default


def allowed(meta: dict) -> str:
    """Human-readable description of what a field accepts."""
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    lo, hi = meta["low"], meta["high"]
    left = "(" if meta["low_open"] or lo is None else "["
    right = ")" if meta["high_open"] or hi is None else "]"
    kind = "an integer" if meta["integer"] else "a number"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{kind} in {left}{lo_s}, {hi_s}{right}"


def parse_value(name: str, meta: dict, text: str):
    """Turns the text of one CLI value into the field's Python value, or raises ConfigError."""
    if meta["choices"]:
        if text not in meta["choices"]:
            raise ConfigError(f"{name}={text!r}: must be {allowed(meta)}")
        return meta["choices"].index(text)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: must be {allowed(meta)}") from None
    if meta["integer"]:
        if value != int(value):
            raise ConfigError(f"{name}={text!r}: must be {allowed(meta)}")
        value = int(value)
    check_value(name, meta, value)
    return value


def check_value(name: str, meta: dict, value) -> None:
    """Raises ConfigError unless ``value`` lies in the field's declared range."""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if meta["choices"]:
        if not (whole and 0 <= value < len(meta["choices"])):
            raise ConfigError(f"{name}={value!r}: must be {allowed(meta)}")
        return
    v = float(value)
    lo, hi = meta["low"], meta["high"]
    bad = not math.isfinite(v) or (meta["integer"] and not whole)
    if lo is not None:
        bad |= v <= lo if meta["low_open"] else v < lo
    if hi is not None:
        bad |= v >= hi if meta["high_open"] else v > hi
    if bad:
        raise ConfigError(f"{name}={value!r}: must be {allowed(meta)}")


def validate_fields(obj) -> None:
    """Checks every declared field of one (unbatched) hyperparameter dataclass."""
    for name, meta, _ in specs(type(obj)):
        check_value(name, meta, getattr(obj, name))


def choice_name(cls, name: str, code: int) -> str:
    """The name of integer code ``code`` of the discrete field ``name`` of ``cls``."""
    meta = {n: m for n, m, _ in specs(cls)}[name]
    return meta["choices"][int(code)]
