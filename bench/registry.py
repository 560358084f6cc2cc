"""Name -> object registries with did-you-mean errors (suites, objectives, adapters, models)."""

from typing import Generic, Iterator, TypeVar

from bench.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add `item` under `name` and return it. Raises ValueError when `name` is already registered."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._items[name] = item
        return item

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown(self.kind, name, self._items) from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def items(self):
        """(name, item) pairs in registration order."""
        return self._items.items()

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)
