"""`start_eagerly`: run a coroutine's first step now, the rest as a task.

`asyncio.create_task(coro)` runs nothing of `coro` until the event loop's next
iteration, after every callback already queued. When one iteration holds the work
of many requests (a select that found 64 sockets readable), a write that one of them
starts goes out only after all of them have run. `start_eagerly` runs the coroutine
at once up to its first suspension (for a gRPC `call.write`, that is where the
message is handed to gRPC's core), then its task drives the rest.

This is Python 3.12's eager task (`asyncio.Task(..., eager_start=True)`, "Eager Task
Factory" in the asyncio docs), which it uses there; on 3.11 it does what 3.12 does:
the task is made first, and its first step runs at once *as that task* (it is
`current_task()`, so a timeout or cancellation entered there belongs to it) in the
task's own copy of the caller's context. The task then takes over the suspended
coroutine: what the first step waits on is what the task waits on, so results,
exceptions and cancellation (also a cancel before the task's next step) behave as
for any task.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


def start_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run `coro` until it first suspends, as a task; return that task. Must be called
    with a running loop (from a task or a callback)."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    started = _Started(coro)
    context = contextvars.copy_context()
    task: asyncio.Task[T] = loop.create_task(started, context=context)
    caller = asyncio.current_task(loop)
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(started.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task


class _Started(Coroutine[Any, Any, Any]):
    """`coro` with its first step taken early: the task's first `send` gets what that
    step yielded (or its outcome); after that every call goes to `coro` itself."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._first: tuple[bool, Any] | None = None  # (yielded, the value or the exception)

    def first_step(self) -> None:
        try:
            self._first = (True, self._coro.send(None))
        except BaseException as exc:  # StopIteration too: the task reads it as the outcome
            self._first = (False, exc)

    def send(self, value: Any) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        yielded, what = first
        if yielded:
            return what  # a future (its blocking mark still set) or None: as if yielded now
        raise what

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        first, self._first = self._first, None
        if first is not None:
            yielded, what = first
            if not yielded:
                raise what  # it had already finished
            if asyncio.isfuture(what):
                what.cancel()  # cancelled before the task's next step: as Task.cancel does
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("driven by its task only")
