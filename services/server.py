"""Start the face services: check the models, then serve until SIGINT or SIGTERM.

The models are verified here, in the parent, before any worker exists: a missing or
corrupt file stops the start-up with a message naming it, instead of failing requests,
and the workers need not hash 130 MB each. Without the agent's secret the services refuse
to listen beyond loopback and say at start-up that they run open (services/auth.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from facemarket.models.loader import load_haar_cascade
from facemarket.models.locate import models_dir
from facemarket.models.verify import verify_models
from facemarket.services.app import make_app
from facemarket.services.auth import CONSUMER_HEADER, check_bind
from facemarket.services.gallery_methods import GALLERY_METHODS, gallery_lifetime
from facemarket.services.image_decoding import ImageLimits
from facemarket.services.methods import method_table
from facemarket.services.worker_pool import WorkerPool, default_workers

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8001
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # room for a 20 MiB image in base64, and more


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = field(default_factory=default_workers)
    models_dir: Path | None = None  # None: $FACEMARKET_MODELS_DIR, else the venv's copy (models/locate.py)
    services: Sequence[str] | None = None  # None: every service
    limits: ImageLimits = ImageLimits()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    gallery: Path | str | None = None  # a SQLite file or a postgresql:// URL; None: $FACEMARKET_HOME/gallery.sqlite3
    secret: bytes | None = None  # the agent's (auth.read_secret); None: open, no consumer header accepted


def build_app(config: ServerConfig) -> web.Application:
    """Verify the models (raises ModelError) and build the app; the workers start with it.
    Raises SecretError when it would listen beyond loopback without a secret."""
    check_bind(config.host, config.secret)
    folder = models_dir(config.models_dir)
    verify_models(folder)
    load_haar_cascade(folder)
    pool = WorkerPool(folder, config.workers, config.limits)
    methods = method_table(config.services)
    app = make_app(pool, methods, config.max_request_bytes, config.secret)
    if GALLERY_METHODS.keys() <= methods.keys():
        app.cleanup_ctx.append(gallery_lifetime(config.gallery))
    return app


def serve(config: ServerConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = build_app(config)
    if config.secret is None:
        logging.getLogger(__name__).warning(
            "running open, without the agent's secret: any local process may call the services, and "
            "calls naming a consumer (%s, the gallery) are refused; give --secret-file to serve an agent",
            CONSUMER_HEADER)
    listening = (
        f"facemarket services on http://{config.host}:{config.port}/ with {config.workers} workers "
        "(GET /health answers 200 once their models are loaded)"
    )
    # run_app calls `print` once the socket is bound: only then is the message true
    web.run_app(app, host=config.host, port=config.port, print=lambda _: print(listening, flush=True), access_log=None)
