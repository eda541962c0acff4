"""Saving into the mount against uploading the same bytes directly, to the same emulator.

The direct upload is what a careful standalone client does with Notion's File Upload API,
done with curl: create the upload, send its parts (the mount's part size, as many in flight
as the mount sends), complete it, append the block. The mount's figure is `cp` into a page
folder, timed until `cp` returns: cp's close() returns once Notion has the file. Each run
mounts afresh and saves a small file first, untimed (a mount asks Notion its upload limit
at its first save); the calls counted are the save's own and the folder's next listing.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from notionfs.config import Settings

from .procs import EmulatorProcess, mount_notionfs
from .report import Results

MiB = 1 << 20
VERSION = "2025-09-03"
CONTENT_TYPE = "video/mp4"


def _api(emulator: EmulatorProcess) -> httpx.Client:
    return httpx.Client(base_url=emulator.api_url, timeout=120, headers={
        "Authorization": f"Bearer {emulator.token}", "Notion-Version": VERSION})


def _page_id(api: httpx.Client, title: str) -> str:
    found = api.post("/v1/search", json={"query": title}).raise_for_status().json()
    for item in found["results"]:
        if item.get("object") == "page":
            return str(item["id"])
    raise RuntimeError(f"no page {title!r} in the bench workspace")


def _curl_send(url: str, token: str, part: Path, number: int | None) -> None:
    command = ["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST", url,
               "-H", f"Authorization: Bearer {token}", "-H", f"Notion-Version: {VERSION}",
               "-F", f"file=@{part};type={CONTENT_TYPE}"]
    if number is not None:
        command += ["-F", f"part_number={number}"]
    subprocess.run(command, check=True)


def split_parts(source: Path, part_bytes: int, into: Path) -> list[Path]:
    """``source`` cut into the parts a multi_part upload sends (files for curl's -F @)."""
    into.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    with open(source, "rb") as f:
        while chunk := f.read(part_bytes):
            part = into / f"part{len(parts) + 1:05d}"
            part.write_bytes(chunk)
            parts.append(part)
    return parts


def direct_upload(emulator: EmulatorProcess, page_id: str, name: str, parts: list[Path],
                  in_flight: int) -> float:
    """Seconds for a direct upload of ``parts`` attached to ``page_id`` as a video block."""
    with _api(emulator) as api:
        start = time.perf_counter()
        body: dict[str, Any] = {"filename": name, "content_type": CONTENT_TYPE}
        if len(parts) > 1:
            body.update(mode="multi_part", number_of_parts=len(parts))
        upload = api.post("/v1/file_uploads", json=body).raise_for_status().json()
        send_url = f"{emulator.api_url}/v1/file_uploads/{upload['id']}/send"
        if len(parts) == 1:
            _curl_send(send_url, emulator.token, parts[0], None)
        else:
            with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
                sends = [pool.submit(_curl_send, send_url, emulator.token, part, number)
                         for number, part in enumerate(parts, 1)]
                for send in sends:
                    send.result()
            api.post(f"/v1/file_uploads/{upload['id']}/complete", json={}).raise_for_status()
        block = {"type": "video", "video": {"type": "file_upload",
                                            "file_upload": {"id": upload["id"]}}}
        api.patch(f"/v1/blocks/{page_id}/children",
                  json={"children": [block]}).raise_for_status()
        return time.perf_counter() - start


def _cp_seconds(source: Path, folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["cp", str(source), str(folder)], check=True)
    return time.perf_counter() - start


def uploads(results: Results, emulator: EmulatorProcess, work_dir: Path, runs: int,
            sizes: dict[str, int]) -> None:
    """For each size (key -> bytes): `cp` into the mount and the direct upload, alternating
    run by run so both share the machine's load of the moment."""
    defaults = Settings()
    with _api(emulator) as api:
        page_id = _page_id(api, "Bench")
    for key, size in sizes.items():
        source = work_dir / f"upload-{key}.mp4"
        with open(source, "wb") as f:
            for offset in range(0, size, MiB):
                f.write(bytes([offset // MiB % 251]) * min(MiB, size - offset))
        single = size <= 20 * 1000 * 1000
        parts = split_parts(source, size if single else defaults.upload_part_bytes,
                            work_dir / f"parts-{key}")
        for run in range(runs):
            mount = mount_notionfs(
                emulator, work_dir / "mnt", work_dir / f"notionfs-upload-{key}-{run}.log",
                extra=("--deadline", "600"), metadata_cache=work_dir / f"cache-up{key}{run}",
            )
            with mount:
                folder = mount.path / "Bench"
                # A save first (not timed): the mount asks Notion its upload limit once.
                (folder / "warm-up.txt").write_bytes(b"warm-up\n")
                (folder / "warm-up.txt").unlink()
                os.listdir(folder)  # listed before the clock starts, as a save finds it
                before = emulator.stats()["api_calls"]
                seconds = _cp_seconds(source, folder)
                results.add(f"upload_{key}_calls", emulator.stats()["api_calls"] - before)
                (folder / source.name).unlink()
            results.add(f"upload_{key}_cp_mbps", size / seconds / 1e6)
            seconds = direct_upload(emulator, page_id, f"direct-{run}.mp4", parts,
                                    defaults.upload_parts_in_flight)
            results.add(f"upload_{key}_curl_mbps", size / seconds / 1e6)
        source.unlink()
        for part in parts:
            part.unlink()


def describe(sizes: dict[str, int]) -> str:
    return json.dumps({k: v // MiB for k, v in sizes.items()})
