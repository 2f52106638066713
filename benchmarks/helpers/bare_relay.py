"""A bare relay in front of the services: what one Python HTTP hop costs, with no payment at all.

`agent_bench.py` runs it beside the agent, so that the agent's overhead over a direct call can be
split into the hop any proxy pays (this relay: aiohttp's server, then the agent's own upstream
client, agent/upstream_client.py) and what the payment adds on top (gate, ledger, receipt). It
forwards each `POST /` body byte for byte with the caller's Authorization (the services' secret),
Content-Type and X-Facemarket-* headers.

    .venv/bin/python benchmarks/helpers/bare_relay.py PORT UPSTREAM_URL

(In a folder of its own: `make bench` runs every benchmarks/*.py with no arguments.)
"""

from __future__ import annotations

import sys

from aiohttp import web

from facemarket.agent.upstream_client import UpstreamClient

ANSWER_LIMIT = 16 * 1024 * 1024


def make_relay(upstream_url: str) -> web.Application:
    client = UpstreamClient(upstream_url, max_connections=256)

    async def relay(request: web.Request) -> web.Response:
        headers = {name: value for name, value in request.headers.items()
                   if name.lower().startswith("x-facemarket-") or name.lower() in ("content-type", "authorization")}
        answer = await client.request("POST", client.path, headers, await request.read(), ANSWER_LIMIT)
        return web.Response(body=answer.body, status=answer.status, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def close(app: web.Application) -> None:
        await client.close()

    app = web.Application(client_max_size=ANSWER_LIMIT)
    app.router.add_post("/", relay)
    app.router.add_get("/health", health)
    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    web.run_app(make_relay(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
