"""JSON-RPC 2.0 as the spec says it, over HTTP, and the health check."""

from __future__ import annotations

import json

from tests.fixtures.services import in_parallel, photo


def rpc(method: str, id: object = None, **params: object) -> dict:
    request: dict = {"jsonrpc": "2.0", "method": method}
    if params:
        request["params"] = params
    if id is not None:
        request["id"] = id
    return request


def post_json(server, request: object) -> tuple[int, object]:
    return server.post(json.dumps(request).encode())


def test_health_lists_the_methods(face_services) -> None:
    status, body = face_services.health()
    assert status == 200 and body["status"] == "ok"
    face_methods = {"align_face", "face_identity", "find_face", "find_landmarks", "landmark_models", "ping"}
    assert face_methods <= set(body["methods"]) and body["methods"] == sorted(body["methods"])
    assert len(body["workers"]) == 2


def test_ping(face_services) -> None:
    assert face_services.rpc("ping", id="a string id") == {"jsonrpc": "2.0", "result": "pong", "id": "a string id"}


def test_malformed_json_is_a_parse_error(face_services) -> None:
    for body in (b'{"jsonrpc": "2.0", "method": "ping", "id": 1', b"\xff\xfe\x00garbage", b""):
        status, answer = face_services.post(body)
        assert status == 400  # refused before any work: an agent charges nothing for it
        assert answer["error"]["code"] == -32700 and answer["id"] is None


def test_invalid_requests(face_services) -> None:
    for request in ({"jsonrpc": "1.0", "method": "ping", "id": 1}, {"method": "ping", "id": 1}, {"jsonrpc": "2.0", "method": 1, "id": 1}, 42, []):
        status, answer = post_json(face_services, request)
        assert answer["error"]["code"] == -32600 and answer["id"] is None, (request, answer)


def test_a_batch_answers_each_entry_and_skips_notifications(face_services) -> None:
    batch = [
        rpc("ping", id=1),
        rpc("ping"),  # a notification: no answer
        {"foo": "bar"},  # invalid on its own; the others still run
        rpc("find_face", id=2, image=photo("face-services/laos.jpg")),
        rpc("find_face", id=3, image=""),
        rpc("no_such_method", id=4),
    ]
    status, answers = post_json(face_services, batch)
    assert status == 200 and isinstance(answers, list)
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert by_id[1]["result"] == "pong"
    assert len(by_id[2]["result"]["faces"]) == 2
    assert by_id[3]["error"]["code"] == 1001
    assert by_id[4]["error"]["code"] == -32601
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [-32600]
    assert len(answers) == 5


def test_a_batch_of_non_objects_gets_an_error_each(face_services) -> None:
    status, answers = post_json(face_services, [1, 2, 3])
    assert [a["error"]["code"] for a in answers] == [-32600] * 3


def test_notifications_get_no_body(face_services) -> None:
    assert post_json(face_services, rpc("ping")) == (204, None)
    assert post_json(face_services, [rpc("ping"), rpc("find_face", image="")]) == (204, None)


def test_positional_params(face_services) -> None:
    answer = face_services.rpc("find_face", [photo("face-services/adele_2016.jpg"), "haar_cascade"])
    assert len(answer["result"]["faces"]) == 1


def test_concurrent_clients_each_get_their_own_answer(face_services) -> None:
    names = ["laos.jpg", "adele_2016.jpg", "zebra_stripes.jpg", "classroom_in_tanzania.jpg"] * 2
    images = {name: photo(f"face-services/{name}") for name in set(names)}
    alone = {name: face_services.result("find_face", {"image": images[name]}) for name in images}
    together = in_parallel(lambda name: face_services.result("find_face", {"image": images[name]}), names, clients=8)
    assert together == [alone[name] for name in names]
