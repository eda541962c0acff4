"""A separate process that stages one file and uploads it into a page with the upload engine
(for the tests that measure its memory or kill it mid-way). Prints one JSON line."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.journal import Journal
from notionfs.staging import StagingArea
from notionfs.uploadqueue import UploadQueue, new_block_target
from notionfs.uploads import UploadEngine
from notionfs.writeapi import WriteApi

MiB = 1 << 20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--page", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--parts-in-flight", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(token=os.environ["NOTION_TOKEN"], api_url=args.api_url,
                        rate_limit_rps=1000.0, rate_limit_burst=1000, backoff_base_s=0.01,
                        backoff_cap_s=0.05)
    root = Path(args.root)
    client = NotionClient(settings)
    journal = Journal(root / "journal.db")
    staging = StagingArea(root, 4096 * MiB)
    engine = UploadEngine(WriteApi(client), journal, staging,
                          parts_in_flight=args.parts_in_flight)
    queue = UploadQueue(engine)
    # Stage the file 1 MiB at a time (pseudo-random, so it does not compress or repeat).
    rng = random.Random(args.size)
    digest = hashlib.sha256()
    staged = staging.create()
    for offset in range(0, args.size, MiB):
        chunk = rng.randbytes(min(MiB, args.size - offset))
        digest.update(chunk)
        staged.write(offset, chunk)
    entry = queue.submit(staged, new_block_target(args.page, args.name), name=args.name)
    staged.close()
    print(json.dumps({"entry": entry.id, "sha256": digest.hexdigest()}), flush=True)
    # From here on, count only what the upload holds: reset the peak RSS to now.
    Path("/proc/self/clear_refs").write_text("5")
    baseline_kib = _status_kib("VmRSS")
    done = queue.wait(entry.id, timeout_s=600)
    peak_kib = _status_kib("VmHWM")
    queue.close()
    print(json.dumps({"block": done.result_id, "baseline_kib": baseline_kib,
                      "peak_kib": peak_kib}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
