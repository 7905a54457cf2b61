"""`start_eagerly`: run a coroutine's first step now, the rest as a task.

`asyncio.create_task(coro)` runs nothing of `coro` until the event loop's next
iteration, after every callback already queued. When one iteration holds the work
of many requests (a select that found 64 sockets readable), a write that one of them
starts goes out only after all of them have run. `start_eagerly` runs the coroutine
at once up to its first suspension (for a gRPC `call.write`, that is where the
message is handed to gRPC's core), then lets a task drive the rest.

This is Python 3.12's eager task (`asyncio.eager_task_factory`, "Eager Task Factory"
in the asyncio docs) for one coroutine, on 3.11, with a task's semantics for results,
exceptions, cancellation and context variables: the first step runs in a copy of the
caller's context, which the task then keeps. Cancelling the returned future cancels
what the coroutine awaits, as `Task.cancel` does, so the coroutine sees
`CancelledError` where it waits and its `finally` clauses run.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def start_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Step `coro` until it first suspends; return a future of its result.

    If `coro` finishes in that first step, the future is already done (with its value
    or its exception); otherwise a task awaits what the coroutine awaits and resumes
    it, step by step, until it finishes. Must be called with a running loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the task's own, as create_task would make it
    try:
        awaited = context.run(coro.send, None)
    except StopIteration as stop:
        done: asyncio.Future[T] = loop.create_future()
        done.set_result(stop.value)
        return done
    except BaseException as exc:
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_drive(coro, awaited), context=context)


async def _drive(coro: Coroutine[Any, Any, T], awaited: Any) -> T:
    """Resume `coro` each time what it awaits (`awaited`: a future, or None for a bare
    yield) is done. The task waits on `awaited` itself, so cancelling the task cancels
    that future (as `Task.cancel` does); what the future ended with is read by `coro`
    when it is resumed, and anything else thrown into the task (a cancellation that
    came after the future was done) is thrown into `coro` where it waits."""
    while True:
        thrown: BaseException | None = None
        try:
            if awaited is None:
                await asyncio.sleep(0)
            elif not asyncio.isfuture(awaited):
                thrown = RuntimeError(f"start_eagerly: bad yield {awaited!r}")  # as Task says
            else:
                # What a task does with a future its coroutine yields: take the
                # "blocking" mark off, or awaiting it again raises RuntimeError.
                awaited._asyncio_future_blocking = False
                await awaited
        except BaseException as exc:
            if not _ended_with(awaited, exc):
                thrown = exc
        try:
            awaited = coro.send(None) if thrown is None else coro.throw(thrown)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def _ended_with(awaited: Any, exc: BaseException) -> bool:
    """Whether `exc` is how the future `awaited` itself ended."""
    if not asyncio.isfuture(awaited) or not awaited.done():
        return False
    if awaited.cancelled():
        return isinstance(exc, asyncio.CancelledError)
    return awaited.exception() is exc
