"""The command line's pure parts: the mount(8) helper's arguments, sizes, URL and API errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from notionfs import cli, lifecycle, mounthelper, preflight
from notionfs.errors import ApiError, AuthError, ConfigError, NotFoundError
from notionfs.models import MalformedResponse


def test_helper_maps_fstab_options_and_passes_fuse_ones_through() -> None:
    argv = ["https://api.example.test", "/mnt/n", "-n", "-o",
            "rw,noauto,_netdev,x-systemd.automount,comment=x,token_file=/etc/t,"
            "cache_size=1G,metadata_ttl=5,debug,allow_other,uid=1000", "-t", "fuse.notionfs"]
    assert mounthelper.mount_helper_argv(argv) == [
        "mount", "/mnt/n", "--quiet-success", "--token-file", "/etc/t", "--cache-size", "1G",
        "--metadata-ttl", "5", "--debug", "--api-url", "https://api.example.test",
        "-o", "allow_other,uid=1000",
    ]


def test_helper_ro_makes_a_read_only_mount_and_writable_insists_on_writes() -> None:
    assert mounthelper.mount_helper_argv(["notion", "/m", "-o", "rw,writable"]) == [
        "mount", "/m", "--quiet-success", "--writable"]
    assert mounthelper.mount_helper_argv(["notion", "/m", "-o", "rw"]) == [
        "mount", "/m", "--quiet-success"]
    assert mounthelper.mount_helper_argv(["notion", "/m", "-o", "ro,noauto"]) == [
        "mount", "/m", "--quiet-success", "--read-only"]


def test_helper_api_url_option_wins_over_a_label_source() -> None:
    command = mounthelper.mount_helper_argv(["notion", "/m", "-oapi_url=http://127.0.0.1:9"])
    assert command == ["mount", "/m", "--quiet-success", "--api-url", "http://127.0.0.1:9"]


def test_helper_fake_mount_does_nothing() -> None:
    assert mounthelper.mount_helper_argv(["notion", "/m", "-fv", "-o", "token_file=/t"]) is None


@pytest.mark.parametrize("argv, message", [
    (["notion", "/m", "-o", "token=secret_x"], "token_file"),
    (["notion", "/m", "-o", "token_file"], "needs a value"),
    (["notion"], "SOURCE and MOUNTPOINT"),
    (["notion", "/m", "-o"], "needs a value"),
])
def test_helper_refusals(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mounthelper.mount_helper_argv(argv)


def test_main_takes_the_mount_fuse_form(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "mount_command", lambda args: seen.append(args.argv) or 0)
    assert cli.main(["notion", "/m", "-o", "token_file=/t"]) == 0
    assert seen == [["mount", "/m", "--quiet-success", "--token-file", "/t"]]


@pytest.mark.parametrize("n, text", [(256 << 20, "256M"), (1 << 30, "1G"), (1536 << 20, "1536M"),
                                     (4096, "4K"), (1000, "1000"), (0, "0")])
def test_human_size(n: int, text: str) -> None:
    assert preflight.human_size(n) == text
    assert preflight.parse_size(text) == n


@pytest.mark.parametrize("url, message", [
    ("https://api.notion.com/v1", "drop /v1 (use https://api.notion.com)"),
    ("http://127.0.0.1:8700/v1/", "drop /v1 (use http://127.0.0.1:8700)"),
    ("api.notion.com", "not an http(s) URL"),
    ("ftp://api.notion.com", "not an http(s) URL"),
])
def test_bad_api_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        preflight.check_api_url(url)


def test_good_api_urls() -> None:
    for url in ("https://api.notion.com", "http://127.0.0.1:8700", "https://proxy.test/notion"):
        preflight.check_api_url(url)


@pytest.mark.parametrize("error, phrase", [
    (AuthError(403, "http_403", "Forbidden"), "is not a Notion API (GET /v1/users/me answered "
     "HTTP 403 without a Notion error object)"),
    (NotFoundError(404, "http_404", "Not Found"), "is not a Notion API"),
    (MalformedResponse("/v1/users/me: response is not JSON"), "is not a Notion API"),
    (AuthError(401, "unauthorized", "API token is invalid."),
     "Notion rejected the token (401 unauthorized)"),
    (ApiError(400, "invalid_request_url", "Invalid request URL."),
     "answered invalid_request_url"),
])
def test_token_check_errors_say_what_is_wrong(error: ApiError, phrase: str) -> None:
    assert phrase in preflight._explain_api_error("http://h:1", error)


def test_forward_log_prints_warnings_and_returns_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    log.write_text("2026-01-01 00:00:00,000 WARNING notionfs: from an earlier mount\n")
    start = log.stat().st_size
    with log.open("a") as f:
        f.write("2026-01-01 00:00:01,000 INFO notionfs: mounting\n"
                "2026-01-01 00:00:01,100 WARNING notionfs: token file t is readable\n"
                "notionfs: Notion rejected the token (401 unauthorized)\n")
    assert lifecycle._forward_log(str(log), start) == (
        "notionfs: Notion rejected the token (401 unauthorized)")
    assert capsys.readouterr().err == "notionfs: warning: token file t is readable\n"


def test_sd_notify_sends_one_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        lifecycle.sd_notify(path, "READY=1")
        assert sock.recv(100) == b"READY=1"


def test_mounts_at_unescapes_the_mount_table(tmp_path: Path) -> None:
    assert lifecycle._unescape_mount(r"/tmp/a\040b\134c") == "/tmp/a b\\c"
    assert lifecycle.mounts_at(tmp_path) == []
