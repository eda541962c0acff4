"""The bench's emulator process: serves one workspace and answers counter queries on stdin.

Run apart from the measuring process so the file host never shares its GIL. Prints one JSON
line when ready (URLs, token, one signed and one external URL per named file), then reads
commands, one per line, answering each with one JSON line:

- ``stats``: the file host's requests and body bytes, and the API's calls by route;
- ``reset``: counters back to zero (answers ``{}``);
- ``sign NAME``: a fresh signed URL for file NAME; ``sign-all``: one for every file.

End of input stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from notionfs.emulator import media, samples
from notionfs.emulator.demo import build_demo
from notionfs.emulator.model import FileSpec, Page, Workspace, file_block
from notionfs.emulator.server import Emulator

MiB = 1 << 20


def data_workspace(data_dir: Path, big_bytes: int) -> Workspace:
    """Page "Bench" holding ``big.bin`` (on disk, sent with sendfile) and ``small.bin`` (1 MiB)."""
    big = FileSpec(name="big.bin", path=data_dir / f"bench-{big_bytes}.bin")
    media.write_pattern_file(big.path, big_bytes, "bench/big")  # type: ignore[arg-type]
    small = FileSpec(name="small.bin", data=media.pattern_bytes(MiB, "bench/small"))
    page = Page("Bench", children=[file_block("file", big), file_block("file", small)])
    workspace = Workspace(name="Bench", pages=[page], seed="bench")
    workspace.assign_ids()
    return workspace


def build(kind: str, data_dir: Path, big_bytes: int, flat_entries: int) -> Workspace:
    if kind == "data":
        return data_workspace(data_dir, big_bytes)
    if kind == "flat":
        return samples.flat_dir(flat_entries)
    if kind == "demo":
        return build_demo(data_dir)
    raise SystemExit(f"unknown workspace {kind!r}")


def named_files(emulator: Emulator) -> dict[str, FileSpec]:
    return {spec.name: spec for spec in emulator.index.files.values()}


def ready_line(emulator: Emulator, files: dict[str, FileSpec]) -> dict[str, Any]:
    host = emulator.filehost
    described = {}
    for name, spec in files.items():
        if name in ("big.bin", "small.bin"):
            described[name] = {
                "size": spec.size,
                "path": str(spec.path) if spec.path else None,
                "signed_url": host.signed_url(spec, 3600)[0],
                "external_url": host.external_url(spec),
            }
    return {
        "api_url": emulator.api_url,
        "files_url": emulator.files_url,
        "token": emulator.token,
        "files": described,
    }


def stats(emulator: Emulator) -> dict[str, Any]:
    files = emulator.filehost.counters.snapshot()
    api = emulator.counters.snapshot()
    return {
        "file_requests": files.requests,
        "file_bytes_sent": files.bytes_sent,
        "api_calls": api.total,
        "api_by_route": dict(api.by_route),
    }


def answer(emulator: Emulator, files: dict[str, FileSpec], line: str) -> dict[str, Any]:
    command, _, argument = line.strip().partition(" ")
    if command == "stats":
        return stats(emulator)
    if command == "reset":
        emulator.reset()
        return {}
    if command == "sign":
        return {"url": emulator.filehost.signed_url(files[argument], 3600)[0]}
    if command == "sign-all":
        return {"urls": [emulator.filehost.signed_url(spec, 3600)[0] for spec in files.values()]}
    return {"error": f"unknown command {command!r}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", choices=["data", "flat", "demo"])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--flat-entries", type=int, default=1000)
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    workspace = build(args.workspace, args.data_dir, args.big_mib * MiB, args.flat_entries)
    # No API rate limit: listing benchmarks measure notionfs, with its own limiter set high.
    # Full pages: Notion may answer with fewer than page_size results, but rarely does; the
    # listing benchmark counts calls against ceil(entries / 100).
    with Emulator(workspace, rate_limit_rps=0.0, short_pages=False) as emulator:
        files = named_files(emulator)
        print(json.dumps(ready_line(emulator, files)), flush=True)
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(answer(emulator, files, line)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
