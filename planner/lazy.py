"""A sequence whose items are built when first read."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, overload

T = TypeVar("T")


class LazyList(Sequence[T]):
    """`length` items, item i built by `build(i)` on first read and kept.

    A full-catalog search ranks thousands of options as arrays; a person reads a few of
    them, so only those become objects.
    """

    def __init__(self, length: int, build: Callable[[int], T]) -> None:
        self._length = length
        self._build = build
        self._built: dict[int, T] = {}

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._length))]
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(i)
        if i not in self._built:
            self._built[i] = self._build(i)
        return self._built[i]

    def __iter__(self) -> Iterator[T]:
        return (self[i] for i in range(self._length))

    def replace(self, i: int, item: T) -> None:
        """Put `item` in place of item i (a refined version of it)."""
        self[i]  # bounds check
        self._built[i] = item
