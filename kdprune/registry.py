"""Name -> entry registries: every dataset, model, score, selection rule, loss, schedule, verdict rule,
figure and job kind is a key.

An entry is declared by its import path (`declare(name, "module:attribute", **meta)`) and imported
on first `get`, or registered in place (`register`). Declarations live in each subpackage's
`__init__.py`, which imports nothing heavy: the planning layer (kdprune.plan) reads names and
metadata (does a loss need a teacher, is a dataset streamed) without importing torch, pandas or
scipy."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def import_target(path: str) -> Any:
    """The object named by "module:attribute", imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


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
            raise UnknownName(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}")

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
