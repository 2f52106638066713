"""Issue 17 item 10: docs/walkthrough.md, walked through the CLI alone on a fresh home — a
provider and a consumer from zero on the local chain, with the newcomer's mistakes and their
messages. The stack's chain, contracts and agent stand in for `chain up`, `contracts deploy` and
`agent run` (their own tests cover those); everything else is the page's commands as written."""

from __future__ import annotations

from facemarket.cli.accounts import dev_address
from tests.fixtures.cli import PHOTO


def test_the_walkthrough_from_zero(fm, market_stack, tmp_path):
    home = {"FACEMARKET_HOME": str(tmp_path / "home"), "FACEMARKET_NETWORK": "walk"}

    def run(*args: str, ok: bool = True):
        result = fm(*args, env=home)
        assert (result.code == 0) == ok, (args, result.out, result.err)
        return result

    run("network", "add", "walk", "--rpc", market_stack.chain.url, "--chain-id", "1337",
        "--deployment", str(market_stack.home / "deployments" / "1337.json"), "--use")
    # the token's owner: dev account 0 (it deployed the contracts); its key is public
    assert "key is public" in run("account", "import-dev", "0", "owner").out

    # provider: an account, ETH for gas, a namespace, the service naming its running agent
    assert "holds no ETH" in run("account", "create", "provider", "--light-kdf").out
    no_gas = run("provider", "create", "acme", "--account", "provider", ok=False)
    assert "needs ETH for gas: on the local chain `facemarket account fund" in no_gas.err
    run("account", "fund", "provider", "--eth", "1")
    run("provider", "create", "acme", "--account", "provider")
    run("service", "register", "acme/faces", "--endpoint", market_stack.agent_url, "--price", "0.01",
        "--agent", market_stack.addresses["agent"], "--account", "provider")

    # consumer: an account, ETH, tokens from the owner (a mistake first: minting as itself)
    run("account", "create", "me", "--light-kdf")
    run("account", "fund", "me", "--eth", "1")
    refused = run("token", "mint", "me", "1", "--account", "me", ok=False)
    assert f"not the token's owner {dev_address(0)}" in refused.err
    run("token", "mint", "me", "1", "--account", "owner")
    shown = run("service", "show", "acme/faces").out
    assert "algorithm=dlib_cnn: 1 FACE" in shown

    typo = run("call", "acme/faces", "find_fcae", "--image", str(PHOTO), "-y", "--account", "me",
               ok=False)
    assert "nothing was paid" in typo.err
    called = run("call", "acme/faces", "find_face", "--image", str(PHOTO), "-y", "--account", "me")
    assert "Served for 0.01 FACE" in called.err
    short = run("job", "open", "--service", "acme/faces", "--expires-in", "60", "-y",
                "--account", "me", ok=False)
    assert "too short" in short.err
    opened = run("job", "open", "--service", "acme/faces", "--expires-in", "10m", "-y",
                 "--account", "me", "--json").json
    early = run("job", "refund", str(opened[0]["id"]), "--account", "me", ok=False)
    assert "has not expired yet" in early.err
    assert run("account", "balance", "me", "--json").json["can_pay_gas"] is True

    # 5. paying by channel
    channel = run("channel", "open", "--service", "acme/faces", "--amount", "0.5", "--expires-in",
                  "7d", "-y", "--account", "me", "--json").json
    by_channel = run("call", "acme/faces", "find_face", "--image", str(PHOTO), "-y", "--account", "me")
    assert f"on channel {channel['id']} (voucher for 0.01 FACE in all, 0.49 FACE left)" in by_channel.err
    status = run("channel", "status", str(channel["id"]), "--account", "me", "--json").json
    assert (status["served"], status["room"]) == (10**6, 49 * 10**6)
    assert run("channel", "topup", str(channel["id"]), "--amount", "0.25", "-y", "--account", "me",
               "--json").json["room"] == 74 * 10**6
    too_early = run("channel", "reclaim", str(channel["id"]), "--account", "me", ok=False)
    assert "has not expired yet: it expires in" in too_early.err
    by_job = run("call", "acme/faces", "find_face", "--image", str(PHOTO), "--pay", "job", "-y",
                 "--account", "me")
    assert "job" in by_job.err and "on channel" not in by_job.err
