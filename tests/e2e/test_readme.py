"""Every `sh` snippet in README.md runs as written, in order, from the top of the clone.

Each snippet is preceded by a marker saying how it runs:
  <!-- readme-test: run -->                      bash, `set -e`: every command must succeed
  <!-- readme-test: background until "TEXT" -->  started, ready once its output shows TEXT,
                                                 left running for the snippets after it and
                                                 stopped with Ctrl-C (SIGINT) at the end
  <!-- readme-test: skip: REASON -->             not run, for the reason given

The environment differs from a reader's in two ways only: HOME is a fresh directory, and
NOTIONFS_API_URL points at an emulator that accepts the README's placeholder token `ntn_...`
(the snippets for a real workspace cannot reach api.notion.com from a test).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.server import Emulator

from .mounting import fusermount, requires_fuse

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PLACEHOLDER_TOKEN = "ntn_..."
# The emulator snippet listens on fixed ports: suites of other checkouts on this machine wait.
PORTS_LOCK = Path("/tmp/notionfs-readme-ports.lock")

_MARKER = re.compile(r"^\s*<!-- readme-test: (.*?) -->\s*$")
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass
class Snippet:
    line: int  # 1-based line of the opening fence
    mode: str  # "run", "background", "skip"
    detail: str  # the text waited for, or the reason for skipping
    code: str


def snippets(text: str) -> list[Snippet]:
    """The README's `sh` blocks with their markers; a block without one is an error."""
    lines = text.splitlines()
    found: list[Snippet] = []
    marker: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if (m := _MARKER.match(line)) is not None:
            marker = m.group(1)
        elif (fence := _FENCE.match(line)) is not None:
            indent, language = fence.groups()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            if language in ("sh", "bash", "shell", "console"):
                assert marker is not None, f"README.md:{i + 1}: sh snippet without a marker"
                body = textwrap.dedent("\n".join(lines[i + 1 : end]))
                found.append(Snippet(i + 1, *_parse_marker(marker, i + 1), body))
            marker = None
            i = end
        elif line.strip():
            marker = None  # a marker belongs to the fence right after it
        i += 1
    return found


def _parse_marker(marker: str, line: int) -> tuple[str, str]:
    if marker == "run":
        return "run", ""
    if (m := re.fullmatch(r'background until "(.+)"', marker)) is not None:
        return "background", m.group(1)
    if (m := re.fullmatch(r"skip: (.+)", marker)) is not None:
        return "skip", m.group(1)
    raise AssertionError(f"README.md:{line}: unknown marker {marker!r}")


def test_every_sh_snippet_is_marked_and_some_run() -> None:
    found = snippets(README.read_text(encoding="utf-8"))
    modes = [s.mode for s in found]
    assert modes.count("run") >= 4 and "background" in modes
    for snippet in found:
        if snippet.mode == "skip":
            assert len(snippet.detail) > 20, f"README.md:{snippet.line}: say why it is skipped"


def test_the_marker_parser_finds_fences_and_refuses_unmarked_ones() -> None:
    text = ("<!-- readme-test: run -->\n```sh\necho hi\n```\n\n   <!-- readme-test: skip: because"
            " it needs a real systemd -->\n   ```sh\n   systemctl --user start x\n   ```\n"
            "```\nplain, not sh\n```\n")
    found = snippets(text)
    assert [(s.mode, s.code) for s in found] == [("run", "echo hi"),
                                                  ("skip", "systemctl --user start x")]
    with pytest.raises(AssertionError, match="without a marker"):
        snippets("Some text\n\n```sh\nrm -rf /\n```\n")


def _notionfs_mounts_under(*roots: Path) -> list[Path]:
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split(" - ")[0].split(" ")
            fstype = line.split(" - ")[1].split(" ")[0]
            target = Path(fields[4].replace("\\040", " "))
            if fstype == "fuse.notionfs" and any(root in target.parents for root in roots):
                found.append(target)
    return found


class Background:
    """A snippet left running: its output is collected by a thread."""

    def __init__(self, snippet: Snippet, env: dict[str, str]) -> None:
        self.snippet = snippet
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", "-c", "set -e -o pipefail\n" + snippet.code], cwd=REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(self.snippet.detail in line for line in self.output):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"README.md:{self.snippet.line} did not print {self.snippet.detail!r} "
                    f"(exit {self.proc.poll()}):\n{''.join(self.output)}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise AssertionError(f"README.md:{self.snippet.line} ignored Ctrl-C") from None


@pytest.fixture
def ports_lock() -> Iterator[None]:
    with open(PORTS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@requires_fuse
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_snippets_run_as_written(tmp_path: Path, ports_lock: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with Emulator(samples.nested_files(), token=PLACEHOLDER_TOKEN) as emulator:
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTION_TOKEN", "NOTION_VERSION", "VIRTUAL_ENV")}
        env.update(HOME=str(home), NOTIONFS_API_URL=emulator.api_url)
        background: list[Background] = []
        ran = 0
        try:
            for snippet in snippets(README.read_text(encoding="utf-8")):
                if snippet.mode == "skip":
                    continue
                if snippet.mode == "background":
                    started = Background(snippet, env)
                    background.append(started)
                    started.wait_ready(timeout_s=300)
                    continue
                done = subprocess.run(["bash", "-c", "set -e -o pipefail\n" + snippet.code],
                                      cwd=REPO, env=env, capture_output=True, text=True,
                                      timeout=600, stdin=subprocess.DEVNULL)
                where = f"README.md:{snippet.line}"
                assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
                assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr}"
                ran += 1
                # Whatever a snippet left mounted answers with a listing.
                for mount in _notionfs_mounts_under(home, REPO):
                    assert os.listdir(mount), f"{where} left an empty mount at {mount}"
            for started in background:
                assert started.stop() in (0, 130), "".join(started.output)
            # The snippets unmount what they mount.
            assert _notionfs_mounts_under(home, REPO) == []
        finally:
            for started in background:
                if started.proc.poll() is None:
                    os.killpg(started.proc.pid, signal.SIGKILL)
            for mount in _notionfs_mounts_under(home, REPO):
                subprocess.run([fusermount(), "-u", "-z", str(mount)], check=False, timeout=20)
            demo = REPO / "notion-demo"
            if demo.is_dir() and not os.listdir(demo):
                demo.rmdir()
        assert ran >= 4
        assert emulator.counters.total > 0  # the real-workspace snippets reached "Notion"
