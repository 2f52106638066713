"""The hand-written request check (services/rpc_shape.py) gives jsonrpcserver's own verdicts, and the
services' dispatch answers as jsonrpcserver does with its jsonschema validator.

Generated values are shaped like requests and near-misses: `jsonrpc` other than "2.0", a method
that is not a string, params a scalar, an id that is a float, a boolean or an object, extra and
missing keys, batches, and any JSON value. A single request runs in its caller's task (no Task of
its own): a batch's entries still run concurrently, and a caller's deadline still cancels the method."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonrpcserver import Success, async_dispatch_to_serializable
from jsonrpcserver.main import default_validator

from facemarket.services.rpc_dispatch import dispatch_parsed
from facemarket.services.rpc_shape import check_shape

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
IDS = st.none() | st.integers() | st.floats() | st.text(max_size=4)
PARAMS = st.lists(JSON_VALUES, max_size=2) | st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=2)
VALID = st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "method": st.sampled_from(["echo", "no_such_method"]) | st.text(max_size=6)},
                              optional={"id": IDS, "params": PARAMS})
MISSING = object()  # a key removed


def changed(request: dict, key: str, value: Any) -> dict:
    return {k: v for k, v in {**request, key: value}.items() if v is not MISSING}


NEAR_MISSES = st.builds(
    changed, VALID, st.sampled_from(["jsonrpc", "method", "id", "params"]) | st.text(max_size=3),
    st.sampled_from([MISSING, "2", "1.0", "2.0 ", 2.0, 2, True, False, 1.5, {}, []]) | JSON_VALUES)
REQUEST_LIKE = VALID | NEAR_MISSES | st.dictionaries(
    st.sampled_from(["jsonrpc", "method", "id", "params"]) | st.text(max_size=3), IDS | PARAMS | JSON_VALUES, max_size=5)
REQUESTS = REQUEST_LIKE | st.lists(REQUEST_LIKE, max_size=3) | JSON_VALUES


def valid(check: Any, value: Any) -> bool:
    try:
        check(value)
    except Exception:  # any exception is "Invalid request" to jsonrpcserver
        return False
    return True


@settings(max_examples=1000, deadline=None)
@given(REQUESTS)
def test_the_check_gives_jsonschemas_verdict(value: Any) -> None:
    assert valid(check_shape, value) == valid(default_validator, value)


async def echo(context: object, *args: Any, **kwargs: Any) -> Success:
    return Success([list(args), kwargs])


METHODS = {"echo": echo}


def jsonrpcserver_answer(value: Any) -> Any:
    """jsonrpcserver's own dispatch of one parsed value, with its jsonschema validator."""
    return asyncio.run(async_dispatch_to_serializable(value, METHODS, context=None, deserializer=lambda parsed: parsed))


@settings(max_examples=300, deadline=None)
@given(REQUESTS)
def test_the_dispatch_answers_as_jsonrpcserver_does(value: Any) -> None:
    """An entry of a batch (a list itself, even) is answered as jsonrpcserver answers it alone."""
    expected = jsonrpcserver_answer(value)
    assert asyncio.run(dispatch_parsed([value], METHODS, None)) == (None if expected is None else [expected])
    if not isinstance(value, list):
        assert asyncio.run(dispatch_parsed(value, METHODS, None)) == expected


def test_a_batchs_entries_run_concurrently() -> None:
    """Each entry's method waits for the other's: the batch is answered only if both run at once."""
    barrier = asyncio.Barrier(2)

    async def meet(context: object) -> Success:
        await barrier.wait()
        return Success("met")

    async def run() -> Any:
        async with asyncio.timeout(10):  # a hang fails the test rather than the suite
            return await dispatch_parsed([{"jsonrpc": "2.0", "method": "meet", "id": n} for n in (1, 2)], {"meet": meet}, None)

    assert asyncio.run(run()) == [{"jsonrpc": "2.0", "result": "met", "id": n} for n in (1, 2)]


def test_a_callers_deadline_cancels_the_method_it_waits_on() -> None:
    """As the in-process agent's upstream_timeout does (agent/in_process_upstream.py): the method
    is cancelled, not left running after its caller gave up."""
    seen: list[str] = []

    async def forever(context: object) -> Success:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return Success(None)

    async def run() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await dispatch_parsed({"jsonrpc": "2.0", "method": "forever", "id": 1}, {"forever": forever}, None)

    asyncio.run(run())
    assert seen == ["cancelled"]
