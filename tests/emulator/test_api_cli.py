"""The emulator's command line: options, banner, serving until stopped."""

from __future__ import annotations

import argparse
import re
import sys
import threading
import types
from pathlib import Path

import pytest

from notionfs.emulator import cli
from notionfs.emulator.model import Page, Workspace
from tests.emulator.conftest import plain_http_client


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = parse()
    assert args.port == 0 and args.files_port == 0
    assert args.rate_limit == 3.0
    assert args.expiry_s == 3600.0
    assert args.data_dir == Path("~/.cache/notionfs/demo")


def test_options() -> None:
    args = parse(
        "--port",
        "8123",
        "--files-port",
        "8124",
        "--token",
        "t",
        "--expiry-s",
        "60",
        "--rate-limit",
        "0",
        "--data-dir",
        "/tmp/demo",
    )
    assert (args.port, args.files_port, args.token) == (8123, 8124, "t")
    assert (args.expiry_s, args.rate_limit, args.data_dir) == (60.0, 0.0, Path("/tmp/demo"))


class ProbeOnWait(threading.Event):
    """Stands in for Ctrl-C: when ``run`` starts waiting, query the emulator, then return."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__()
        self.capsys = capsys
        self.banner = ""
        self.me: dict[str, object] = {}

    def wait(self, timeout: float | None = None) -> bool:
        self.banner = self.capsys.readouterr().out
        api_url = re.search(r"API base URL : (\S+)", self.banner)
        token = re.search(r"token        : (\S+)", self.banner)
        assert api_url and token, self.banner
        headers = {"Authorization": f"Bearer {token[1]}", "Notion-Version": "2025-09-03"}
        with plain_http_client(base_url=api_url[1], headers=headers) as client:
            self.me = client.get("/v1/users/me").json()
        return True


def test_run_serves_the_demo_until_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built: list[Path] = []

    def build_demo(data_dir: Path) -> Workspace:
        built.append(data_dir)
        return Workspace(name="Demo Space", pages=[Page("Welcome")])

    # The real demo generates large media; the CLI only needs a workspace from it.
    fake_demo = types.ModuleType("notionfs.emulator.demo")
    fake_demo.build_demo = build_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "notionfs.emulator.demo", fake_demo)

    probe = ProbeOnWait(capsys)
    data_dir = tmp_path / "demo"
    args = parse("--token", "secret_cli", "--data-dir", str(data_dir), "--rate-limit", "0")
    assert cli.run(args, stop=probe) == 0
    assert built == [data_dir] and data_dir.is_dir()
    assert probe.me["bot"]["owner"] == {"type": "workspace", "workspace": True}
    assert probe.me["bot"]["workspace_name"] == "Demo Space"
    assert "files URL    : http://127.0.0.1:" in probe.banner
    assert "curl -s -X POST http://127.0.0.1:" in probe.banner
    assert "Notion-Version: 2025-09-03" in probe.banner
