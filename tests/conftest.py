"""Test set-up: no network, offline hubs, fakes by default."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open an internet connection fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            msg = f"tests must not use the network (tried {address!r})"
            raise NetworkBlocked(msg)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: guarded(socket.socket(), a[0]))


@pytest.fixture()
def store(tmp_path):
    from rag.memory.store import Store
    from rag.testing import HashEmbedder, tiny_corpus

    s = Store(tmp_path / "store", HashEmbedder())
    s.add_passages(tiny_corpus())
    yield s
    s.close()
