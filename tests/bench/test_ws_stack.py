"""qt-bench ws: the stack it starts lets its clients in. They all share 127.0.0.1 and one user's token, which the
sidecar's per-IP rate and per-user connection cap would refuse beyond 20 (qt-bench ws failed that way from ae5c1f4
until this test); running the scenario itself takes minutes, so the sidecar's view of the stack's settings is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantumtrader.bench.ws import _Stack
from quantumtrader.config import load_config


@pytest.mark.parametrize("clients", [500, 3000])
def test_the_sidecar_of_the_stack_admits_every_client_of_one_user(tmp_path: Path, clients: int) -> None:
    stack = _Stack(tmp_path, 2000, 20, None, {}, clients)
    sidecar = load_config(environ=stack.env).sidecar
    assert sidecar.ws_max_per_user >= clients + 1  # and the stalled client of the last phase, same token
    assert sidecar.ws_max_clients >= clients + 1
    assert sidecar.rate_per_ip_burst >= clients  # every client's connection is one take from 127.0.0.1's bucket


def test_without_clients_the_stack_keeps_the_defaults_that_matter(tmp_path: Path) -> None:
    defaults = load_config(environ={}).sidecar
    sidecar = load_config(environ=_Stack(tmp_path, 2000, 20, None, {}).env).sidecar
    assert sidecar.ws_max_clients == defaults.ws_max_clients and sidecar.max_updates_per_s == defaults.max_updates_per_s


@pytest.mark.parametrize(("clients", "dashboards"), [(1, 0), (3, 0), (49, 0), (50, 1), (120, 2), (500, 10), (3000, 10)])
def test_the_dashboards_are_a_share_of_the_clients_never_more(clients: int, dashboards: int) -> None:
    """A fixed 10 of 3 clients read "-7 subscribed to the app's 5 symbols" (a review, 2026-12-06); 500 keep their 10."""
    from quantumtrader.bench.ws import dashboard_clients

    assert dashboard_clients(clients) == dashboards
