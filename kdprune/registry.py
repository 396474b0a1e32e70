"""Name -> entry registries: every dataset, model, score, selection rule, loss, schedule, verdict rule,
figure and job kind is a key.

An entry is declared by its import path (`declare(name, "module:attribute", **meta)`) and imported
on first `get`, or registered in place (`register`). Declarations live in each subpackage's
`__init__.py`, which imports nothing heavy: the planning layer (kdprune.plan) reads names and
metadata (does a loss need a teacher, is a dataset streamed) without importing torch, pandas or
scipy."""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def import_target(path: str) -> Any:
    """The object named by "module:attribute", imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def did_you_mean(name: object, allowed: Iterable[object]) -> str:
    """What an unknown name is told: `allowed: a, b, c`, and `; did you mean 'b'?` when it is a near
    miss of one of them (a typo). Every unknown key and name (registries, config keys, presets,
    papers) says it this way."""
    allowed = [str(option) for option in allowed]
    folded = {option.lower(): option for option in allowed}  # `convnet` is a near miss of `ConvNet`
    close = difflib.get_close_matches(str(name).lower(), folded, n=1, cutoff=0.6)
    return f"allowed: {', '.join(allowed)}" + (f"; did you mean {folded[close[0]]!r}?" if close else "")


class UnknownName(KeyError):
    """A name that no registry entry has; the message lists what is allowed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._targets: dict[str, tuple[str, dict]] = {}  # name -> ("module:attribute", keyword arguments)
        self._entries: dict[str, T] = {}  # loaded or registered in place
        self._meta: dict[str, dict[str, Any]] = {}

    def _claim(self, name: str, meta: dict) -> None:
        if name in self._meta:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._meta[name] = meta

    def declare(self, name: str, target: str, *, args: dict | None = None, **meta: Any) -> None:
        """`target` ("module:attribute") is imported on first `get`; with `args`, the entry is the
        target with those keyword arguments bound (e.g. a network family at one depth)."""
        self._claim(name, meta)
        self._targets[name] = (target, args or {})

    def register(self, name: str, *aliases: str, **meta: Any) -> Callable[[T], T]:
        def add(obj: T) -> T:
            for key in (name, *aliases):
                self._claim(key, meta)
                self._entries[key] = obj
            return obj

        return add

    def _check(self, name: str) -> None:
        if name not in self._meta:
            raise UnknownName(f"unknown {self.kind} {name!r}; {did_you_mean(name, self.names())}")

    def get(self, name: str) -> T:
        self._check(name)
        if name not in self._entries:
            path, args = self._targets[name]
            obj = import_target(path)
            self._entries[name] = functools.partial(obj, **args) if args else obj
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        """What the declaration says of the entry, without importing it."""
        self._check(name)
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted(self._meta)

    def __contains__(self, name: str) -> bool:
        return name in self._meta

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
