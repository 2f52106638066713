"""The gallery on PostgreSQL through real `facemarket services run` processes and the suite's real
PostgreSQL: two services hosts share one gallery; the SQLite gallery's own tests pass on it
unchanged (imported below, run here against `--gallery postgresql://…`); an outage answers
HTTP 503 "nothing charged" and ends by itself; a database it cannot use stops the start."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from facemarket.services.gallery_errors import GalleryCode
from facemarket.services.gallery_postgres import redacted
from tests.fixtures.gallery import GalleryServices
from tests.fixtures.postgres import temporary_postgres
from tests.fixtures.services import FACEMARKET, in_parallel, photo
from tests.test_gallery import (  # noqa: F401 (pytest collects them here, on this module's gallery_services)
    enrolled,
    test_an_empty_gallery_and_a_malformed_consumer_get_clear_errors,
    test_an_enrolled_face_survives_a_crash_right_after_the_answer,
    test_consumers_galleries_are_apart,
    test_each_test_photo_recalls_the_right_names,
    test_enrol_answers_id_name_and_box_and_gallery_counts_faces,
    test_forget_by_name_removes_every_face_of_it_and_by_id_one,
    test_photos_of_other_people_match_nobody,
    test_the_gallery_survives_a_restart,
    test_top_gives_the_closest_distinct_names_closest_first,
)
from tests.test_gallery_margin import (  # noqa: F401
    test_a_returning_person_is_named_with_the_gap_to_the_next_name,
    test_one_name_alone_is_named_with_no_margin,
    test_two_names_equally_close_name_nobody_but_list_both,
)

OBAMA, OBAMA_AGAIN = "face_recognition/train/obama/obama.jpg", "face_recognition/test/obama1.jpg"


def consumer(n: int) -> str:
    return f"0x{0x9a0 + n:040x}"


@pytest.fixture(scope="module")
def gallery_services(postgres_url: str):
    """Services whose gallery is this module's PostgreSQL database (the imported tests use it)."""
    services = GalleryServices(postgres_url)
    yield services
    services.server.stop()


@pytest.fixture(scope="module")
def second_host(postgres_url: str, gallery_services: GalleryServices):
    """Another services process on the same database: a second host behind a load balancer."""
    services = GalleryServices(postgres_url)
    yield services
    services.server.stop()


def test_two_services_hosts_share_one_gallery(gallery_services: GalleryServices, second_host: GalleryServices) -> None:
    who = consumer(1)
    face_id = gallery_services.call("enrol", who, name="obama", image=photo(OBAMA))["id"]
    (face,) = second_host.call("recall", who, image=photo(OBAMA_AGAIN))["faces"]  # at once, nothing to sync
    assert face["known"] and face["name"] == "obama" and face["matches"][0]["id"] == face_id
    people = {"biden": "face_recognition/train/biden/biden.jpg", "rose": "face_recognition/train/rose_leslie/img1.jpg",
              "kit": "face_recognition/train/kit_harington/john1.jpeg", "alex": "face_recognition/train/alex_lacamoire/img1.jpg"}
    hosts = [gallery_services, second_host] * 2
    in_parallel(lambda job: job[0].call("enrol", who, name=job[1], image=photo(job[2])),
                [(host, name, path) for host, (name, path) in zip(hosts, people.items())])
    expected = {"names": [{"name": n, "faces": 1} for n in sorted([*people, "obama"])], "faces": 5}
    assert gallery_services.call("gallery", who) == second_host.call("gallery", who) == expected
    assert second_host.call("forget", who, id=face_id) == {"removed": 1}
    (face,) = gallery_services.call("recall", who, image=photo(OBAMA_AGAIN))["faces"]
    assert not face["known"]  # forgotten on one host: gone on the other


def test_health_names_the_database_without_its_password(gallery_services: GalleryServices, postgres_url: str) -> None:
    status, body = gallery_services.server.health()
    assert status == 200
    assert body["gallery"] == {"store": "postgresql", "database": redacted(postgres_url), "reachable": True,
                               "hnsw_building": 0}
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in json.dumps(body)


def rpc(services: GalleryServices, method: str, **params) -> tuple[int, dict]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    return services.server.post(body)


def test_an_outage_answers_503_nothing_charged_and_ends_by_itself() -> None:
    with temporary_postgres() as database:
        services = GalleryServices(database.url())
        try:
            services.call("enrol", name="obama", image=photo(OBAMA))
            database.stop()
            for method, params in (("recall", {"image": photo(OBAMA_AGAIN)}), ("enrol", {"name": "x", "image": photo(OBAMA)}),
                                   ("gallery", {})):
                status, answer = rpc(services, method, **params)
                assert status == 503 and answer["error"]["code"] == GalleryCode.DATABASE_UNAVAILABLE  # the agent charges nothing
                assert "nothing is charged; retry" in answer["error"]["message"]
            status, health = services.server.health()
            assert status == 200 and health["gallery"]["reachable"] is False  # the other services still serve
            assert services.server.result("face_identity", {"image": photo(OBAMA)})["faces"]
            database.start()
            deadline = time.monotonic() + 30
            while (answer := rpc(services, "recall", image=photo(OBAMA_AGAIN)))[0] == 503:
                assert time.monotonic() < deadline, answer
                time.sleep(0.5)
            status, answer = answer
            assert status == 200 and answer["result"]["faces"][0]["name"] == "obama"  # nothing lost
            assert services.call("gallery") == {"names": [{"name": "obama", "faces": 1}], "faces": 1}
        finally:
            services.server.stop()


def test_a_database_it_cannot_use_stops_the_start_with_one_line() -> None:
    url = "postgresql://postgres:s3cret@127.0.0.1:1/facemarket"  # from the environment: no password in `ps`
    run = subprocess.run([str(FACEMARKET), "services", "run", "--port", "0"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "FACEMARKET_GALLERY": url})
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode != 0 and "Traceback" not in run.stderr and "s3cret" not in run.stderr + run.stdout
    assert last.startswith("Error: cannot use the gallery database postgresql://postgres:***@127.0.0.1:1/facemarket: ")
    assert "Connection refused" in last
