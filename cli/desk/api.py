"""The desk's JSON API, used by its page only (guard.py decides who may call it).

POST /api/recall       body: a photo (JPEG/PNG/…)   -> {"faces": [{box, name|null, ...}], "desk_seconds",
                                                        "payment_seconds" (paid from a channel: the
                                                        client's own payment steps)}
POST /api/enrol?name=N&x=&y=&w=&h=  body: a photo   -> the gallery's answer
POST /api/forget       body: {"name": N}            -> {"removed": n}
GET  /api/gallery                                    -> the names enrolled
GET  /api/status                                     -> balance, prepaid calls, today's calls
A failure answers {"error": {"kind", "message", "hint"}}; `kind` tells the page which message
to show (agent_down, no_money, chain_down, bad_request, failed).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from facemarket.cli.desk.payer import Payer
from facemarket.cli.errors import (AgentUnreachable, ChainUnreachable, FacemarketError,
                                   InsufficientTokens, ServiceFailed)
from facemarket.services.image_header import HeaderError, read_header

PAYER = web.AppKey("payer", Payer)
# {"empty": bool} once the desk knows whether the gallery holds nobody. A recall in an empty
# gallery is refused, but paid: while it is known empty the desk asks `find_face` instead (one
# paid call a frame, not two). Enrolled elsewhere meanwhile: the page's reload asks /api/gallery.
GALLERY = web.AppKey("gallery", dict)
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_NAME_LENGTH = 100          # the gallery's own limit (services/gallery_methods.py)
NO_FACE, EMPTY_GALLERY = 1100, 1104   # the gallery's codes the page shows as plain answers


def failure(status: int, kind: str, message: str, hint: str | None = None) -> web.Response:
    return web.json_response({"error": {"kind": kind, "message": message, "hint": hint}}, status=status)


def paid_failure(error: FacemarketError) -> web.Response:
    """The client's error for the page: which case it is, what went wrong, what to do."""
    if isinstance(error, InsufficientTokens):
        return failure(402, "no_money", error.message,
                       "the desk's account has run out of tokens: add tokens to it "
                       "(`facemarket token mint` by the token owner, or a transfer), then carry on")
    if isinstance(error, AgentUnreachable):
        return failure(503, "agent_down", error.message,
                       "the service's agent does not answer: start it (`facemarket agent run`) "
                       "or ask its provider; nothing was charged")
    if isinstance(error, ChainUnreachable):
        return failure(503, "chain_down", error.message, error.hint)
    return failure(502, "failed", error.message, error.hint)


async def read_photo(request: web.Request) -> bytes:
    """The request body, refused unless it is one image of a supported format and size."""
    if request.content_length is not None and request.content_length > MAX_PHOTO_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_PHOTO_BYTES, actual_size=request.content_length)
    data = await request.read()
    try:
        read_header(data)
    except HeaderError as error:
        raise _bad_request(f"the body is not a photo: {error}") from None
    return data


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": {"kind": "bad_request", "message": message,
                                                         "hint": None}}),
                              content_type="application/json")


async def _paid(request: web.Request, method: str, **params: Any) -> Any:
    return (await request.app[PAYER].call(method, **params)).result


async def recall(request: web.Request) -> web.Response:
    photo = await read_photo(request)
    started = time.perf_counter()
    try:
        result = await recognised(request, photo)
    except FacemarketError as error:
        return paid_failure(error)
    return web.json_response({**result, "desk_seconds": round(time.perf_counter() - started, 4)})


async def recognised(request: web.Request, photo: bytes) -> dict:
    """recall's answer; no face is an empty list, and an empty gallery makes every face unknown."""
    gallery = request.app[GALLERY]
    if gallery.get("empty"):
        return await unknown_faces(request, photo)
    try:
        paid = await request.app[PAYER].call("recall", image=photo)
    except ServiceFailed as error:
        if error.code == NO_FACE:
            return {"faces": []}
        if error.code != EMPTY_GALLERY:
            raise
        gallery["empty"] = True
        return await unknown_faces(request, photo)
    paying = {"payment_seconds": round(paid.channel.payment_seconds, 5)} if paid.channel else {}
    return {**paid.result, **paying}


async def unknown_faces(request: web.Request, photo: bytes) -> dict:
    """Nobody is enrolled: the faces `find_face` sees, each unknown, shaped like recall's answer."""
    found = await _paid(request, "find_face", image=photo)
    return {"faces": [{"box": {k: f[k] for k in ("x", "y", "w", "h")}, "known": False, "name": None,
                       "matches": []} for f in found["faces"]]}


def _int_query(request: web.Request, key: str) -> int:
    try:
        value = int(request.query[key])
    except (KeyError, ValueError):
        raise _bad_request(f"{key} must be a whole number of pixels") from None
    if not 0 <= value <= 100_000:
        raise _bad_request(f"{key} is out of range")
    return value


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad_request("type a name first")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise _bad_request(f"a name is at most {MAX_NAME_LENGTH} printable characters")
    return name


async def enrol(request: web.Request) -> web.Response:
    name = check_name(request.query.get("name"))
    face = {k: _int_query(request, k) for k in ("x", "y", "w", "h")}
    photo = await read_photo(request)
    try:
        enrolled = await _paid(request, "enrol", name=name, image=photo, face=face)
    except FacemarketError as error:
        return paid_failure(error)
    request.app[GALLERY]["empty"] = False
    return web.json_response(enrolled)


async def forget(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise _bad_request("send {\"name\": ...} as application/json")
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise _bad_request("the body is not JSON") from None
    name = check_name(body.get("name") if isinstance(body, dict) else None)
    try:
        removed = await _paid(request, "forget", name=name)
    except FacemarketError as error:
        return paid_failure(error)
    request.app[GALLERY].pop("empty", None)  # others may be left: the next recall says
    return web.json_response(removed)


async def gallery(request: web.Request) -> web.Response:
    try:
        names = await _paid(request, "gallery")
    except FacemarketError as error:
        return paid_failure(error)
    request.app[GALLERY]["empty"] = names["faces"] == 0
    return web.json_response(names)


async def status(request: web.Request) -> web.Response:
    try:
        return web.json_response(await request.app[PAYER].status())
    except FacemarketError as error:
        return paid_failure(error)


def add_routes(app: web.Application) -> None:
    app[GALLERY] = {}
    app.router.add_post("/api/recall", recall)
    app.router.add_post("/api/enrol", enrol)
    app.router.add_post("/api/forget", forget)
    app.router.add_get("/api/gallery", gallery)
    app.router.add_get("/api/status", status)
