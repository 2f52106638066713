"""The gate's reading of a paid call's body (agent/gate.py `parse_call`), before anything pays:
the token and nesting bounds are checked before json.loads sees the body, count only JSON's own
structure (never what sits inside strings, escaped quotes included), and a body within them
reads exactly as json.loads reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facemarket.agent.gate import MAX_JSON_DEPTH, MAX_JSON_TOKENS, parse_call
from facemarket.contracts.agent_protocol import Reason, Refused


def request(params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "find_face", "params": {"p": params}, "id": 1}).encode()


def refusal(body: bytes) -> str:
    with pytest.raises(Refused) as refused:
        parse_call(body)
    assert refused.value.reason == Reason.NOT_ONE_CALL
    return str(refused.value)


def nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_read_and_one_level_more_refused():
    outer = 2  # the request object and its params
    assert parse_call(request(nested(MAX_JSON_DEPTH - outer)))[2] == {"p": nested(MAX_JSON_DEPTH - outer)}
    assert "nested deeper" in refusal(request(nested(MAX_JSON_DEPTH - outer + 1)))


def test_brackets_inside_strings_are_not_nesting_even_after_escaped_quotes():
    text = '\\" [[[[ {{{{ \\\\' + "[" * 100 + '\\n"' + "{" * 100
    assert parse_call(request(text))[2] == {"p": text}
    assert parse_call(request([text] * 10))[2] == {"p": [text] * 10}


def test_tokens_over_the_limit_are_refused_before_parsing():
    assert parse_call(request([0] * (MAX_JSON_TOKENS - 40)))[0] == "find_face"
    assert "JSON tokens" in refusal(request([0] * MAX_JSON_TOKENS))
    assert "JSON tokens" in refusal(request('"' * MAX_JSON_TOKENS))  # escaped quotes count too: a bound
    assert "JSON tokens" in refusal(b"[" * 100_000 + b"]" * 100_000)  # beyond Python's own parser


def test_a_large_image_body_is_read():
    image = "QUJD" * 300_000  # 1.2 MB of base64: no structure at all
    assert parse_call(request(image))[2] == {"p": image}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=30))
def test_a_body_within_the_bounds_reads_as_json_loads_reads_it(params):
    body = request(params)
    method, request_id, read = parse_call(body)
    assert (method, request_id, read) == ("find_face", 1, json.loads(body)["params"])
