"""Engine ports: the first port in the configured range that nothing listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from ._errors import PortUnavailableError


def port_is_free(host: str, port: int) -> bool:
    """True when `host:port` can be bound right now (a busy port is skipped, not fought over)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out ports from `[start, end]`, never the same one twice while it is held."""

    def __init__(self, start: int, end: int, host: str = "127.0.0.1") -> None:
        self._range = range(start, end + 1)
        self._host = host
        self._held: set[int] = set()

    def acquire(self, avoid: Iterable[int] = ()) -> int:
        skip = self._held | set(avoid)
        for port in self._range:
            if port not in skip and port_is_free(self._host, port):
                self._held.add(port)
                return port
        first, last = self._range[0], self._range[-1]
        raise PortUnavailableError(
            f"no free engine port in {first}-{last} on {self._host}: every port is in use; "
            "widen pool_managerd.engine_ports or stop what holds them"
        )

    def release(self, port: int) -> None:
        self._held.discard(port)
