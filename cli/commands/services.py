"""`facemarket services …`: run the face services (the logic is in facemarket.services)."""

from __future__ import annotations

from pathlib import Path

import click

from facemarket.models.locate import MODELS_DIR_ENV
from facemarket.services.auth import SECRET_FILE_ENV
from facemarket.cli.ui import SummaryGroup


@click.group(cls=SummaryGroup)
def services() -> None:
    """The face services: detection, landmarks, alignment, identity over JSON-RPC."""


@services.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it loopback behind the agent; any other needs --secret-file).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes  [default: one per core]")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=MODELS_DIR_ENV,
    help=f"Folder of the dlib models  [default: ${MODELS_DIR_ENV}, else the venv's copy, else the face_recognition_models package]",
)
@click.option("--service", "service_names", multiple=True, help="Serve only this service (repeatable)  [default: all]")
@click.option("--max-image-bytes", type=click.IntRange(min=1), help="Largest image file accepted  [default: 20 MiB]")
@click.option("--max-image-pixels", type=click.IntRange(min=1), help="Largest decoded image accepted  [default: 40 000 000]")
@click.option("--max-request-bytes", type=click.IntRange(min=1024), help="Largest HTTP request body  [default: 64 MiB]")
@click.option("--gallery", envvar="FACEMARKET_GALLERY", metavar="FILE|URL",
              help="The gallery: a SQLite file, or a postgresql:// URL shared by several services hosts (the `pg` "
              "extra)  [default: $FACEMARKET_GALLERY, else $FACEMARKET_HOME/gallery.sqlite3]")
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=SECRET_FILE_ENV,
    help=f"The secret shared with the agent (written by `facemarket agent init`); only callers sending it are served  "
    f"[default: ${SECRET_FILE_ENV}, else $FACEMARKET_HOME/secrets/services.secret when it exists, else run open]",
)
def run(
    host: str,
    port: int,
    workers: int | None,
    models_dir: Path | None,
    service_names: tuple[str, ...],
    max_image_bytes: int | None,
    max_image_pixels: int | None,
    max_request_bytes: int | None,
    gallery: str | None,
    secret_file: Path | None,
) -> None:
    """Serve the face services over JSON-RPC 2.0 (POST /) until interrupted."""
    from dataclasses import replace

    from facemarket.cli.home import Home
    from facemarket.models.errors import ModelError
    from facemarket.services.auth import SecretError, default_secret_file, read_secret
    from facemarket.services.gallery_errors import GalleryOpenError
    from facemarket.services.gallery_location import gallery_location
    from facemarket.services.methods import SERVICES
    from facemarket.services.server import ServerConfig, serve

    unknown = set(service_names) - set(SERVICES)
    if unknown:
        raise click.BadParameter(f"{', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}", param_hint="--service")
    defaults = ServerConfig()
    limits = replace(
        defaults.limits,
        **{k: v for k, v in {"max_bytes": max_image_bytes, "max_pixels": max_image_pixels}.items() if v},
    )
    default = default_secret_file(Home.from_env().root)
    if secret_file is None and default.exists():
        secret_file = default
    try:
        secret = None if secret_file is None else read_secret(secret_file)
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None
    config = ServerConfig(
        host=host,
        port=port,
        workers=workers or defaults.workers,
        models_dir=models_dir,
        services=service_names or None,
        limits=limits,
        max_request_bytes=max_request_bytes or defaults.max_request_bytes,
        gallery=None if gallery is None else gallery_location(gallery),
        secret=secret,
    )
    try:
        serve(config)
    except (ModelError, GalleryOpenError, SecretError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the port is taken, the address is not ours, …
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
