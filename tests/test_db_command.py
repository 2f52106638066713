"""`facemarket db up|down|url`: a real PostgreSQL with pgvector started in the background by the
CLI (the `pg` extra), idempotent, with one clear line for each wrong use; and the suite's fixture."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from facemarket.cli.local_postgres import default_shared_buffers
from facemarket.cli.main import cli
from tests.fixtures.chain import free_port


def db(home: Path, *args: str):
    return CliRunner().invoke(cli, ["db", *args], env={"FACEMARKET_HOME": str(home)})


def test_up_url_down_and_up_again_keeps_the_data(tmp_path):
    port = free_port()
    first = db(tmp_path, "up", "--port", str(port), "--shared-buffers", "160MB", "--json")
    assert first.exit_code == 0, first.output
    try:
        url = json.loads(first.stdout)["url"]
        assert url.startswith("postgresql://postgres:") and url.endswith(f"@127.0.0.1:{port}/facemarket")
        assert json.loads(first.stdout)["shared_buffers"] == "160MB"
        with psycopg.connect(url, autocommit=True) as connection:
            assert connection.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            assert connection.execute("SHOW shared_buffers").fetchone() == ("160MB",)
            connection.execute("CREATE TABLE kept (v vector(3))")
            connection.execute("INSERT INTO kept VALUES ('[1,2,3]')")
        again = db(tmp_path, "up")  # already running: the same server, the same URL
        assert again.exit_code == 0 and url in again.stdout
        assert db(tmp_path, "url").stdout.strip() == url
        down = db(tmp_path, "down")
        assert down.exit_code == 0 and "Stopped" in down.stdout
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        assert "No local PostgreSQL was running" in db(tmp_path, "down").stdout
        stopped = db(tmp_path, "url")  # the URL alone on stdout, the warning on stderr
        assert stopped.stdout.strip() == url and "not running" in stopped.stderr
        assert db(tmp_path, "up").exit_code == 0  # same port as before, data kept
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT v::text FROM kept").fetchone() == ("[1,2,3]",)
            assert connection.execute("SHOW shared_buffers").fetchone() != ("160MB",)  # the default again
    finally:
        db(tmp_path, "down")


def test_wrong_uses_say_what_to_do(tmp_path):
    never = db(tmp_path, "url")
    assert never.exit_code == 1 and "no local PostgreSQL was started here" in never.stderr and "db up" in never.stderr
    assert db(tmp_path, "up", "--port", "0").exit_code == 2
    assert db(tmp_path, "up", "--port", "70000").exit_code == 2
    wrong_size = db(tmp_path, "up", "--shared-buffers", "6 GB")
    assert wrong_size.exit_code == 2 and "--shared-buffers" in wrong_size.output and "4GB" in wrong_size.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = db(tmp_path, "up", "--port", str(port))
    assert busy.exit_code == 1 and f"port {port} on 127.0.0.1 is taken" in busy.stderr
    file = tmp_path / "a-file"
    file.write_text("")
    assert db(tmp_path, "up", "--folder", str(file)).exit_code == 2  # a file is not a folder


def test_shared_buffers_default_to_a_quarter_of_the_memory(postgres):
    """A large gallery's HNSW index must fit in shared buffers (docs/gallery.md), not initdb's 128 MB."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert postgres.status()["shared_buffers"] == default_shared_buffers()
    with psycopg.connect(postgres.url("postgres")) as connection:
        (buffers,) = connection.execute("SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'").fetchone()
        (cache,) = connection.execute("SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'effective_cache_size'").fetchone()
    assert buffers == int(default_shared_buffers().removesuffix("MB")) * 2**20
    assert 128 * 2**20 < buffers <= memory // 4 and buffers < cache <= memory


def test_each_module_has_its_own_database_with_pgvector(postgres, postgres_url):
    assert postgres_url.endswith("/test_db_command")
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("test_db_command",)
        assert connection.execute("SELECT '[3,4]'::vector <-> '[0,0]'::vector").fetchone() == (5.0,)
    assert postgres.status()["running"]
