"""Ports for the test and bench programs: a port is handed out once per process."""

from __future__ import annotations

from devstack import free_port


def test_free_ports_are_never_handed_out_twice():
    # The kernel offers recently offered ports again; 3,000 draws from its range would repeat some.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
