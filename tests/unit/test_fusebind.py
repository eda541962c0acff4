"""Which FUSE binding ``auto`` picks on a machine."""

from __future__ import annotations

import pytest

from notionfs import fusebind
from notionfs.fusebind import auto_binding

BOTH = {2: "libfuse.so.2", 3: "libfuse3.so.3"}
ONLY_2 = {2: "libfuse.so.2", 3: None}
ONLY_3 = {2: None, 3: "libfuse3.so.3"}


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A machine whose user and PATH the test sets."""
    state: dict[str, object] = {"euid": 1000, "tools": set()}
    monkeypatch.setattr(fusebind.os, "geteuid", lambda: state["euid"])
    monkeypatch.setattr(
        fusebind.shutil, "which",
        lambda name: f"/usr/bin/{name}" if name in state["tools"] else None,  # type: ignore[operator]
    )
    return state


def test_libfuse_3_is_chosen_where_it_can_mount(machine: dict[str, object]) -> None:
    machine["tools"] = {"fusermount3"}
    assert auto_binding(BOTH) == "mfusepy"
    assert auto_binding(ONLY_3) == "mfusepy"
    machine["tools"] = set()
    machine["euid"] = 0  # root mounts without a helper
    assert auto_binding(BOTH) == "mfusepy"


def test_a_user_with_only_libfuse_2_s_helper_keeps_fusepy(machine: dict[str, object]) -> None:
    machine["tools"] = {"fusermount"}
    assert auto_binding(BOTH) == "fusepy"
    assert auto_binding(ONLY_2) == "fusepy"
    # libfuse 3 alone, with no way to mount it: its own error says what to install.
    assert auto_binding(ONLY_3) == "mfusepy"


def test_auto_falls_back_to_fusepy_when_mfusepy_cannot_load(
    machine: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine["euid"] = 0
    monkeypatch.setattr(fusebind, "libfuse_paths", lambda: dict(BOTH))

    def broken(paths: dict[int, str | None]) -> fusebind.Binding:
        raise fusebind.ConfigError("mfusepy cannot load libfuse3.so.3 (no such file)")

    monkeypatch.setattr(fusebind, "_load_mfusepy", broken)
    assert fusebind.load_binding("auto").name == "fusepy"
    with pytest.raises(fusebind.ConfigError, match="cannot load"):
        fusebind.load_binding("mfusepy")
