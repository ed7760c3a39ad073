import socket

import pytest

from tests.conftest import NetworkBlocked


def test_internet_connections_are_refused():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("example.org", 80), timeout=1)
