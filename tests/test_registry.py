"""ServiceRegistry on a real Ganache: register, update, disable, list; every revert."""

from __future__ import annotations

from tests.escrow_support import decode_revert

SPEC = bytes.fromhex("ab" * 32)
OTHER_SPEC = bytes.fromhex("cd" * 32)


def service(p, agent, name):
    return tuple(p.contracts.registry.functions.getService(agent.address, name).call())


def test_register_update_disable_and_list(parties):
    p = parties
    registry = p.contracts.registry
    receipt = p.send(p.agent, registry.functions.register("face-detect", "http://127.0.0.1:7000", 10**6, SPEC))
    assert p.events(receipt, "ServiceRegistered", registry) == [dict(
        agent=p.agent.address, name="face-detect", endpoint="http://127.0.0.1:7000", price=10**6, specHash=SPEC)]
    assert service(p, p.agent, "face-detect") == (p.agent.address, "face-detect", "http://127.0.0.1:7000", 10**6, SPEC, True)
    p.send(p.stranger, registry.functions.register("face-detect", "http://127.0.0.2:7000", 5, SPEC))
    p.send(p.agent, registry.functions.register("face-identity", "http://127.0.0.1:7001", 3 * 10**6, SPEC))
    assert registry.functions.servicesOf(p.agent.address).call() == ["face-detect", "face-identity"]
    assert registry.functions.agentsFor("face-detect").call() == [p.agent.address, p.stranger.address]
    assert registry.functions.agentsFor("nothing").call() == []

    receipt = p.send(p.agent, registry.functions.update("face-detect", "https://agent.example/rpc", 2 * 10**6, OTHER_SPEC))
    assert p.events(receipt, "ServiceUpdated", registry)[0]["price"] == 2 * 10**6
    assert service(p, p.agent, "face-detect")[2:] == ("https://agent.example/rpc", 2 * 10**6, OTHER_SPEC, True)

    receipt = p.send(p.agent, registry.functions.disable("face-detect"))
    assert p.events(receipt, "ServiceDisabled", registry) == [dict(agent=p.agent.address, name="face-detect")]
    assert service(p, p.agent, "face-detect")[5] is False
    assert registry.functions.servicesOf(p.agent.address).call() == ["face-detect", "face-identity"]

    # registering again enables it, without listing it twice
    p.send(p.agent, registry.functions.register("face-detect", "http://127.0.0.1:7002", 7, SPEC))
    assert service(p, p.agent, "face-detect")[2:] == ("http://127.0.0.1:7002", 7, SPEC, True)
    assert registry.functions.servicesOf(p.agent.address).call() == ["face-detect", "face-identity"]
    assert registry.functions.agentsFor("face-detect").call() == [p.agent.address, p.stranger.address]


def test_registry_reverts(parties):
    p = parties
    fns = p.contracts.registry.functions
    a = p.agent.address
    assert p.reverts(p.agent, fns.register("", "http://x", 1, SPEC)) == ("EmptyServiceName", ())
    assert p.reverts(p.agent, fns.register("s", "", 1, SPEC)) == ("EmptyEndpoint", ())
    assert p.reverts(p.agent, fns.update("s", "http://x", 1, SPEC)) == ("ServiceNotRegistered", (a, "s"))
    assert p.reverts(p.agent, fns.disable("s")) == ("ServiceNotRegistered", (a, "s"))
    p.send(p.agent, fns.register("s", "http://x", 1, SPEC))
    assert p.reverts(p.agent, fns.register("s", "http://y", 2, SPEC)) == ("ServiceAlreadyRegistered", (a, "s"))
    assert p.reverts(p.agent, fns.update("s", "", 1, SPEC)) == ("EmptyEndpoint", ())
    # only the agent itself changes its services: a stranger's update names the stranger's (missing) service
    assert p.reverts(p.stranger, fns.update("s", "http://evil", 0, SPEC)) == ("ServiceNotRegistered", (p.stranger.address, "s"))
    p.send(p.agent, fns.disable("s"))
    assert p.reverts(p.agent, fns.disable("s")) == ("ServiceNotEnabled", (a, "s"))
    assert p.reverts(p.agent, fns.update("s", "http://x", 1, SPEC)) == ("ServiceNotEnabled", (a, "s"))
    try:
        fns.getService(p.stranger.address, "s").call()
    except Exception as error:  # ContractCustomError from eth_call
        assert decode_revert(error) == ("ServiceNotRegistered", (p.stranger.address, "s"))
    else:
        raise AssertionError("getService of a missing service did not revert")
