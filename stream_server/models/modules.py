"""nn.ModuleList, typed by what it holds. torch types a ModuleList's items as nn.Module, so code that
calls its blocks' own methods (``block.reach()``, ``coupling.reverse(...)``) does not type-check;
``module_list`` builds the same nn.ModuleList and says what is in it. Nothing changes at run time:
the object is an nn.ModuleList, registered, saved and moved like one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar, cast, overload

from torch import nn

M = TypeVar("M", bound=nn.Module)


class ModuleSeq(Protocol[M]):
    """What the models read and write of an nn.ModuleList whose items are all M."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[M]: ...

    @overload
    def __getitem__(self, index: int) -> M: ...

    @overload
    def __getitem__(self, index: slice) -> ModuleSeq[M]: ...

    def append(self, module: M) -> object: ...


def module_list(modules: Iterable[M] = ()) -> ModuleSeq[M]:
    """nn.ModuleList(modules), typed as holding M."""
    return cast("ModuleSeq[M]", nn.ModuleList(modules))
