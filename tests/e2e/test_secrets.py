"""Through the kernel: the Notion token and signed-URL credentials never reach a log, the
mount's output, its command line or a file host, even on error paths with --debug."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import FileSpec, Page, file_block

from .faultkit import MiB, drop_page_cache, is_generated, pattern_spec, read_all, read_at
from .mounting import Mount, mounted, requires_fuse
from .storecheck import scan_cache

pytestmark = [pytest.mark.e2e, requires_fuse]

# What a signed URL's query carries: a credential as good as the token for that file.
SIGNED_QUERY_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token")


STALLED = pattern_spec("stalled.bin", 4 * MiB, "secrets/stalled")


def _token() -> str:
    return "ntn_" + secrets.token_hex(20)


def _walk_everything(m: Mount) -> int:
    """Every listing, attribute and byte, errors tolerated: error paths must log too."""
    failures = []

    def failed(exc: OSError) -> None:
        failures.append(exc)

    for dirpath, _dirs, files in os.walk(m.path, onerror=failed):
        for name in files:
            path = Path(dirpath, name)
            if name == STALLED.name:
                continue  # kept uncached for the deadline's error path
            try:
                os.listxattr(path)
                if not is_generated(path):
                    drop_page_cache(path)
                read_all(path)
            except OSError as exc:
                failures.append(exc)
    return len(failures)


def _workspace_with_error_paths() -> tuple[samples.Workspace, FileSpec]:
    workspace = samples.nested_files()
    foreign = FileSpec("foreign.txt", data=b"never\n", external=True)
    workspace.pages.append(Page("Error paths", children=[
        file_block("file", foreign),
        file_block("file", STALLED),
    ]))
    return workspace, foreign


def test_debug_walk_under_faults_never_shows_the_token(tmp_path: Path) -> None:
    token = _token()
    workspace, foreign = _workspace_with_error_paths()
    args = ("--debug", "--deadline", "3", "--metadata-ttl", "300")
    with mounted(tmp_path, workspace, args=args, emulator_options={"token": token}) as m:
        api, host = m.emulator.faults, m.emulator.filehost.faults
        host.external_urls[foreign.id] = "file:///etc/passwd"
        cmdline = Path(f"/proc/{m.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        api.seed, api.error_rate, api.force_429 = 9, 0.1, 2
        host.error_status, host.error_rate = 500, 0.2
        host.cut_after_bytes, host.cut_rate = 10_000, 0.2
        assert _walk_everything(m) >= 1  # the foreign URL at least
        file_requests = m.emulator.filehost.counters.snapshot().log
        m.emulator.filehost.reset()
        api.error_rate = 0.0
        stalled = m.path / "Error paths" / STALLED.name
        # A revoked URL: 403, refreshed through the API.
        host.expire_all_now()
        assert read_at(stalled, 1 * MiB, 1000) == STALLED.data[MiB : MiB + 1000]
        # A revoked URL while Notion rejects the token: 403, then 401 on the refresh.
        m.emulator.token = "ntn_someone_else"
        host.expire_all_now()
        with pytest.raises(PermissionError):
            read_at(stalled, 2 * MiB, 1000)
        m.emulator.token = token
        # A read past its deadline.
        host.stall_s = 30.0
        with pytest.raises(OSError):
            read_at(stalled, 3 * MiB, 1000)
        file_requests += m.emulator.filehost.counters.snapshot().log
        m.emulator.filehost.reset()
        m.unmount()
        output = m.proc.stdout.read().decode(errors="replace") if m.proc.stdout else ""
        log = m.log_text()
        api_requests = m.emulator.counters.snapshot().log

    assert "DEBUG" in log  # --debug was on: the quietest level is no alibi
    for text, where in [(log, "log"), (output, "stdout/stderr"), (cmdline, "cmdline")]:
        assert token not in text, f"token in the mount's {where}"
        assert "Bearer" not in text, f"an Authorization value in the mount's {where}"
        for marker in SIGNED_QUERY_MARKERS:
            assert marker not in text, f"a signed URL's query in the mount's {where}"
    # The redacting log filter is a last defence; no code path should need it.
    assert "<token>" not in log and "<redacted>" not in log
    for line in ("refusing a file URL", "401 unauthorized", "no answer within 3 s",
                 "403 from"):
        assert line in log, f"the error path behind {line!r} did not run"
    assert len(file_requests) > 20, "the walk hardly reached the file host"
    for request in file_requests:
        assert "authorization" not in request.headers
        seen = " ".join([request.path, request.query, *request.headers.values()])
        assert token not in seen
    assert all(r.headers.get("authorization") in (f"Bearer {token}", None)
               for r in api_requests)
    # The metadata cache the walk left on disk: no token, no signed URL's query.
    cache = tmp_path / "cache" / "metadata"
    assert any(cache.iterdir()), "the walk kept no metadata cache"
    hits = scan_cache(cache, token)
    assert hits == [], [str(hit) for hit in hits]


def _mount_once(tmp_path: Path, args: tuple[str, ...], token: str) -> str:
    """Mount the smallest workspace with a token given by ``args``; the log of that run."""
    workspace = samples.wide_page(5)
    env = {"NOTION_TOKEN": ""}
    with mounted(tmp_path, workspace, args=args, env=env,
                 emulator_options={"token": token}) as m:
        assert os.listdir(m.path)
        log = m.log_text()
    return log


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_token_file_readable_by_others_is_warned_about(tmp_path: Path, mode: int) -> None:
    token = _token()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(mode)
    log = _mount_once(tmp_path, ("--token-file", str(token_file)), token)
    warned = "readable by other users" in log
    assert warned == bool(mode & 0o044)
    assert token not in log


def test_token_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    token = _token()
    log = _mount_once(tmp_path, ("--token", token), token)
    assert "--token is visible to every user" in log
    assert token not in log
