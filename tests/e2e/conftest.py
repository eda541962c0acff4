"""Fixtures for end-to-end tests: data directories for generated media, kept across tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="session")
def big_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("big-data")


def _binding_missing(name: str) -> str | None:
    from notionfs.fusebind import libfuse_paths

    paths = libfuse_paths()
    if name == "fusepy" and not paths[2]:
        return "libfuse 2 is not installed (scripts/test installs it)"
    if name == "mfusepy" and not paths[3]:
        return "libfuse 3 is not installed (scripts/test installs libfuse3-3)"
    return None


@pytest.fixture(params=["fusepy", "mfusepy"])
def fuse_binding(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per FUSE binding: fusepy over libfuse 2 and mfusepy over libfuse 3
    (the mount process reads NOTIONFS_FUSE_BINDING from the environment it inherits)."""
    name: str = request.param
    missing = _binding_missing(name)
    if missing is not None:
        pytest.skip(missing)
    monkeypatch.setenv("NOTIONFS_FUSE_BINDING", name)
    return name


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mounts started by tests keep their metadata caches in the session's temporary
    directory, never in the user's ~/.cache (``mounted()`` gives each test its own)."""
    import os

    os.environ.setdefault("NOTIONFS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
