"""`start_eagerly`: the first step runs in the caller, the rest as a task, with a
task's results, exceptions and cancellation (Python 3.12's eager tasks)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from kvcore.rpc.eager import start_eagerly


async def test_the_first_step_runs_before_start_eagerly_returns() -> None:
    steps: list[str] = []
    gate = asyncio.Event()

    async def work() -> int:
        steps.append("first")
        await gate.wait()
        steps.append("second")
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.001)  # a timer
        return 7

    fut = start_eagerly(work())
    assert steps == ["first"] and not fut.done()
    await asyncio.sleep(0.01)
    assert steps == ["first"]
    gate.set()
    assert await fut == 7
    assert steps == ["first", "second"]


async def test_a_coroutine_that_never_waits_has_run_at_once() -> None:
    ran: list[str] = []

    async def quick() -> str:
        ran.append("quick")
        return "done"

    async def broken() -> None:
        ran.append("broken")
        raise KeyError("x")

    ok, failed = start_eagerly(quick()), start_eagerly(broken())
    assert ran == ["quick", "broken"]  # both ran to the end before start_eagerly returned
    assert await ok == "done"
    with pytest.raises(KeyError):
        await failed


async def test_the_first_step_runs_as_the_new_task() -> None:
    caller = asyncio.current_task()
    seen: list[asyncio.Task[object] | None] = []

    async def work() -> None:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(0.01):  # belongs to this task, not to the caller
            await asyncio.sleep(10)

    task = start_eagerly(work())
    assert seen == [task] and asyncio.current_task() is caller
    with pytest.raises(TimeoutError):
        await task
    assert not caller.cancelled() and caller.cancelling() == 0  # type: ignore[union-attr]


async def test_exceptions_reach_the_coroutine_and_then_the_caller() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []

    async def work() -> int:
        try:
            return await fut
        except ValueError:
            seen.append("caught")
            raise RuntimeError("wrapped") from None

    task = start_eagerly(work())
    fut.set_exception(ValueError("boom"))
    with pytest.raises(RuntimeError, match="wrapped"):
        await task
    assert seen == ["caught"]


@pytest.mark.parametrize("stepped", [True, False], ids=["after-a-step", "same-iteration"])
async def test_cancelling_reaches_the_coroutine_where_it_waits(stepped: bool) -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    cleaned: list[bool] = []

    async def work() -> None:
        try:
            await never
        finally:
            cleaned.append(never.cancelled())

    task = start_eagerly(work())
    if stepped:
        await asyncio.sleep(0)  # else: before the task's next step, after the eager one
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]  # the awaited future was cancelled, as Task.cancel does


async def test_a_cancel_after_the_awaited_future_is_done_is_still_delivered() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    got: list[str] = []

    async def work() -> None:
        try:
            await fut
            got.append("resumed")
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            got.append("cancelled")
            raise

    task = start_eagerly(work())
    await asyncio.sleep(0)
    fut.set_result(1)  # done, but the task has not run since
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Thrown in where it waited, as a task would: not swallowed by the done future.
    assert got == ["cancelled"]


async def test_the_first_step_sets_context_variables_in_the_tasks_context_not_the_callers() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")
    seen: list[str] = []

    async def work() -> None:
        var.set("task")
        await asyncio.sleep(0)
        seen.append(var.get())

    await start_eagerly(work())
    assert var.get() == "caller"  # as with create_task: the caller's context is untouched
    assert seen == ["task"]  # the rest of the coroutine kept the first step's context
