"""Every command's --json output parses (and carries what a script needs); keys never show."""

from __future__ import annotations

import json

from tests.fixtures.cli import PHOTO


def ok(run):
    assert run.code == 0, run.err
    return run.json


def test_network_and_account_commands_print_json(fm, tmp_path):
    home = {"FACEMARKET_HOME": str(tmp_path / "home")}
    assert ok(fm("network", "add", "other", "--rpc", "http://127.0.0.1:1", "--chain-id", "5",
                 "--json", env=home))["chain_id"] == 5
    assert ok(fm("network", "use", "other", "--json", env=home))["name"] == "other"
    networks = ok(fm("network", "list", "--json", env=home))
    assert [(n["name"], n["current"]) for n in networks] == [("local", False), ("other", True)]

    created = ok(fm("account", "create", "erin", "--light-kdf", "--json", env=home))
    key_file = tmp_path / "key"
    key_file.write_text("0x" + "11" * 32)
    imported = ok(fm("account", "import", "frank", "--key-file", str(key_file), "--light-kdf",
                     "--json", env=home))
    keystore = tmp_path / "geth.json"
    keystore.write_text((tmp_path / "home" / "keystores" / "frank.json").read_text())
    assert ok(fm("account", "import", "frank-copy", "--keystore", str(keystore), "--json",
                 env={**home, "FACEMARKET_HOME": str(tmp_path / "home2")}))["address"] == \
        imported["address"]
    listed = ok(fm("account", "list", "--json", env=home))
    assert {a["name"] for a in listed} == {"erin", "frank"}
    assert ok(fm("account", "use", "frank", "--json", env=home))["current"] is True
    shown = ok(fm("account", "show", "--json", env=home))
    assert shown["address"] == imported["address"] and created["address"] != shown["address"]
    everything = "".join(fm(*c, "--json", env=home).out for c in
                         (("account", "list"), ("account", "show"), ("account", "show", "erin")))
    assert "11" * 32 not in everything


def test_chain_commands_print_json(fm, new_consumer, market_stack):
    new_consumer("gina", tokens="2")
    assert ok(fm("account", "balance", "gina", "--json"))["token_units"] == 2 * 10**8
    assert ok(fm("token", "balance", "gina", "--json"))["balance"] == "2 FACE"
    assert ok(fm("token", "mint", "gina", "1", "--account", "owner", "--json"))["balance_units"] \
        == 3 * 10**8
    moved = ok(fm("token", "transfer", "alice", "0.5", "-y", "--account", "gina", "--json"))
    assert moved["amount_units"] == 5 * 10**7 and moved["tx"].startswith("0x")

    services = ok(fm("service", "list", "--json"))
    assert "demo/face-services" in [s["service"] for s in services]  # other tests register theirs
    shown = ok(fm("service", "show", "demo/face-services", "--json"))
    assert shown["spec_matches_registry"] is True
    prices = {m["name"]: m["price"] for m in shown["methods"]}
    assert prices["face_identity"] > prices["ping"]

    created = ok(fm("job", "create", "--service", "demo/face-services", "--account", "gina", "--json"))
    assert created["state"] == "CREATED"
    assert ok(fm("job", "fund", str(created["id"]), "-y", "--account", "gina", "--json"))["state"] \
        == "FUNDED"
    assert ok(fm("job", "status", str(created["id"]), "--json"))["state"] == "FUNDED"
    opened = ok(fm("job", "open", "--service", "demo/face-services", "--method", "face_identity",
                   "--count", "3", "-y", "--account", "gina", "--json"))
    assert len(opened) == 3 and {j["price"] for j in opened} == {prices["face_identity"]}
    listed = ok(fm("job", "list", "--account", "gina", "--json"))
    assert len(listed) == 4 and all(j["prepaid"] for j in listed)
    call = ok(fm("call", "demo/face-services", "face_identity", "--image", str(PHOTO), "-y",
                 "--account", "gina", "--json"))
    assert len(call["result"]["faces"][0]["vector"]) == 128
    assert call["job"]["id"] in {j["id"] for j in opened}


def test_provider_commands_print_json(fm, new_consumer):
    new_consumer("hank")
    assert ok(fm("provider", "create", "hank", "--account", "hank", "--json"))["owner"] \
        == ok(fm("account", "show", "hank", "--json"))["address"]
    registered = ok(fm("service", "register", "hank/echo", "--endpoint", "http://127.0.0.1:9/",
                       "--price", "0.5", "--spec-hash", "0x" + "ab" * 32, "--account", "hank",
                       "--json"))
    assert registered["enabled"] is True and registered["price"] == 5 * 10**7
    updated = ok(fm("service", "update", "hank/echo", "--price", "0.25", "--account", "hank",
                    "--json"))
    assert updated["price"] == 25 * 10**6 and updated["spec_hash"] == "0x" + "ab" * 32
    mine = ok(fm("service", "list", "--provider", "hank", "--json"))
    assert [s["service"] for s in mine] == ["hank/echo"]
    assert [s["service"] for s in ok(fm("provider", "show", "hank", "--json"))["services"]] \
        == ["hank/echo"]
    shown = ok(fm("service", "show", "hank/echo", "--json"))
    assert shown["spec"] is None and "cannot read the spec" in shown["spec_error"]
    assert ok(fm("service", "disable", "hank/echo", "--account", "hank", "--json"))["enabled"] \
        is False
    assert "hank/echo" not in [s["service"] for s in ok(fm("service", "list", "--json"))]
    assert "hank/echo" in [s["service"] for s in ok(fm("service", "list", "--all", "--json"))]


def test_errors_are_json_too(fm):
    run = fm("service", "show", "no-such-service", "--json")
    assert run.code == 1
    error = json.loads(run.out)["error"]
    assert error["type"] == "ServiceUnknown" and "service list" in error["hint"]
