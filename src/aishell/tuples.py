"""`NamedTuple` for aishell's record types, without typing's per-field checks.

`typing.NamedTuple` turns every field's annotation into a `typing.ForwardRef`, and
with `from __future__ import annotations` each one is a string it compiles: a launch
creates some eighty of these classes, and those checks alone cost it ~2 ms. This
`NamedTuple` builds the same `collections.namedtuple` class from the same class body
and keeps the annotations as written (strings); mypy, which does the type checking,
sees `typing.NamedTuple` itself.

The class syntax means what it means for `typing.NamedTuple`: the annotated names are
the fields, in order; a field with a default cannot precede one without; the body's
methods, properties, class attributes and docstring are kept; the namedtuple's own
attributes (`_replace`, `__new__`, ...) cannot be overridden; the only base is
`NamedTuple` (no `Generic`). The functional form (`NamedTuple("X", [...])`) is
`typing`'s. On Python versions whose class bodies no longer carry `__annotations__`
(3.14's deferred annotations) it is `typing.NamedTuple` itself.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

__all__ = ["NamedTuple"]

if TYPE_CHECKING or sys.version_info >= (3, 14):
    from typing import NamedTuple as NamedTuple
else:
    import collections
    from typing import Any

    # As typing's class syntax: what the body may not set, and what it sets but is not
    # copied onto the class.
    _PROHIBITED = frozenset(
        {
            "__new__",
            "__init__",
            "__slots__",
            "__getnewargs__",
            "_fields",
            "_field_defaults",
            "_make",
            "_replace",
            "_asdict",
            "_source",
        }
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(
            cls, typename: str, bases: tuple[type, ...], ns: dict[str, Any]
        ) -> type[tuple[Any, ...]]:
            if bases != (_NamedTuple,):
                raise TypeError("a NamedTuple class can only inherit from NamedTuple")
            fields = dict(ns.get("__annotations__", {}))
            with_default: list[str] = []
            for name in fields:
                if name in ns:
                    with_default.append(name)
                elif with_default:
                    raise TypeError(
                        f"Non-default namedtuple field {name} cannot follow default "
                        f"field{'s' if len(with_default) > 1 else ''} {', '.join(with_default)}"
                    )
            made = collections.namedtuple(
                typename,
                list(fields),
                defaults=[ns[name] for name in with_default],
                module=ns["__module__"],
            )
            made.__annotations__ = made.__new__.__annotations__ = fields
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in fields:
                    setattr(made, key, value)
            return made

    _NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})

    def NamedTuple(typename: str, fields: Any = None, /, **kwargs: Any) -> Any:
        """The functional form: typing's own."""
        import typing

        made = typing.NamedTuple(typename, fields, **kwargs)
        made.__module__ = sys._getframe(1).f_globals.get("__name__", "__main__")
        return made

    NamedTuple.__mro_entries__ = lambda bases: (_NamedTuple,)
