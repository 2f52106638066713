"""ServiceRegistry on a real Ganache: provider namespaces held by their owner; services under
them registered, updated, disabled and listed (paged) by that owner only; every revert."""

from __future__ import annotations

from tests.escrow_support import decode_revert

SPEC = bytes.fromhex("ab" * 32)
OTHER_SPEC = bytes.fromhex("cd" * 32)


def service(p, provider, name):
    return tuple(p.contracts.registry.functions.getService(provider, name).call())


def test_provider_owner_registers_updates_disables_and_lists(parties):
    p = parties
    registry, fns = p.contracts.registry, p.contracts.registry.functions
    receipt = p.send(p.agent, fns.createProvider("acme"))
    assert p.events(receipt, "ProviderCreated", registry) == [dict(provider="acme", owner=p.agent.address)]
    assert fns.ownerOf("acme").call() == p.agent.address
    assert fns.ownerOf("nobody").call() == "0x" + "00" * 20

    receipt = p.send(p.agent, fns.register("acme", "face-detect", p.agent.address, "http://127.0.0.1:7000", 10**6, SPEC))
    assert p.events(receipt, "ServiceRegistered", registry) == [dict(
        provider="acme", name="face-detect", agent=p.agent.address, endpoint="http://127.0.0.1:7000",
        price=10**6, specHash=SPEC)]
    assert service(p, "acme", "face-detect") == (
        p.agent.address, "acme", "face-detect", "http://127.0.0.1:7000", 10**6, SPEC, True)
    # the owner may name another key as the service's agent (the one that gets paid)
    p.send(p.agent, fns.register("acme", "face-identity", p.other_consumer.address, "http://127.0.0.1:7001", 3, SPEC))
    assert service(p, "acme", "face-identity")[0] == p.other_consumer.address
    assert fns.serviceCount("acme").call() == 2
    assert fns.servicesOf("acme", 0, 10).call() == ["face-detect", "face-identity"]

    receipt = p.send(p.agent, fns.update("acme", "face-detect", p.agent.address, "https://agent.example/rpc", 2 * 10**6, OTHER_SPEC))
    assert p.events(receipt, "ServiceUpdated", registry)[0]["price"] == 2 * 10**6
    assert service(p, "acme", "face-detect")[3:] == ("https://agent.example/rpc", 2 * 10**6, OTHER_SPEC, True)

    receipt = p.send(p.agent, fns.disable("acme", "face-detect"))
    assert p.events(receipt, "ServiceDisabled", registry) == [dict(provider="acme", name="face-detect")]
    assert service(p, "acme", "face-detect")[6] is False
    # registering again enables it, without listing it twice
    p.send(p.agent, fns.register("acme", "face-detect", p.agent.address, "http://127.0.0.1:7002", 7, SPEC))
    assert service(p, "acme", "face-detect")[3:] == ("http://127.0.0.1:7002", 7, SPEC, True)
    assert fns.servicesOf("acme", 0, 10).call() == ["face-detect", "face-identity"]


def test_only_the_owner_changes_a_providers_services(parties):
    """A squatter cannot take the name, add a service under it, or change or disable one."""
    p = parties
    fns = p.contracts.registry.functions
    p.send(p.agent, fns.createProvider("honest"))
    p.send(p.agent, fns.register("honest", "face-services", p.agent.address, "http://good", 1, SPEC))
    assert p.reverts(p.stranger, fns.createProvider("honest")) == ("ProviderTaken", ("honest", p.agent.address))
    not_owner = ("NotProviderOwner", ("honest", p.agent.address, p.stranger.address))
    assert p.reverts(p.stranger, fns.register("honest", "other", p.stranger.address, "http://evil", 0, SPEC)) == not_owner
    assert p.reverts(p.stranger, fns.update("honest", "face-services", p.stranger.address, "http://evil", 0, SPEC)) == not_owner
    assert p.reverts(p.stranger, fns.disable("honest", "face-services")) == not_owner
    assert p.reverts(p.stranger, fns.transferProvider("honest", p.stranger.address)) == not_owner
    assert service(p, "honest", "face-services") == (p.agent.address, "honest", "face-services", "http://good", 1, SPEC, True)


def test_transfer_hands_over_the_namespace(parties):
    p = parties
    fns = p.contracts.registry.functions
    p.send(p.agent, fns.createProvider("sold"))
    p.send(p.agent, fns.register("sold", "s", p.agent.address, "http://old", 1, SPEC))
    receipt = p.send(p.agent, fns.transferProvider("sold", p.other_consumer.address))
    assert p.events(receipt, "ProviderTransferred", p.contracts.registry) == [dict(
        provider="sold", previousOwner=p.agent.address, newOwner=p.other_consumer.address)]
    assert fns.ownerOf("sold").call() == p.other_consumer.address
    assert p.reverts(p.agent, fns.disable("sold", "s")) == (
        "NotProviderOwner", ("sold", p.other_consumer.address, p.agent.address))
    p.send(p.other_consumer, fns.update("sold", "s", p.other_consumer.address, "http://new", 2, SPEC))
    assert service(p, "sold", "s")[0] == p.other_consumer.address
    assert p.reverts(p.other_consumer, fns.transferProvider("sold", "0x" + "00" * 20)) == ("ZeroAddress", ())


def test_listing_is_paged(parties):
    p = parties
    fns = p.contracts.registry.functions
    p.send(p.agent, fns.createProvider("many"))
    for i in range(5):
        p.send(p.agent, fns.register("many", f"s{i}", p.agent.address, "http://x", 1, SPEC))
    assert fns.servicesOf("many", 1, 2).call() == ["s1", "s2"]
    assert fns.servicesOf("many", 4, 100).call() == ["s4"]
    assert fns.servicesOf("many", 5, 1).call() == []
    assert fns.servicesOf("many", 0, 10**6).call() == [f"s{i}" for i in range(5)]  # capped at MAX_PAGE
    assert fns.MAX_PAGE().call() == 100


def test_registry_reverts(parties):
    p = parties
    fns = p.contracts.registry.functions
    a = p.agent.address
    for bad in ("", "Face", "a/b", "x" * 65, "fâce", "a b"):
        assert p.reverts(p.agent, fns.createProvider(bad)) == ("InvalidName", (bad,))
    assert p.reverts(p.agent, fns.register("ghost", "s", a, "http://x", 1, SPEC)) == ("ProviderNotFound", ("ghost",))
    p.send(p.agent, fns.createProvider("rev"))
    assert p.reverts(p.agent, fns.register("rev", "S/x", a, "http://x", 1, SPEC)) == ("InvalidName", ("S/x",))
    assert p.reverts(p.agent, fns.register("rev", "s", a, "", 1, SPEC)) == ("EmptyEndpoint", ())
    assert p.reverts(p.agent, fns.register("rev", "s", "0x" + "00" * 20, "http://x", 1, SPEC)) == ("ZeroAddress", ())
    assert p.reverts(p.agent, fns.update("rev", "s", a, "http://x", 1, SPEC)) == ("ServiceNotRegistered", ("rev", "s"))
    assert p.reverts(p.agent, fns.disable("rev", "s")) == ("ServiceNotRegistered", ("rev", "s"))
    p.send(p.agent, fns.register("rev", "s", a, "http://x", 1, SPEC))
    assert p.reverts(p.agent, fns.register("rev", "s", a, "http://y", 2, SPEC)) == ("ServiceAlreadyRegistered", ("rev", "s"))
    assert p.reverts(p.agent, fns.update("rev", "s", a, "", 1, SPEC)) == ("EmptyEndpoint", ())
    p.send(p.agent, fns.disable("rev", "s"))
    assert p.reverts(p.agent, fns.disable("rev", "s")) == ("ServiceNotEnabled", ("rev", "s"))
    assert p.reverts(p.agent, fns.update("rev", "s", a, "http://x", 1, SPEC)) == ("ServiceNotEnabled", ("rev", "s"))
    try:
        fns.getService("rev", "missing").call()
    except Exception as error:  # ContractCustomError from eth_call
        assert decode_revert(error) == ("ServiceNotRegistered", ("rev", "missing"))
    else:
        raise AssertionError("getService of a missing service did not revert")
