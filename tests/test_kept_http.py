"""The client's kept connections (cli/kept_http.py) against a bare HTTP/1.1 server on a socket:
one connection serves call after call; one the server closed while idle, or said it would close,
is not reused and the next call still goes through; failures are one exception, never a resend."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from facemarket.cli.bounded_http import AnswerTooLarge
from facemarket.cli.kept_http import ExchangeFailed, KeptConnections


class BareServer:
    """Answers each POST with {"connection": n, "requests": k}; `close_after` closes a connection
    silently after answering (as a server ending an idle keep-alive does), `close_header` says
    `Connection: close`, `answer_bytes` pads the answer, `mute` never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/call"
        self.connections = self.requests = 0
        self.close_after = self.close_header = self.mute = False
        self.answer_bytes = 0
        self.closed = threading.Event()  # set when the server has closed a connection
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection, self.connections), daemon=True).start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection, connection.makefile("rb") as reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                reader.read(length)
                self.requests += 1
                if self.mute:
                    continue
                body = json.dumps({"connection": number, "requests": self.requests,
                                   "pad": "x" * self.answer_bytes}).encode()
                close = b"Connection: close\r\n" if self.close_header else b""
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + close
                                   + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                if self.close_after or self.close_header:
                    break
        self.closed.set()


@pytest.fixture
def server() -> Iterator[BareServer]:
    server = BareServer()
    yield server
    server.listener.close()


def post(kept: KeptConnections, url: str, timeout: float = 10, limit: int = 1 << 20) -> dict:
    answer = kept.post(url, b'{"method": "ping"}', {"Content-Type": "application/json"}, timeout, limit, "the answer")
    assert answer.status == 200 and answer.headers.get("content-type") == "application/json"
    return json.loads(answer.body)


def test_one_connection_serves_call_after_call(server):
    kept = KeptConnections()
    assert [post(kept, server.url)["connection"] for _ in range(5)] == [1] * 5
    kept.close()


@pytest.mark.parametrize("how", ["closed while idle", "Connection: close"])
def test_a_connection_the_server_closed_is_not_reused(server, how):
    if how == "closed while idle":
        server.close_after = True
    else:
        server.close_header = True
    kept = KeptConnections()
    first = post(kept, server.url)["connection"]
    assert server.closed.wait(10)
    assert post(kept, server.url)["connection"] == first + 1  # a new one, and no error
    assert server.requests == 2  # nothing sent twice


def test_failures_are_one_exception_and_nothing_is_resent(server):
    kept = KeptConnections()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(ExchangeFailed, match="ConnectionRefusedError"):
        post(kept, f"http://127.0.0.1:{port}/")
    server.mute = True
    with pytest.raises(ExchangeFailed, match="TimeoutError"):
        post(kept, server.url, timeout=0.3)
    assert server.requests == 1


def test_an_answer_over_the_limit_is_refused_and_its_connection_dropped(server):
    kept = KeptConnections()
    server.answer_bytes = 5000
    with pytest.raises(AnswerTooLarge, match="the answer is over 4096 bytes"):
        post(kept, server.url, limit=4096)
    assert post(kept, server.url)["connection"] == 2
