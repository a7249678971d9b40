"""aishell.tuples.NamedTuple: the same classes as typing.NamedTuple, made without
typing's per-field checks (a launch creates ~80 of them)."""

from __future__ import annotations

import pickle
import sys
import typing
from typing import Any

import pytest

from aishell import tuples


def make(base: Any) -> type:
    class Point(base):
        """A point."""

        x: int
        y: str | None
        z: tuple[str, ...] = ()
        w: bool = False

        LIMIT = 3  # a class attribute, not a field

        @property
        def doubled(self) -> int:
            return int(self.x) * 2

        def shifted(self, by: int) -> Any:
            return self._replace(x=self.x + by)

        @classmethod
        def origin(cls) -> Any:
            return cls(0, None)

    return Point


FAST = make(tuples.NamedTuple)
TYPED = make(typing.NamedTuple)


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="typing.NamedTuple itself there")
def test_it_is_not_typing_s_own() -> None:
    assert tuples.NamedTuple is not typing.NamedTuple


def test_the_same_class() -> None:
    for attr in ("_fields", "_field_defaults", "__doc__", "__name__", "LIMIT"):
        assert getattr(FAST, attr) == getattr(TYPED, attr), attr
    assert FAST.__mro__[1:] == (tuple, object)
    assert FAST.__module__ == __name__
    assert FAST.__qualname__.endswith("make.<locals>.Point")
    assert list(FAST.__annotations__) == ["x", "y", "z", "w"]
    assert FAST.__slots__ == ()


def test_instances_behave_the_same() -> None:
    for cls in (FAST, TYPED):
        p = cls(1, "a")
        assert p == (1, "a", (), False)
        assert p.x == 1 and p.y == "a" and p.z == () and p.w is False
        assert p.doubled == 2
        assert p.shifted(2) == cls(3, "a")
        assert cls.origin() == (0, None, (), False)
        assert p._asdict() == {"x": 1, "y": "a", "z": (), "w": False}
        assert cls._make([1, 2, 3, 4]) == (1, 2, 3, 4)
        assert cls(x=5, y=None, w=True) == (5, None, (), True)
        assert repr(p) == "Point(x=1, y='a', z=(), w=False)"
        a, b, *_ = p
        assert (a, b) == (1, "a")
        with pytest.raises(TypeError):
            cls(1)  # y has no default
        with pytest.raises(TypeError):
            cls(1, 2, 3, 4, 5)
        with pytest.raises(TypeError):
            cls(1, 2, q=3)
        with pytest.raises(AttributeError):
            p.x = 2
        with pytest.raises(AttributeError):
            p.anything = 2


def test_pickles_by_name() -> None:
    item = Module(1)
    assert pickle.loads(pickle.dumps(item)) == item
    assert type(pickle.loads(pickle.dumps(item))) is Module


class Module(tuples.NamedTuple):
    n: int


def test_an_empty_body_is_an_empty_tuple_type() -> None:
    class Empty(tuples.NamedTuple):
        pass

    assert Empty() == () and Empty._fields == ()


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow"):

        class Bad(tuples.NamedTuple):
            a: int = 0
            b: int


@pytest.mark.parametrize("name", ["_replace", "_asdict", "__new__", "_fields", "__init__"])
def test_its_own_attributes_cannot_be_overridden(name: str) -> None:
    source = f"class Bad(NamedTuple):\n    a: int\n    def {name}(self): pass\n"
    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute"):
        exec(source, {"NamedTuple": tuples.NamedTuple, "__name__": __name__})


def test_other_bases_are_refused() -> None:
    with pytest.raises(TypeError):

        class Bad(tuples.NamedTuple, int):
            a: int


def test_the_functional_form_is_typing_s() -> None:
    Pair = tuples.NamedTuple("Pair", [("a", int), ("b", str)])
    assert Pair(1, "x") == (1, "x")
    assert Pair.__module__ == __name__
