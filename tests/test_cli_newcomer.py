"""Issue 17, the newcomer's path by hand, through the CLI alone: a new account gets ETH for gas
from the local chain's dev accounts, dev accounts are imported by index (their keys are public),
`--account` takes a name, an address or a dev index everywhere, and the owner-only error names
the owner and the command that acts as it."""

from __future__ import annotations

from web3 import Web3

from facemarket.cli.accounts import dev_address
from facemarket.cli.errors import ConfigError
from facemarket.cli.eth_funding import fund_from_dev
from facemarket.cli.localstack import SERVICE
from tests.fixtures.cli import PHOTO


def test_a_new_account_is_told_it_cannot_pay_gas_and_is_funded_from_a_dev_account(fm):
    created = fm("account", "create", "newbie", "--light-kdf")
    assert created.code == 0, created.err
    assert "holds no ETH" in created.out and "facemarket account fund newbie --eth 1" in created.out
    before = fm("account", "balance", "newbie", "--json").json
    assert before["eth_wei"] == 0 and before["can_pay_gas"] is False
    assert "no: `facemarket account fund`" in fm("account", "balance", "newbie").out

    funded = fm("account", "fund", "newbie", "--eth", "0.5", "--json")
    assert funded.code == 0, funded.err
    assert funded.json["sent_wei"] == 5 * 10**17 and funded.json["from_dev"] == 9
    after = fm("account", "balance", "newbie", "--json").json
    assert after["eth_wei"] == 5 * 10**17 and after["can_pay_gas"] is True


def test_fund_refuses_bad_amounts_payers_and_accounts_with_a_reason(fm):
    for eth, says in (("-1", "out of range"), ("0", "out of range"), ("1e9", "out of range"),
                      ("abc", "not an amount of ETH"), ("nan", "out of range")):
        run = fm("account", "fund", "alice", "--eth", eth)
        assert run.code != 0 and says in run.err, (eth, run.err)
    assert "10 is not in the range" in fm("account", "fund", "alice", "--from-dev", "10").err
    unknown = fm("account", "fund", "nobody-here")
    assert unknown.code != 0 and "unknown account 'nobody-here'" in unknown.err


def test_funding_is_refused_off_the_local_chain_with_where_eth_comes_from(market_stack):
    w3 = Web3(Web3.HTTPProvider(market_stack.chain.url))
    try:
        fund_from_dev(w3, 11155111, dev_address(3), 10**18)
    except ConfigError as error:
        assert "not the local chain" in str(error) and "faucet" in error.hint
    else:
        raise AssertionError("funding on a public chain id was not refused")


def test_dev_accounts_import_by_index_and_index_means_the_same_in_account(fm):
    imported = fm("account", "import-dev", "7", "seven")
    assert imported.code == 0, imported.err
    assert dev_address(7) in imported.out and "key is public" in imported.out
    # --account 7, --account seven and --account 0x… are the same account
    for who in ("7", "seven", dev_address(7)):
        run = fm("token", "transfer", "alice", "0", "-y", "--account", who, "--json")
        assert run.code == 0, (who, run.err)
    assert fm("account", "balance", "7", "--json").json["address"] == dev_address(7)
    missing = fm("token", "transfer", "alice", "0", "-y", "--account", "8")
    assert missing.code != 0 and "dev account 8" in missing.err
    assert "facemarket account import-dev 8" in missing.err


def test_import_dev_refuses_bad_indexes_names_and_doubles(fm):
    assert "is not in the range" in fm("account", "import-dev", "10").err
    assert "is not a valid integer" in fm("account", "import-dev", "x").err
    assert "not digits alone" in fm("account", "import-dev", "6", "66").err
    assert fm("account", "import-dev", "6", "six").code == 0
    again = fm("account", "import-dev", "6", "six-again")
    assert again.code != 0 and "is stored already" in again.err


def test_minting_as_another_account_names_the_owner_and_the_command(fm):
    run = fm("token", "mint", "alice", "1", "--account", "alice")
    assert run.code != 0
    assert f"not the token's owner {dev_address(0)}" in run.err
    assert "facemarket account import-dev 0 owner" in run.err


def test_job_open_refuses_a_job_shorter_than_the_published_expiry_margin(fm, new_consumer):
    new_consumer("shorty", tokens="1")
    spec = fm("service", "show", SERVICE, "--json").json["spec"]
    margin = spec["info"]["x-payment"]["expiryMarginSeconds"]
    assert margin == 300
    for lifetime in ("60", "5m"):
        run = fm("job", "open", "--service", SERVICE, "--expires-in", lifetime, "-y",
                 "--account", "shorty")
        assert run.code == 1 and len(run.err.strip().splitlines()) == 1, run.err
        assert "is too short for the agent of demo/face-services" in run.err
        assert "within 5m of their expiry" in run.err and "nothing was paid" in run.err
        assert "--expires-in 600s" in run.err
    assert fm("job", "list", "--account", "shorty", "--json").json == []
    assert fm("job", "open", "--service", SERVICE, "--expires-in", "301", "-y",
              "--account", "shorty").code == 0


def test_call_says_served_and_claimed_later_not_paid(fm, new_consumer):
    new_consumer("worded", tokens="1")
    run = fm("call", SERVICE, "ping", "-y", "--account", "worded")
    assert run.code == 0, run.err
    assert "Served for 0.00000001 FACE by agent" in run.err and "Paid" not in run.err
    assert "claims the payment from the escrow later" in run.err


def test_an_early_refund_says_when_in_utc(fm, new_consumer):
    new_consumer("early", tokens="1")
    [job] = fm("job", "open", "--service", SERVICE, "-y", "--account", "early", "--json").json
    run = fm("job", "refund", str(job["id"]), "--account", "early")
    assert run.code == 1 and "has not expired yet (expires in " in run.err
    assert " UTC by the chain's clock" in run.err


def test_service_show_lists_every_price_including_parameter_prices(fm):
    shown = fm("service", "show", SERVICE)
    assert shown.code == 0, shown.err
    [line] = [row for row in shown.out.splitlines() if row.startswith("find_face")]
    assert "0.01 FACE" in line and "algorithm=dlib_cnn: 1 FACE" in line
    [method] = [m for m in fm("service", "show", SERVICE, "--json").json["methods"]
                if m["name"] == "find_face"]
    assert {"params": {"algorithm": "dlib_cnn"}, "price": 10**8} in method["price_when"]


def test_mistakes_are_refused_before_any_job_is_opened_or_spent(fm, new_consumer, tmp_path):
    new_consumer("clumsy", tokens="1")
    [job] = fm("job", "open", "--service", SERVICE, "-y", "--account", "clumsy", "--json").json
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(PHOTO.read_bytes()[:5000])
    mistakes = [
        (["find_fcae", "--image", str(PHOTO)], "demo/face-services has no method 'find_fcae'"),
        (["find_face", "--image", str(PHOTO), "--param", "algorithm=dlib_cnnn"],
         "algorithm='dlib_cnnn' is not one of haar_cascade, dlib_hog, dlib_cnn"),
        (["find_face", "--image", str(PHOTO), "--param", "algoritm=dlib_cnn"],
         "takes no param 'algoritm'"),
        (["find_face"], "needs 'image'"),
        (["find_face", "--image", str(text)], "is not an image the services read"),
        (["find_face", "--image", str(cut)], "is a truncated JPEG"),
    ]
    for args, says in mistakes:
        for job_args in ([], ["--job", str(job["id"])]):
            run = fm("call", SERVICE, *args, *job_args, "-y", "--account", "clumsy")
            assert run.code == 1 and says in run.err and "nothing was paid" in run.err, (args, run.err)
    listed = fm("job", "list", "--all", "--account", "clumsy", "--json").json
    assert [(j["id"], j["state"], j["prepaid"]) for j in listed] == [(job["id"], "FUNDED", True)]
    assert fm("token", "balance", "clumsy", "--json").json["balance_units"] == 10**8 - job["price"]


def test_a_request_the_services_refuse_before_any_work_is_not_charged(fm, new_consumer, tmp_path):
    new_consumer("fixer", tokens="1")
    [job] = fm("job", "open", "--service", SERVICE, "-y", "--account", "fixer", "--json").json
    junk = tmp_path / "junk.jpg"  # a JPEG's header and end marker: the client's check passes
    junk.write_bytes(b"\xff\xd8\xff\xe0" + b"junk" * 50 + b"\xff\xd9")
    run = fm("call", SERVICE, "find_face", "--image", str(junk), "--job", str(job["id"]), "-y",
             "--account", "fixer")
    assert run.code == 1, run.err
    assert "refused the request" in run.err and "nothing was charged" in run.err
    assert f"job {job['id']} is kept" in run.err
    [kept] = fm("job", "list", "--account", "fixer", "--json").json
    assert (kept["id"], kept["state"], kept["prepaid"]) == (job["id"], "FUNDED", True)
    again = fm("call", SERVICE, "find_face", "--image", str(PHOTO), "-y", "--account", "fixer",
               "--json")
    assert again.code == 0, again.err
    assert again.json["job"]["id"] == job["id"] and again.json["opened_job"] is False
