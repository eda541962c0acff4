"""What a new user runs into first, through the kernel: the mount command's answers, df, modes,
the trash, GLib's view, --help, and what installing prints."""

from __future__ import annotations

import errno
import http.server
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs import __version__
from notionfs.emulator import samples
from notionfs.emulator.server import Emulator

from .mounting import fusermount, mounted, requires_fuse
from .test_lifecycle import lift, mount_entry, wait_until

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
FOLDER = "Nested files"  # a top-level page of samples.nested_files()
FILE = "Nested files/top.png"
OTHER_USER = "notionfs-e2e"


def notionfs(*args: str, env: dict[str, str] | None = None,
             timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """The `notionfs` command as a user types it (background mode unless told otherwise)."""
    return subprocess.run([sys.executable, "-m", "notionfs", *args], env=env,
                          capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)


def api_env(emulator: Emulator, **extra: str) -> dict[str, str]:
    env = dict(os.environ, NOTION_TOKEN=emulator.token, NOTIONFS_API_URL=emulator.api_url)
    env.update(extra)
    return env


def assert_one_line_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "mounted at" not in done.stdout
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "warning:" not in line]
    assert len(errors) == 1, done.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(samples.nested_files()) as emu:
        yield emu


# ---- the background command says "mounted" only for its own, answering mount ------------------


@requires_fuse
def test_a_mountpoint_holding_a_live_mount_is_an_error(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files()) as m:
        before = mount_entry(m.path)
        done = notionfs("mount", str(m.path), "--log-file", str(tmp_path / "second.log"),
                        env=api_env(m.emulator))
        assert_one_line_error(done, "already mounted")
        assert mount_entry(m.path) == before  # the first mount is untouched and still answers
        assert FOLDER in os.listdir(m.path)


@requires_fuse
def test_a_child_that_dies_after_lifting_a_dead_mount_is_an_error(tmp_path: Path) -> None:
    """kill -9 left a dead mount; the next mount, with a wrong token, lifts it and fails."""
    with mounted(tmp_path, samples.nested_files()) as m:
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        try:
            with pytest.raises(OSError) as dead:
                os.listdir(m.path)
            assert dead.value.errno == errno.ENOTCONN
            done = notionfs("mount", str(m.path), "--log-file", str(tmp_path / "again.log"),
                            env=api_env(m.emulator, NOTION_TOKEN="secret_wrong"))
            assert_one_line_error(done, "Notion rejected the token (401 unauthorized)")
            # The warning the child logged is on the terminal too.
            assert re.search(r"^notionfs: warning: .* holds a dead mount", done.stderr, re.M)
            assert mount_entry(m.path) is None  # lifted, and nothing mounted in its place
        finally:
            lift(m.path)


@requires_fuse
def test_success_means_our_mount_answers_and_warnings_reach_the_terminal(
    tmp_path: Path, emulator: Emulator
) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(emulator.token + "\n")
    token_file.chmod(0o644)  # readable by others: warned about
    log_path = tmp_path / "bg.log"
    env = {k: v for k, v in api_env(emulator).items() if k != "NOTION_TOKEN"}
    try:
        done = notionfs("mount", str(mountpoint), "--token-file", str(token_file),
                        "--log-file", str(log_path), env=env)
        assert done.returncode == 0, done.stderr
        assert f"mounted at {mountpoint}" in done.stdout
        assert f"notionfs: warning: token file {token_file} is readable by other users" in (
            done.stderr)
        entry = mount_entry(mountpoint)
        assert entry is not None and entry["fstype"] == "fuse.notionfs"
        assert FOLDER in os.listdir(mountpoint)
        assert emulator.token not in done.stdout + done.stderr + log_path.read_text()
    finally:
        subprocess.run([fusermount(), "-u", str(mountpoint)], check=False, timeout=20)
        lift(mountpoint)
    assert wait_until(lambda: "unmounted" in log_path.read_text(encoding="utf-8"))


@requires_fuse
def test_scripts_demo_run_twice_says_the_second_failed(tmp_path: Path) -> None:
    mountpoint = tmp_path / "demo"
    demo = [str(REPO / "scripts" / "demo"), str(mountpoint)]
    try:
        first = subprocess.run(demo, capture_output=True, text=True, timeout=600,
                               stdin=subprocess.DEVNULL)
        assert first.returncode == 0, first.stderr
        assert f"mounted at {mountpoint}" in first.stdout
        second = subprocess.run(demo, capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL)
        assert second.returncode != 0
        assert "mounted at" not in second.stdout
        assert "already mounted" in second.stderr
        assert os.listdir(mountpoint)  # the first one still serves
    finally:
        subprocess.run([fusermount(), "-u", str(mountpoint)], check=False, timeout=20)
        lift(mountpoint)


# ---- --api-url that is not a Notion API -----------------------------------------------------


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"<!doctype html><html><body>Welcome to my blog</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@requires_fuse
@pytest.mark.parametrize("foreground", [False, True], ids=["background", "foreground"])
def test_an_api_url_that_is_not_notion_says_so(
    tmp_path: Path, emulator: Emulator, html_site: str, foreground: bool
) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    mode = ["--foreground"] if foreground else ["--log-file", str(tmp_path / "log")]
    for url in (emulator.files_url, html_site):
        done = notionfs("mount", str(mountpoint), "--api-url", url, *mode,
                        env=api_env(emulator))
        assert_one_line_error(done, f"{url} is not a Notion API (")
        assert "rejected the token" not in done.stderr
    for url in (f"{emulator.api_url}/v1", f"{emulator.api_url}/v1/"):
        done = notionfs("mount", str(mountpoint), "--api-url", url, *mode,
                        env=api_env(emulator))
        assert_one_line_error(done, "drop /v1", f"(use {emulator.api_url})")
    assert mount_entry(mountpoint) is None


# ---- --version, --help ------------------------------------------------------------------------


def test_version() -> None:
    done = notionfs("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"notionfs {__version__}"


def test_mount_help_names_the_token_variable_and_every_default() -> None:
    done = notionfs("mount", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "NOTION_TOKEN" in text
    options = text.split("options:", 1)[1].split("environment:", 1)[0]
    # One entry per option: a line starting with two spaces and a dash, plus its wrapped help.
    entries = re.split(r"\n  (?=-)", "\n" + options.strip("\n"))
    entries = [" ".join(e.split()) for e in entries if e.strip()]
    assert len(entries) == 21, entries
    for entry in entries:
        if entry.startswith("-h, --help"):
            continue
        assert "(default: " in entry, entry
    cache = next(e for e in entries if e.startswith("--cache-size"))
    assert "(default: 256M)" in cache
    assert "--ready-fd" not in text and "--token " not in text  # internal / discouraged


# ---- df, modes, writes --------------------------------------------------------------------------


@requires_fuse
def test_plain_df_lists_the_mount_with_a_size(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files()) as m:
        out = subprocess.run(["df", "--output=target,size,used,avail,itotal"],
                             capture_output=True, text=True, timeout=30).stdout
        rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
        assert str(m.path) in rows, out  # df hides 0-block filesystems
        size_k, used_k, avail_k, inodes = map(int, rows[str(m.path)])
        assert size_k == 1 << 40  # 1 PiB in 1K blocks
        assert (used_k, avail_k) == (0, size_k)
        assert inodes == 10**9
        human = subprocess.run(["df", "-h", str(m.path)], capture_output=True, text=True,
                               timeout=30, check=True).stdout
        assert re.search(r"notion:\S+ .*\s1\.0P\s+0\s+1\.0P\s+0%\s", human), human


def _other_user() -> tuple[int, int]:
    """A user that is not root, made for the test when this runs as root."""
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                        OTHER_USER], check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(OTHER_USER)
    return entry.pw_uid, entry.pw_gid


def _as_user(uid: int, gid: int, script: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", "-c", script]
    if os.getuid() != uid:
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"})


@requires_fuse
def test_a_copy_out_is_the_copiers_to_delete_and_the_mount_stays_read_only() -> None:
    if os.getuid() == 0:
        if shutil.which("useradd") is None or shutil.which("setpriv") is None:
            pytest.skip("running as root without useradd/setpriv to act as a normal user")
        uid, gid = _other_user()
        args: tuple[str, ...] = ("--read-only", "--allow-other")  # root may share its mount
    else:
        uid, gid, args = os.getuid(), os.getgid(), ("--read-only",)
    # A base every user can reach (pytest's own tmp dirs are 0700).
    base = Path(tempfile.mkdtemp(prefix="notionfs-modes-"))
    try:
        base.chmod(0o755)
        out = base / "out"
        out.mkdir()
        os.chown(out, uid, gid)
        with mounted(base, samples.nested_files(), args=args) as m:
            copied = _as_user(uid, gid, f"""
                set -e
                cp -r "{m.path / FOLDER}" "{out}/copy"
                test -n "$(find "{out}/copy" -type f)"
                rm -rf "{out}/copy"
                test ! -e "{out}/copy"
            """)
            assert copied.returncode == 0, copied.stderr
            st_dir, st_file = os.stat(m.path / FOLDER), os.stat(m.path / FILE)
            assert (st_dir.st_mode & 0o7777, st_file.st_mode & 0o7777) == (0o755, 0o644)
            moved = _as_user(uid, gid, f'mv "{m.path / FILE}" "{out}/"')
            assert moved.returncode != 0
            assert "Read-only file system" in moved.stderr
            assert (m.path / FILE).exists()
            gone = _as_user(uid, gid, f'test -w "{out}/top.png" && rm "{out}/top.png"')
            assert gone.returncode == 0, gone.stderr
            # The owner's modes say writable; the mount still refuses every write.
            for attempt in (lambda: open(m.path / FILE, "r+b"),
                            lambda: (m.path / "new.txt").write_text("x"),
                            lambda: os.chmod(m.path / FILE, 0o600),
                            lambda: os.mkdir(m.path / "new"),
                            lambda: os.unlink(m.path / FILE)):
                with pytest.raises(OSError) as refused:
                    attempt()
                assert refused.value.errno == errno.EROFS
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---- GLib: local or remote, and the trash -------------------------------------------------------

requires_gio = pytest.mark.skipif(shutil.which("gio") is None,
                                  reason="gio (libglib2.0-bin) is not installed")


@requires_fuse
@requires_gio
def test_glib_view_of_the_mount_is_what_the_docs_say(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files()) as m:
        out = subprocess.run(["gio", "info", "-f", "-a", "filesystem::remote", str(m.path)],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    remote = re.search(r"filesystem::remote: (TRUE|FALSE)", out)
    assert remote is not None, out
    said = f"`gio info -f -a filesystem::remote` says `{remote.group(1)}`"
    for doc in ("README.md", "docs/SEMANTICS.md"):
        text = " ".join((REPO / doc).read_text(encoding="utf-8").split())
        assert said in text, doc
        assert "GLib treat the mount as remote" not in text


@requires_fuse
@requires_gio
def test_gio_trash_says_read_only(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=("--read-only",)) as m:
        target = m.path / FILE
        done = subprocess.run(["gio", "trash", str(target)], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, LANG="C", LC_ALL="C"))
        assert done.returncode != 0
        assert "Read-only file system" in done.stderr, done.stderr
        assert "trash directory" not in done.stderr
        assert target.exists()
        info = subprocess.run(["gio", "info", "-a", "access::can-trash,access::can-delete",
                               str(target)], capture_output=True, text=True, check=True,
                              timeout=30).stdout
        assert "access::can-trash: FALSE" in info  # file managers offer Delete instead
        # The trash folders GLib looks up are never listed and hold nothing.
        assert ".Trash" not in os.listdir(m.path)
        assert os.listdir(m.path / ".Trash") == []
        assert os.stat(m.path / ".Trash").st_mode & 0o1000  # sticky, as the XDG spec asks
        assert not (m.path / FOLDER / ".Trash").exists()


# ---- installing ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_building_the_package_prints_no_deprecation(tmp_path: Path) -> None:
    """The wheel `pip install` builds, with the setuptools its isolated build pulls in."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "notionfs", source / "notionfs",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w",
                           str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "setuptools" in output  # the build's own output is in what was read
    assert not re.search(r"deprecat", output, re.I), [
        line for line in output.splitlines() if re.search(r"deprecat", line, re.I)]
    assert list((tmp_path / "dist").glob("notionfs-*.whl"))


@requires_fuse
@requires_gio
def test_gio_trash_on_a_writable_mount_offers_delete_which_trashes_in_notion(
    tmp_path: Path,
) -> None:
    with mounted(tmp_path, samples.nested_files(), args=("--deadline", "20")) as m:
        target = m.path / FILE
        done = subprocess.run(["gio", "trash", str(target)], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, LANG="C", LC_ALL="C"))
        # GLib finds no trash folder it may use: file managers then offer "Delete".
        assert done.returncode != 0
        assert "Unable to find or create trash directory" in done.stderr, done.stderr
        assert target.exists()
        assert not (m.path / ".Trash").exists() and not (m.path / ".Trash-0").exists()
        assert ".Trash-0" not in os.listdir(m.path)
        trashed = m.emulator.counters.calls("DELETE /v1/blocks/{id}")
        subprocess.run(["gio", "remove", str(target)], check=True, timeout=60)
        assert not target.exists()
        assert m.emulator.counters.calls("DELETE /v1/blocks/{id}") == trashed + 1
