from __future__ import annotations

import socket

from tests.ports import LARGE, SERVICES, SMALL_TOP, ephemeral_range, free_port, free_ports


def test_free_ports_lie_outside_the_ephemeral_range_and_the_services_ports() -> None:
    avoided = [ephemeral_range(), *SERVICES]
    for _ in range(200):
        base = free_ports(40)
        assert all(port not in r for port in range(base, base + 40) for r in avoided)
        assert base + 39 <= 65535


def test_a_free_port_binds_and_a_listening_one_is_never_offered() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert all(free_port() != port for _ in range(300))


def test_a_large_run_of_ports_is_sought_apart_from_the_small_ones_tests_beside_it_hold() -> None:
    assert all(free_ports(40) + 39 <= SMALL_TOP for _ in range(50))
    base = free_ports(LARGE * 2)
    assert base > SMALL_TOP
    assert all(port not in ephemeral_range() for port in range(base, base + LARGE * 2))
