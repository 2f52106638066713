"""The face services' JSON-RPC methods: check parameter types here, work in a worker.

Parameters are checked on the event loop (cheap, and a bad call never occupies a worker);
anything that needs the decoded image (box bounds) is checked in the worker. jsonrpcserver
binds the parameters to each signature, so a missing or unknown parameter is -32602.
"""

from __future__ import annotations

from typing import Any

from jsonrpcserver import Result, Success

from facemarket.services import worker_tasks
from facemarket.services.alignment import DEFAULT_PADDING, DEFAULT_SIZE, MAX_PADDING, MAX_SIZE, MIN_SIZE
from facemarket.services.boxes import parse_boxes
from facemarket.services.detectors import DEFAULT_ALGORITHM, check_algorithm
from facemarket.services.errors import invalid_params
from facemarket.services.landmark_models import DEFAULT_MODEL, IDENTITY_NOTE, MODELS, check_model
from facemarket.services.params import image_param, is_int, is_number
from facemarket.services.rpc_context import RequestContext


async def ping(context: RequestContext) -> Result:
    return Success("pong")


async def find_face(context: RequestContext, image: Any, algorithm: Any = DEFAULT_ALGORITHM) -> Result:
    return Success(await context.pool.run(worker_tasks.find_face, image_param(image), check_algorithm(algorithm)))


async def find_landmarks(context: RequestContext, image: Any, faces: Any = None, model: Any = DEFAULT_MODEL) -> Result:
    model = str(model) if is_int(model) else model  # 68 means "68"
    return Success(await context.pool.run(worker_tasks.find_landmarks, image_param(image), parse_boxes(faces), check_model(model)))


async def landmark_models(context: RequestContext) -> Result:
    return Success({"models": list(MODELS.values()), "note": IDENTITY_NOTE})


async def align_face(
    context: RequestContext, image: Any, faces: Any = None, size: Any = DEFAULT_SIZE, padding: Any = DEFAULT_PADDING
) -> Result:
    if not is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise invalid_params(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} (pixels)")
    if not is_number(padding) or not 0 <= padding <= MAX_PADDING:
        raise invalid_params(f"padding must be a number from 0 to {MAX_PADDING} (a fraction of the face size)")
    return Success(await context.pool.run(worker_tasks.align_face, image_param(image), parse_boxes(faces), size, float(padding)))


async def face_identity(context: RequestContext, image: Any, faces: Any = None) -> Result:
    return Success(await context.pool.run(worker_tasks.face_identity, image_param(image), parse_boxes(faces)))
