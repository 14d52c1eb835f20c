"""Ports for the test and bench programs: a port is handed out once per process."""

from __future__ import annotations

from devstack import free_port


def test_free_ports_are_never_handed_out_twice():
    # The kernel offers recently offered ports again; 3,000 draws from its range would repeat some.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)


def test_test_processes_side_by_side_take_ports_from_bands_of_their_own(monkeypatch):
    import devstack

    seen = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        band = devstack._worker_band()
        assert band is not None
        port = free_port()
        assert port in band and not any(port in other for other in seen)
        seen.append(band)
