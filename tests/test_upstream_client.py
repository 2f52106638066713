"""The agent's own HTTP/1.1 client (agent/upstream_client.py) against real servers on loopback:
an aiohttp server for the framings it sends, and a raw asyncio server for answers no honest
server sends. No chain, no agent: every case the agent's forwarding relies on, in a second."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import pytest
from aiohttp import web

from facemarket.agent.upstream_client import AnswerTooLarge, ProtocolError, UpstreamClient

BODY = b'{"jsonrpc":"2.0","method":"ping","id":1}'


async def _aiohttp_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                          **runner_options) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/rpc"


async def _raw_server(answer: bytes, connections: list | None = None) -> tuple[asyncio.Server, str]:
    """Answers every request (whatever it is) with `answer` and closes the connection."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if connections is not None:
            connections.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def run(coroutine: Awaitable) -> None:
    asyncio.run(coroutine)


def test_the_body_and_headers_arrive_as_sent_and_connections_are_kept():
    seen: list[tuple[str, str, bytes, str | None, str | None]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, await request.read(), request.headers.get("X-Facemarket-Consumer"),
                     request.headers.get("Host")))
        return web.json_response({"peer": request.transport.get_extra_info("peername")[1]})

    async def scenario() -> None:
        runner, url = await _aiohttp_server(echo)
        client = UpstreamClient(url, max_connections=4)
        try:
            answers = [await client.request("POST", "/rpc", {"X-Facemarket-Consumer": "0xabc"}, BODY, 10_000)
                       for _ in range(5)]
            assert {answer.status for answer in answers} == {200}
            assert len({answer.body for answer in answers}) == 1  # one client port: one kept connection
            assert answers[0].headers["content-type"] == "application/json; charset=utf-8"
            big = bytes(range(256)) * 4096  # 1 MiB, sent byte for byte
            assert (await client.request("POST", "/rpc", {}, big, 10_000)).status == 200
        finally:
            await client.close()
            await runner.cleanup()
        assert seen[0] == ("POST", "/rpc", BODY, "0xabc", url.split("/")[2])
        assert seen[-1][2] == big

    run(scenario())


def test_concurrent_requests_open_at_most_max_connections():
    peers: set[int] = set()

    async def slow(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername")[1])
        await asyncio.sleep(0.05)
        return web.Response(body=b"{}")

    async def scenario() -> None:
        runner, url = await _aiohttp_server(slow)
        client = UpstreamClient(url, max_connections=3)
        try:
            answers = await asyncio.gather(*(client.request("POST", "/", {}, BODY, 100) for _ in range(12)))
        finally:
            await client.close()
            await runner.cleanup()
        assert [answer.body for answer in answers] == [b"{}"] * 12
        assert len(peers) == 3

    run(scenario())


@pytest.mark.parametrize("chunked", [False, True])
def test_an_answer_over_the_limit_is_refused_declared_or_chunked(chunked):
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = 1_000_000
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"x" * 10_000)
        return response

    async def scenario() -> None:
        runner, url = await _aiohttp_server(huge)
        client = UpstreamClient(url, max_connections=2)
        try:
            with pytest.raises(AnswerTooLarge):
                await client.request("POST", "/", {}, BODY, 50_000)
            assert (await client.request("POST", "/", {}, BODY, 1_000_000)).body == b"x" * 1_000_000
        finally:
            await client.close()
            await runner.cleanup()

    run(scenario())


def test_an_answer_ended_by_closing_the_connection_is_read_and_bounded():
    async def scenario() -> None:
        server, url = await _raw_server(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b"y" * 5000)
        client = UpstreamClient(url, max_connections=2)
        try:
            assert (await client.request("POST", "/", {}, BODY, 5000)).body == b"y" * 5000
            with pytest.raises(AnswerTooLarge):
                await client.request("POST", "/", {}, BODY, 4999)
        finally:
            await client.close()
            server.close()

    run(scenario())


def test_interim_answers_are_skipped_and_no_body_statuses_have_none():
    async def scenario() -> None:
        server, url = await _raw_server(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        client = UpstreamClient(url, max_connections=1)
        try:
            answer = await client.request("POST", "/", {}, BODY, 100)
        finally:
            await client.close()
            server.close()
        assert (answer.status, answer.body) == (204, b"")

    run(scenario())


@pytest.mark.parametrize("answer, error", [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", ProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", ProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", ProtocolError),
    (b"HTTP/1.1 200 OK\r\n no-name\r\n\r\n", ProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ValueError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", ProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", asyncio.IncompleteReadError),
    (b"", asyncio.IncompleteReadError),
    (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n", (ValueError, asyncio.LimitOverrunError)),
])
def test_broken_answers_raise_and_close_the_connection(answer, error):
    connections: list = []

    async def scenario() -> None:
        server, url = await _raw_server(answer, connections)
        client = UpstreamClient(url, max_connections=1)
        try:
            with pytest.raises(error):
                await client.request("POST", "/", {}, BODY, 100_000)
            assert client._idle == []  # never reused
        finally:
            await client.close()
            server.close()

    run(scenario())


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=request.transport.get_extra_info("peername")[1].to_bytes(4, "big"))

    async def scenario() -> None:
        runner, url = await _aiohttp_server(ok, keepalive_timeout=0.2)
        client = UpstreamClient(url, max_connections=1)
        try:
            first = await client.request("POST", "/", {}, BODY, 100)
            await asyncio.sleep(0.6)  # the server closes the idle connection; its FIN reaches the client
            second = await client.request("POST", "/", {}, BODY, 100)
        finally:
            await client.close()
            await runner.cleanup()
        assert first.status == second.status == 200 and first.body != second.body  # a new connection

    run(scenario())


def test_bytes_a_server_sent_while_idle_are_never_read_as_the_next_answer():
    """A raw server answers the first request, then sends a second, unsolicited answer on the idle
    connection; the next request must get its own answer from a new connection."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername")[1]).encode()
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer % (len(peer), peer))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(answer % (5, b"stray"))  # nobody asked for this one
        await writer.drain()
        await reader.read()  # keep the connection open until the client closes it

    async def scenario() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        client = UpstreamClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", max_connections=1)
        try:
            first = await client.request("POST", "/", {}, BODY, 100)
            await asyncio.sleep(0.3)  # the stray answer reaches the kept connection
            second = await client.request("POST", "/", {}, BODY, 100)
        finally:
            await client.close()
            server.close()
        assert first.body.isdigit() and second.body.isdigit() and first.body != second.body

    run(scenario())


def test_a_line_break_in_a_header_is_refused_before_anything_is_sent():
    async def scenario() -> None:
        connections: list = []
        server, url = await _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", connections)
        client = UpstreamClient(url, max_connections=1)
        try:
            for value in ("0xabc\r\nX-Evil: 1", "0xabc\nX-Evil: 1", "0xabc\rX"):
                with pytest.raises(ValueError):
                    await client.request("POST", "/", {"X-Facemarket-Consumer": value}, BODY, 100)
        finally:
            await client.close()
            server.close()
        assert connections == []

    run(scenario())


def test_a_refused_connection_raises_oserror():
    async def scenario() -> None:
        server, url = await _raw_server(b"")
        server.close()
        await server.wait_closed()
        client = UpstreamClient(url, max_connections=1)
        with pytest.raises(OSError):
            await client.request("POST", "/", {}, BODY, 100)

    run(scenario())


def test_only_http_urls_are_taken():
    for url in ("ftp://127.0.0.1/", "127.0.0.1:8001", "http:///x"):
        with pytest.raises(ValueError):
            UpstreamClient(url, max_connections=1)
