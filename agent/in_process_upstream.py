"""The face services served in the agent's own process (`upstream = "in-process"`): no HTTP hop
between the payment gate and the service.

It holds what `facemarket services run` builds (services/server.py `build_app`: the models
verified, the worker pool, the method table, the gallery's lifetime) without listening: the
services' app is only the state their methods read (`context.app[...]`) and the owner of the
pool's and gallery's lifetimes (its cleanup contexts, run by `start` and `close`). A call is
dispatched as the services' HTTP handler does and answered with the same status and bytes
(services/app.py `rpc_reply`), so the agent charges, releases and records exactly as it does over
HTTP (agent/upstream.py).

What HTTP carried is passed directly: the consumer is the payer the gate verified (no header,
so no secret either: nothing outside this process can name one), the deadline is the agent's
`upstream_timeout` (the services' TIMEOUT_HEADER), and the request the gate parsed is handed over
instead of the body (a 43 KB image parsed once, not twice). The face work still runs in worker
processes; only the JSON-RPC dispatch and the gallery's index share the agent's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from facemarket.agent.config import AgentConfig
from facemarket.agent.gate import Call
from facemarket.agent.startup import StartupError
from facemarket.agent.upstream import HEALTH_TIMEOUT, UpstreamAnswer, timed_out, too_large
from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.models.errors import ModelError
from facemarket.services.app import METHODS, POOL, rpc_reply, services_health
from facemarket.services.gallery_errors import GalleryOpenError
from facemarket.services.image_limits import ImageLimits
from facemarket.services.rpc_context import RequestContext
from facemarket.services.rpc_dispatch import dispatch, dispatch_parsed
from facemarket.services.server import ServerConfig, build_app
from facemarket.services.worker_pool import default_workers


def server_config(config: AgentConfig) -> ServerConfig:
    """The services' settings from the agent's `services_*` keys (their limits on the request's
    size are the agent's own max_body_bytes: no second body is read)."""
    return ServerConfig(workers=config.services_workers or default_workers(), models_dir=config.services_models_dir,
                        limits=ImageLimits(config.services_max_image_bytes, config.services_max_image_pixels),
                        gallery=config.services_gallery)


class InProcessUpstream:
    def __init__(self, config: AgentConfig) -> None:
        self.settings = server_config(config)
        self.timeout, self.max_answer_bytes = config.upstream_timeout, config.max_answer_bytes
        self.app: web.Application | None = None

    async def start(self) -> None:
        """Verify the models (off the event loop: 130 MB hashed), spawn the workers (they load the
        models in the background; `health` says when they are ready) and open the gallery."""
        try:
            self.app = await asyncio.to_thread(build_app, self.settings)
            self.app.freeze()
            await self.app.startup()
        except (ModelError, GalleryOpenError) as error:
            raise StartupError(f"the face services (upstream = \"in-process\"): {error}") from None

    async def forward(self, call: Call, consumer: str) -> UpstreamAnswer:
        app = self.app
        assert app is not None, "start() the upstream first"
        context = RequestContext.for_call(app, app[POOL], consumer, self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                if call.request is not None:
                    answer = await dispatch_parsed(call.request, app[METHODS], context)
                else:
                    answer = await dispatch(call.body, app[METHODS], context)
        except TimeoutError:
            raise timed_out(self.timeout) from None
        status, text = rpc_reply(answer)
        body = b"" if text is None else text.encode()
        if status >= 500:  # nothing was computed (a worker died, the deadline passed): say why
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"the service computed nothing: {answer['error']['message']}")
        if len(body) > self.max_answer_bytes:
            raise too_large(self.max_answer_bytes)
        return UpstreamAnswer(status, body)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Ready once every worker has loaded its models; the services' own report beside it (a
        gallery on PostgreSQL that does not say how it is within HEALTH_TIMEOUT: not ready, as the
        HTTP upstream judges services whose /health does not answer)."""
        if self.app is None:  # not started, or its start failed
            return False, {"reachable": False, "in_process": True}
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                ready, report = await services_health(self.app)
        except TimeoutError:
            ready, report = False, {}
        return ready, {"reachable": ready, "in_process": True, **report}

    async def close(self) -> None:
        """Stop the workers and close the gallery (after the last call, as app.py orders it)."""
        if self.app is not None:
            await self.app.cleanup()
