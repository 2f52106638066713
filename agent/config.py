"""The agent's configuration: one TOML file, each key overridable by `FACEMARKET_AGENT_<KEY>`.

Why one flat table: an operator (or a container orchestrator) overrides any key with one
environment variable without knowing which section it lives in. Per-method prices are the
only nested table (`[prices]`). A wrong or missing value stops start-up with one line that
names the key (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from facemarket.agent.param_prices import highest

from facemarket.services.auth import SecretError, read_secret
from facemarket.services.home import facemarket_home
from facemarket.services.keystore_password import read_password

ENV_PREFIX = "FACEMARKET_AGENT_"
PASSWORD_ENV = ENV_PREFIX + "PASSWORD"


class ConfigError(ValueError):
    """A config value is wrong or missing; the message names the key and what to do."""


@dataclass(frozen=True)
class AgentConfig:
    """Every setting of the agent daemon (see `TEMPLATE` for what each one means)."""

    deployment: Path
    keystore: Path
    password_file: Path | None = None
    services_secret_file: Path | None = None
    chain_url: str = "http://127.0.0.1:8545"
    upstream_url: str = "http://127.0.0.1:8001/"
    provider: str = ""
    service_name: str = "face-services"
    endpoint: str = "http://127.0.0.1:8000/"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    price: int = 1_000_000
    prices: dict[str, int] = field(default_factory=dict)
    expiry_margin: int = 300
    confirmations: int = 0
    follow_interval: float = 1.0
    log_range: int = 2000
    lease_seconds: float = 90.0
    claim_interval: float = 30.0
    claim_batch_size: int = 50
    claim_max_attempts: int = 5
    claim_receipt_timeout: float = 120.0
    retry_window: float = 10.0
    ledger: Path = field(default_factory=lambda: facemarket_home() / "agent" / "ledger.sqlite")
    upstream_timeout: float = 60.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_answer_bytes: int = 16 * 1024 * 1024
    max_concurrency: int = 64
    body_timeout: float = 10.0
    idle_timeout: float = 75.0
    big_body_rate: int = 16 * 1024 * 1024
    spec_file: Path | None = None
    log_level: str = "INFO"

    def price_of(self, method: str, params: Any = None, defaults: Mapping[str, Any] | None = None) -> int:
        """The price of one call: the method's own price, else the default; raised by any
        matching parameter price ("find_face:algorithm=dlib_cnn": the CNN detector costs about
        a hundred times the CPU of HOG, and it is one parameter of one method). `defaults` are
        the method's parameter defaults (from the spec): an absent parameter costs its default's
        price. How values match: agent/param_prices.py."""
        variants = [(name, value, price) for (name, value), price in self.parameter_prices(method).items()]
        return highest(self.prices.get(method, self.price), variants, params, defaults)

    def parameter_prices(self, method: str) -> dict[tuple[str, str], int]:
        """{(param, value): price} of the "method:param=value" entries of [prices]."""
        prefix = method + ":"
        return {tuple(key[len(prefix):].split("=", 1)): price  # type: ignore[misc]
                for key, price in self.prices.items() if key.startswith(prefix)}

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
_REQUIRED = [f.name for f in dataclasses.fields(AgentConfig)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
_POSITIVE = {"listen_port", "log_range", "lease_seconds", "claim_interval", "claim_batch_size",
             "claim_max_attempts", "claim_receipt_timeout", "upstream_timeout", "max_body_bytes",
             "max_answer_bytes", "max_concurrency", "follow_interval", "body_timeout", "idle_timeout",
             "big_body_rate"}
_NON_NEGATIVE = {"price", "expiry_margin", "confirmations", "retry_window"}


def _convert(key: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or say which key is wrong."""
    kind = _FIELDS[key].type
    try:
        if key == "prices":
            if isinstance(value, str):  # env: "find_face=10,ping=1"
                value = dict(item.rsplit("=", 1) for item in value.split(",") if item.strip())
            if not isinstance(value, dict):
                raise ValueError("expected a table of method = price")
            prices = {str(m).strip(): int(p) for m, p in value.items()}
            if any(p < 0 for p in prices.values()):
                raise ValueError("prices cannot be negative")
            odd = [m for m in prices if ":" in m and "=" not in m.split(":", 1)[1]]
            if odd:
                raise ValueError(f"{odd[0]!r}: a parameter price is written \"method:param=value\"")
            return prices
        if "Path" in kind:
            return Path(str(value)).expanduser() if str(value) else None
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            value = int(value)
        elif kind == "float":
            value = float(value)
        elif kind == "str":
            value = str(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}: {value!r} is not valid ({error})") from None
    if key in _POSITIVE and value <= 0:
        raise ConfigError(f"{key}: must be greater than 0, got {value}")
    if key in _NON_NEGATIVE and value < 0:
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
    config = AgentConfig(**converted)
    if config.lease_seconds <= config.upstream_timeout:
        raise ConfigError(f"lease_seconds: {config.lease_seconds:g} must exceed upstream_timeout "
                          f"({config.upstream_timeout:g}), or a slow call could lose its job to a retry")
    return config


TEMPLATE = '''\
# facemarket agent configuration (written by `facemarket agent init`).
# Every key can be overridden by an environment variable FACEMARKET_AGENT_<KEY>,
# e.g. FACEMARKET_AGENT_CHAIN_URL=http://10.0.0.5:8545. The keystore password can come from
# FACEMARKET_AGENT_PASSWORD when password_file is not set (a named file comes first, as in the CLI).

# --- chain ---------------------------------------------------------------------------------
# Ethereum JSON-RPC endpoint of the chain the escrow lives on.
chain_url = "{chain_url}"
# Deployment file (chain id and contract addresses), written by the contracts' deploy step.
deployment = "{deployment}"
# Blocks to wait before trusting a JobFunded event. 0 serves on unconfirmed funding: a reorg can
# undo a payment after its call was served, a risk the operator takes knowingly (fine on a local
# chain). A public chain needs enough for its reorgs: a few on an L2, 12 or more (or its
# finalized block) on Ethereum mainnet. Claims and refunds in undone blocks are undone either way.
confirmations = 0
# Seconds between two polls of the chain for new escrow events.
follow_interval = 1.0
# Largest block range asked in one eth_getLogs call.
log_range = 2000

# --- identity ------------------------------------------------------------------------------
# The agent's encrypted keystore (geth / MetaMask JSON). The key is never printed or logged.
keystore = "{keystore}"
# File holding the keystore password (or export FACEMARKET_AGENT_PASSWORD); kept apart from the
# keystore, so a copy of the keystores folder does not carry what opens them.
password_file = "{password_file}"
# The secret the agent sends the face services (`facemarket services run` reads the same file):
# only its holder may name a consumer to them, and when they have one, only its holder is served.
services_secret_file = "{services_secret_file}"

# --- the service -----------------------------------------------------------------------------
# Provider namespace the service is registered under (`facemarket provider create NAME`);
# consumers call it as provider/service_name. Only the provider's owner can register it.
provider = ""
# Name under which the service is registered in the ServiceRegistry.
service_name = "face-services"
# Public URL of this agent, as registered in the ServiceRegistry.
endpoint = "http://127.0.0.1:8000/"
# The wrapped JSON-RPC service (reached only through the agent).
upstream_url = "http://127.0.0.1:8001/"
# Seconds to wait for the service before the call fails (and the job is released, uncharged).
upstream_timeout = 60.0
# Largest answer taken from the service (bytes); a larger one is a service failure (uncharged).
max_answer_bytes = 16777216
# OpenRPC document of the service served at GET /spec (empty: the packaged face services one).
spec_file = ""

# --- payment gate --------------------------------------------------------------------------
# Refuse a job that expires within this many seconds (time left to claim it).
expiry_margin = 300
# Seconds a reserved job stays locked while the service works on it (a crash frees it after);
# must exceed upstream_timeout.
lease_seconds = 90.0

# --- claimer -------------------------------------------------------------------------------
# Seconds between two claim rounds (jobs near expiry are claimed first).
claim_interval = 30.0
# Jobs per completeJobs transaction.
claim_batch_size = 50
# Claims of one job that fail before it is given up (logged, stays in the ledger).
claim_max_attempts = 5
# Seconds to wait for a claim transaction's receipt before treating it as dropped.
claim_receipt_timeout = 120.0
# Seconds after serving a call (and after a start) before its job is claimed: until then a client
# that lost the answer gets it again by retrying (same job, body and signature); the claim makes
# the signature public, so the stored answer is dropped when it is sent. Jobs within expiry_margin
# of their expiry are claimed at once.
retry_window = 10.0

# --- the daemon ----------------------------------------------------------------------------
# Where the agent listens (the only part facing the network).
listen_host = "127.0.0.1"
listen_port = 8000
# Durable job ledger (SQLite).
ledger = "{ledger}"
# Largest request body accepted (bytes); larger ones get 413.
max_body_bytes = 16777216
# Calls served at once; more get 503 at once instead of waiting in a queue.
max_concurrency = 64
# Seconds a client has to send a request's body once its headers arrived (slower: 408, dropped).
# Bodies still arriving never hold a paid-call slot; at most max_concurrency big ones (over
# 64 KiB) arrive at once.
body_timeout = 10.0
# Bytes per second read of big bodies (over 64 KiB), all together: a stranger streaming huge
# bodies gets no more of the agent than this (16 MiB/s is about 80 photos of 200 KiB a second).
big_body_rate = 16777216
# Seconds a connection may stay without a complete request: idle keep-alive connections and
# connections whose headers never end are closed after this.
idle_timeout = 75.0
# DEBUG, INFO, WARNING or ERROR.
log_level = "INFO"

# --- prices (token units, the smallest unit: `--price` in the CLI takes tokens, at the decimals the token states on chain) ---
# Default price of one call; a job must pay at least the price of the method it calls.
price = 1000000
# Per-method prices (methods not listed cost `price`), and prices for one value of a parameter,
# "method:param=value" (the highest matching price applies; clients read them from GET /spec).
# The CNN detector costs about a hundred times the CPU of HOG.
[prices]
find_face = 1000000
"find_face:algorithm=dlib_cnn" = 100000000
face_identity = 2000000
ping = 1
'''


def write_template(path: Path, *, chain_url: str, deployment: Path, keystore: Path,
                   password_file: Path, services_secret_file: Path, ledger: Path) -> None:
    """Write a complete, commented config (refuses to overwrite: it may hold real settings)."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"config: {path} exists; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(chain_url=chain_url, deployment=deployment, keystore=keystore,
                                    password_file=password_file, services_secret_file=services_secret_file,
                                    ledger=ledger))
