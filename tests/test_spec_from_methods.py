"""The published spec is generated from what the services dispatch (services/openrpc_methods.py)
and is a valid OpenRPC document by the official meta-schema (`@open-rpc/meta-schema`, pinned in
ganache/package.json with `@json-schema-tools/meta-schema`, the JSON Schema it refers to)."""

from __future__ import annotations

import inspect
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from facemarket.agent.config import AgentConfig
from facemarket.agent.spec import build_spec, spec_bytes
from facemarket.contracts.node_tools import GANACHE_DIR
from facemarket.services.detectors import DETECTORS
from facemarket.services.landmark_models import MODELS
from facemarket.services.methods import method_table
from tests.fixtures.agent import http

ENUMS = {"algorithm": list(DETECTORS), "model": list(MODELS)}  # the services' own tables


def default_spec() -> dict:
    return build_spec(AgentConfig(deployment=Path("d.json"), keystore=Path("k.json")))


def node_export(expression: str) -> dict:
    """A JSON value exported by a pinned npm package, read with node from ganache/."""
    script = f"process.stdout.write(JSON.stringify({expression}))"
    return json.loads(subprocess.run(["node", "-e", script], cwd=GANACHE_DIR, check=True, capture_output=True).stdout)


def openrpc_validator() -> jsonschema.Draft7Validator:
    """The OpenRPC meta-schema, with the JSON Schema meta-schema it refers to by URL served locally."""
    json_schema = node_export("require('@json-schema-tools/meta-schema').default")
    resource = Resource.from_contents(json_schema, default_specification=DRAFT7)
    registry = Registry().with_resources([("https://meta.json-schema.tools", resource),
                                          ("https://meta.json-schema.tools/", resource)])
    return jsonschema.Draft7Validator(node_export("require('@open-rpc/meta-schema').openrpcDocument"), registry=registry)


def test_every_dispatched_method_is_in_the_spec_with_its_params_enums_and_defaults() -> None:
    table = method_table()
    methods = {method["name"]: method for method in default_spec()["methods"]}
    assert list(methods) == list(table)
    for name, function in table.items():
        signature = list(inspect.signature(function).parameters.values())[1:]  # after `context`
        params = methods[name]["params"]
        assert [p["name"] for p in params] == [p.name for p in signature], name
        for param, python in zip(params, signature):
            required = python.default is inspect.Parameter.empty
            assert param.get("required", False) is required, (name, param)
            expected_default = None if required else python.default
            assert param["schema"].get("default") == expected_default, (name, param)
            if python.name in ENUMS:
                assert param["schema"]["enum"] == ENUMS[python.name], (name, param)


def test_the_defaults_the_hand_written_spec_lacked_are_published() -> None:
    params = {(m["name"], p["name"]): p["schema"] for m in default_spec()["methods"] for p in m["params"]}
    assert params["align_face", "padding"]["default"] == 0.25
    assert (params["recall", "threshold"]["default"], params["recall", "top"]["default"]) == (0.6, 1)


def test_the_meta_schema_refuses_a_broken_document() -> None:
    """The validation below can fail: a method without a name is not OpenRPC."""
    validator, broken = openrpc_validator(), default_spec()
    validator.validate(broken)  # whole, it is valid
    del broken["methods"][0]["name"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_the_served_spec_is_canonical_and_valid_openrpc(agent_factory, counting_upstream) -> None:
    agent = agent_factory(counting_upstream.url, prices={"find_face:algorithm=dlib_cnn": 50_000})
    served = http("GET", agent.url + "spec").body
    document = json.loads(served)
    assert served == spec_bytes(document)  # the bytes whose keccak is registered
    assert any("x-price-when" in method for method in document["methods"])
    openrpc_validator().validate(document)
