"""The File Upload API of the emulator, against Notion's recorded answers and published rules."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from typing import Any

import pytest

from notionfs.emulator.uploads import (
    FREE_MAX_FILE_BYTES,
    PART_MAX_BYTES,
    PART_MIN_BYTES,
    SINGLE_PART_MAX_BYTES,
    parse_form,
)
from tests.emulator.conftest import UUID_DASHED, World, assert_error, children
from tests.emulator.writing import (
    Clock,
    append,
    assert_same_shape,
    create_upload,
    download,
    file_block,
    parse_time,
    recording,
    send,
    upload_file,
)

MiB = 1024 * 1024


def test_create_single_part_matches_recording(world: World) -> None:
    recorded = recording("test_file_uploads_create__00")
    client = world.client()
    answer = create_upload(client, **recorded["request_body"])
    assert_same_shape(answer, recorded["body"])
    assert list(answer) == list(recorded["body"])  # Notion's key order too
    assert answer["status"] == "pending" and answer["content_length"] is None
    assert UUID_DASHED.match(answer["id"])
    assert answer["upload_url"] == f"{world.emulator.api_url}/v1/file_uploads/{answer['id']}/send"
    created = parse_time(answer["created_time"])
    assert created.second == 0 and created.microsecond == 0  # minute precision, as Notion
    assert parse_time(answer["expiry_time"]) - created == timedelta(hours=1)
    assert answer["created_by"]["type"] == "bot"


def test_create_multi_part_matches_recording(world: World) -> None:
    recorded = recording("test_file_uploads_create_multipart__00", "2022-06-28")
    answer = create_upload(world.client("2022-06-28"), **recorded["request_body"])
    # The 2022 recording predates in_trash on uploads (the 2026 ones carry it).
    assert_same_shape(answer, recorded["body"], may_add=frozenset({"in_trash"}))
    assert answer["number_of_parts"] == {"total": 3, "sent": 0}


def test_send_and_retrieve_match_recordings(world: World) -> None:
    sent_recording = recording("test_file_uploads_send__01")
    got_recording = recording("test_file_uploads_retrieve__02")
    client = world.client()
    upload = create_upload(client, **recording("test_file_uploads_send__00")["request_body"])
    data = b"This is a test file.\nabc"  # 25 bytes, as recorded
    response = send(client, upload["id"], data + b"\n", "test_file_small.txt", "text/plain")
    assert response.status_code == 200, response.text
    assert_same_shape(response.json(), sent_recording["body"])
    assert list(response.json()) == list(sent_recording["body"])
    assert response.json()["content_length"] == 25 == sent_recording["body"]["content_length"]
    got = client.get(f"/v1/file_uploads/{upload['id']}").json()
    assert_same_shape(got, got_recording["body"])
    assert got["status"] == "uploaded" and "upload_url" not in got


def test_list_matches_recording_filters_and_pages(world: World) -> None:
    recorded = recording("test_file_uploads_list_with_status_filter__02")
    client = world.client()
    first = create_upload(client, filename="a.txt")
    second = create_upload(client, filename="b.txt")
    done = upload_file(client, "c.png", b"\x89PNG", "image/png")
    pending = client.get("/v1/file_uploads", params={"status": "pending"}).json()
    assert_same_shape(pending, recorded["body"])
    assert [u["id"] for u in pending["results"]] == [second["id"], first["id"]]  # newest first
    uploaded = client.get("/v1/file_uploads", params={"status": "uploaded"}).json()
    assert [u["id"] for u in uploaded["results"]] == [done]
    page = client.get("/v1/file_uploads", params={"page_size": 2}).json()
    assert page["has_more"] is True and page["next_cursor"] == first["id"]
    rest = client.get("/v1/file_uploads", params={"start_cursor": page["next_cursor"]}).json()
    assert [u["id"] for u in rest["results"]] == [first["id"]] and rest["has_more"] is False
    assert_error(client.get("/v1/file_uploads", params={"status": "done"}), 400,
                 "validation_error")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"mode": "chunked"}, "body.mode"),
        ({"mode": "multi_part", "filename": "a.mp4"}, "number_of_parts should be defined"),
        ({"mode": "multi_part", "filename": "a.mp4", "number_of_parts": 0}, "`1`"),
        ({"mode": "multi_part", "filename": "a.mp4", "number_of_parts": 10001}, "`10000`"),
        ({"mode": "multi_part", "number_of_parts": 2}, "filename should be defined"),
        ({"filename": "a.txt", "number_of_parts": 2}, "number_of_parts should be not present"),
        ({"filename": "archive.zip"}, "`.zip` is not supported"),
        ({"filename": "notes.txt", "content_type": "image/png"}, "does not match"),
        ({"filename": "x" * 897 + ".txt"}, "900 bytes"),
        ({"content_type": "application/x-tar"}, "not supported"),
        ({"filename": "README"}, "no extension"),
        ({"mode": "external_url", "filename": "a.pdf"}, "external_url should be defined"),
    ],
)
def test_create_refuses_what_notion_refuses(
    world: World, body: dict[str, Any], fragment: str
) -> None:
    response = world.client().post("/v1/file_uploads", json=body)
    assert fragment in assert_error(response, 400, "validation_error")["message"]


def test_create_infers_the_missing_half_of_name_and_type(world: World) -> None:
    client = world.client()
    assert create_upload(client, filename="photo.JPG")["content_type"] == "image/jpeg"
    named = create_upload(client, filename="report", content_type="application/pdf")
    assert named["filename"] == "report.pdf"
    bare = create_upload(client)
    assert bare["filename"] is None and bare["content_type"] is None
    # single_part without a name: the sent form names the file.
    response = send(client, bare["id"], b"%PDF-1.4", "sent.pdf", "application/pdf")
    assert response.json()["filename"] == "sent.pdf"
    assert response.json()["content_type"] == "application/pdf"


def test_send_errors(world: World) -> None:
    client = world.client()
    upload = create_upload(client, filename="a.txt")
    url = f"/v1/file_uploads/{upload['id']}/send"
    assert_error(client.post(url, json={"file": "x"}), 400, "validation_error")  # not a form
    no_file = client.post(url, files={"other": ("a.txt", b"x")})
    assert "body.file" in assert_error(no_file, 400, "validation_error")["message"]
    with_part = send(client, upload["id"], b"x", "a.txt", part_number=1)
    assert "part_number" in assert_error(with_part, 400, "validation_error")["message"]
    wrong_type = send(client, upload["id"], b"x", "a.txt", "image/png")
    assert "content type" in assert_error(wrong_type, 400, "validation_error")["message"]
    assert send(client, upload["id"], b"x", "a.txt").status_code == 200
    again = send(client, upload["id"], b"y", "a.txt")
    assert "`uploaded`" in assert_error(again, 400, "validation_error")["message"]
    complete = client.post(f"/v1/file_uploads/{upload['id']}/complete")
    assert_error(complete, 400, "validation_error")
    missing = "/v1/file_uploads/0123456789abcdef0123456789abcdef"
    assert_error(client.get(missing), 404, "object_not_found")
    assert_error(client.post(missing + "/send", files={"file": ("a", b"")}), 404,
                 "object_not_found")
    assert_error(client.get("/v1/file_uploads/not-an-id"), 400, "validation_error")


def test_single_part_cap_is_20_mb(world: World) -> None:
    client = world.client()
    upload = create_upload(client, filename="big.txt")
    response = send(client, upload["id"], b"a" * (SINGLE_PART_MAX_BYTES + 1), "big.txt")
    assert "multi_part" in assert_error(response, 400, "validation_error")["message"]
    assert client.get(f"/v1/file_uploads/{upload['id']}").json()["status"] == "pending"


def test_thirty_mib_in_three_parts_with_one_failed_part_retried(world: World) -> None:
    emulator = world.emulator
    client = world.client()
    data = random.Random(30).randbytes(30 * MiB)
    parts = [data[i : i + 10 * MiB] for i in range(0, len(data), 10 * MiB)]
    upload = create_upload(client, mode="multi_part", filename="walk.mp4",
                           content_type="video/mp4", number_of_parts=3)
    emulator.faults.writes.fail_part(2)
    assert send(client, upload["id"], parts[0], "walk.mp4", part_number=1).status_code == 200
    failed = send(client, upload["id"], parts[1], "walk.mp4", part_number=2)
    assert_error(failed, 500, "internal_server_error")
    state = client.get(f"/v1/file_uploads/{upload['id']}").json()
    assert state["status"] == "pending" and state["number_of_parts"] == {"total": 3, "sent": 1}
    early = client.post(f"/v1/file_uploads/{upload['id']}/complete")
    assert "Missing part numbers: 2, 3" in assert_error(early, 400, "validation_error")["message"]
    # Parts may arrive out of order; the retried part goes last.
    assert send(client, upload["id"], parts[2], "walk.mp4", part_number=3).status_code == 200
    retried = send(client, upload["id"], parts[1], "walk.mp4", part_number=2)
    assert retried.status_code == 200
    assert retried.json()["number_of_parts"] == {"total": 3, "sent": 3}
    assert retried.json()["status"] == "pending"
    done = client.post(f"/v1/file_uploads/{upload['id']}/complete")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "uploaded" and done.json()["content_length"] == 30 * MiB
    assert emulator.counters.calls("POST /v1/file_uploads/{id}/send") == 4
    page = world.refs.big_page.id
    append(client, page, [file_block("video", upload["id"])])
    video = children(client, page)[-1]
    assert video["type"] == "video"
    got = download(world, video["video"])
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_part_size_rules(world: World) -> None:
    client = world.client()
    upload = create_upload(client, mode="multi_part", filename="v.mp4", number_of_parts=3)
    small = send(client, upload["id"], b"x" * (PART_MIN_BYTES - 1), "v.mp4", part_number=1)
    assert "at least" in assert_error(small, 400, "validation_error")["message"]
    big = send(client, upload["id"], b"x" * (PART_MAX_BYTES + 1), "v.mp4", part_number=2)
    assert "at most" in assert_error(big, 400, "validation_error")["message"]
    beyond = send(client, upload["id"], b"x", "v.mp4", part_number=4)
    assert "part_number" in assert_error(beyond, 400, "validation_error")["message"]
    none = send(client, upload["id"], b"x", "v.mp4")
    assert "part_number" in assert_error(none, 400, "validation_error")["message"]
    # The last part may be small; the others exactly at the bounds pass.
    assert send(client, upload["id"], b"x" * 3, "v.mp4", part_number=3).status_code == 200
    assert send(client, upload["id"], b"x" * PART_MIN_BYTES, "v.mp4",
                part_number=1).status_code == 200
    assert send(client, upload["id"], b"x" * PART_MAX_BYTES, "v.mp4",
                part_number=2).status_code == 200
    done = client.post(f"/v1/file_uploads/{upload['id']}/complete").json()
    assert done["content_length"] == PART_MIN_BYTES + PART_MAX_BYTES + 3


def test_free_workspace_limit_as_users_me_tells_it(world: World) -> None:
    recorded = recording("test_users_me__00")
    emulator = world.emulator
    client = world.client()
    emulator.uploads.plan = "free"
    me = client.get("/v1/users/me").json()
    assert_same_shape(me, recorded["body"], may_lack=frozenset({"request_id"}))
    assert set(me["bot"]) == set(recorded["body"]["bot"])
    assert me["bot"]["workspace_limits"] == {"max_file_upload_size_in_bytes": 5242880}
    assert UUID_DASHED.match(me["bot"]["workspace_id"])
    at_limit = create_upload(client, filename="ok.txt")
    assert send(client, at_limit["id"], b"a" * FREE_MAX_FILE_BYTES, "ok.txt").status_code == 200
    over = create_upload(client, filename="big.txt")
    refused = send(client, over["id"], b"a" * (FREE_MAX_FILE_BYTES + 1), "big.txt")
    message = assert_error(refused, 400, "validation_error")["message"]
    assert "5242880" in message
    # In parts: the part that crosses the limit is refused.
    parts = create_upload(client, mode="multi_part", filename="v.mp4", number_of_parts=2)
    assert send(client, parts["id"], b"a" * PART_MIN_BYTES, "v.mp4",
                part_number=1).status_code == 200
    crossing = send(client, parts["id"], b"a", "v.mp4", part_number=2)
    assert "5242880" in assert_error(crossing, 400, "validation_error")["message"]
    emulator.uploads.plan = "paid"
    limit = client.get("/v1/users/me").json()["bot"]["workspace_limits"]
    assert limit == {"max_file_upload_size_in_bytes": 5 * 1024**3}
    assert send(client, over["id"], b"a" * (FREE_MAX_FILE_BYTES + 1), "big.txt").status_code == 200


def test_uploads_expire_an_hour_after_creation_unless_attached(world: World) -> None:
    clock = Clock()
    world.emulator.clock = clock
    client = world.client()
    idle = create_upload(client, filename="idle.txt")
    sent = upload_file(client, "sent.txt", b"sent", "text/plain")
    kept = upload_file(client, "kept.txt", b"kept", "text/plain")
    append(client, world.refs.big_page.id, [file_block("file", kept)])
    clock.advance(minutes=59)  # created at 09:11:12, stamped 09:11: expires at 10:11
    assert client.get(f"/v1/file_uploads/{idle['id']}").json()["status"] == "pending"
    clock.advance(minutes=1)
    expired = client.get(f"/v1/file_uploads/{idle['id']}").json()
    assert expired["status"] == "expired" and expired["expiry_time"] is None
    assert "upload_url" not in expired
    assert expired["last_edited_time"] == idle["expiry_time"]
    assert_error(send(client, idle["id"], b"late", "idle.txt"), 400, "validation_error")
    refused = world.client().patch(f"/v1/blocks/{world.refs.big_page.id}/children",
                                   json={"children": [file_block("file", sent)]})
    assert "`expired`" in assert_error(refused, 400, "validation_error")["message"]
    attached = client.get(f"/v1/file_uploads/{kept}").json()
    assert attached["status"] == "uploaded" and attached["expiry_time"] is None
    statuses = {u["id"]: u["status"] for u in client.get("/v1/file_uploads").json()["results"]}
    assert statuses == {idle["id"]: "expired", sent: "expired", kept: "uploaded"}


def test_expire_all_now_switch(world: World) -> None:
    client = world.client()
    upload = create_upload(client, filename="a.txt")
    world.emulator.uploads.expire_all_now()
    assert client.get(f"/v1/file_uploads/{upload['id']}").json()["status"] == "expired"


def test_external_url_imports_from_the_emulators_own_host(world: World) -> None:
    recorded = recording("test_file_uploads_create_external__00")
    client = world.client()
    blocks = children(client, world.refs.home.id)
    pdf = next(b for b in blocks if b["type"] == "pdf")
    url = pdf["pdf"]["external"]["url"]
    answer = create_upload(client, mode="external_url", filename="remote.pdf", external_url=url)
    assert_same_shape(answer, recorded["body"])
    assert answer["status"] == "pending"
    got = client.get(f"/v1/file_uploads/{answer['id']}").json()
    assert got["status"] == "uploaded"
    assert got["content_length"] == len(world.refs.external.data or b"")
    assert got["file_import_result"]["type"] == "success"
    append(client, world.refs.big_page.id, [file_block("pdf", answer["id"])])
    new_pdf = children(client, world.refs.big_page.id)[-1]
    assert download(world, new_pdf["pdf"]) == world.refs.external.data
    failing = create_upload(client, mode="external_url", filename="x.pdf",
                            external_url="https://example.com/x.pdf")
    failed = client.get(f"/v1/file_uploads/{failing['id']}").json()
    assert failed["status"] == "failed" and failed["file_import_result"]["type"] == "error"


def test_form_parser_reads_fields_and_binary_bytes() -> None:
    data = bytes(range(256)) * 3 + b"\r\n--notboundary"
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"part_number\"\r\n\r\n2\r\n"
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--XyZ--\r\n"
    )
    form = parse_form('multipart/form-data; boundary="XyZ"', body)
    assert form["part_number"].data == b"2"
    assert form["file"].data == data and form["file"].filename == "a b.bin"
    with pytest.raises(ValueError):
        parse_form("multipart/form-data", body)
    with pytest.raises(ValueError):
        parse_form("multipart/form-data; boundary=XyZ", body[:40])
