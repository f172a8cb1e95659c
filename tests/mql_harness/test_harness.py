"""The EAs' own MQL source, compiled by g++ and run against the real daemon (issue 9).

Both EAs are built by harness.py (transform + prelude generated from the MQL
reference + the simulated terminal), started as processes beside a real
daemon, and fed real EURUSD ticks. Everything below goes over real ZeroMQ
sockets: the EA's PUSH to the daemon's PULL, the daemon's REQ to the EA's REP,
and a test REQ straight to the EA for what the daemon would never send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

import harness
from test_wire import REFUSED
from quantumtrader.protocol import MIN_TIME_MSC, WRONG_ACCOUNT, close_command, decode_reply, encode, for_account, modify_command, open_command, ping_command, snapshot_command
from support import REPO, Endpoints, FeedSubscriber, control, daemon_process, shared_ticks, terminal_status, wait_for

BUILD_DIR = REPO / ".harness-build"
TICKS = 1500  # real OANDA ticks replayed per EA
TICK_US = 1000
TIMEOUT_S = 300  # the module fixture builds both EAs with g++ first, 2-4x slower on a loaded host


@pytest.fixture(scope="module")
def executables() -> dict[str, Path]:
    # One build at a time across the xdist workers: both share .harness-build, and on a fresh clone each would
    # rewrite ea.cpp while the other's g++ reads it, or relink an executable the other is starting.
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with (BUILD_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return {p: harness.build(p, BUILD_DIR / p) for p in ("mql4", "mql5")}


@pytest.fixture(scope="module")
def tick_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, float, float]]]:
    """The first TICKS rows of the OANDA file as ``symbol,time_msc,bid,ask`` for the simulated terminal."""
    rows = []
    with gzip.open(shared_ticks(), "rt") as f:
        next(f)
        for line in f:
            t, bid, ask = line.strip().split(",")
            stamp = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
            rows.append((int(stamp.timestamp() * 1000), float(bid), float(ask)))
            if len(rows) == TICKS:
                break
    path = tmp_path_factory.mktemp("ticks") / "eurusd.csv"
    path.write_text("".join(f"EURUSD,{ms},{bid:.5f},{ask:.5f}\n" for ms, bid, ask in rows))
    return path, rows


def expected_ticks(platform: str, rows: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """What the EA must send for the chart symbol, derived from the file, not from the EA.

    MT5 sends every tick (CopyTicks from the last one sent); MT4 sends a tick
    when bid, ask or its second-resolution time changed. Neither sends a
    crossed quote. Times are UTC: the EA undoes the broker's server offset.
    """
    out, last = [], None
    for ms, bid, ask in rows:
        if ask < bid:
            continue
        if platform == "mql5":
            out.append((ms, bid, ask))
            continue
        key = (ms // 1000, bid, ask)
        if key != last:
            out.append((ms // 1000 * 1000, bid, ask))
            last = key
    return out


@dataclass
class Terminal:
    platform: str
    name: str
    command: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def ea_env(eps: Endpoints, tick_path: Path, name: str, command: str) -> dict[str, str]:
    """The simulated terminal's settings and the EA's inputs, as the environment the harness reads."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MQL_")},
        "MQL_TICKS": str(tick_path),
        "MQL_CHART_SYMBOL": "EURUSD",
        "MQL_TICK_US": str(TICK_US),
        "MQL_SERVER_OFFSET_S": "10800",  # a broker on UTC+3: the EA must undo it
        "MQL_INPUT_EventsEndpoint": eps.events,
        "MQL_INPUT_CommandBindEndpoint": command,
        "MQL_INPUT_CommandEndpointAnnounced": command,
        "MQL_INPUT_TerminalId": name,
        "MQL_INPUT_HeartbeatSeconds": "1",
    }


@pytest.fixture
def stack(tmp_path: Path, executables: dict[str, Path], tick_file) -> Iterator[tuple[Endpoints, dict[str, Terminal], FeedSubscriber]]:
    eps = Endpoints(spare=len(executables))  # a command port per EA
    spare = iter(eps.spare_ports)
    env = {"QT_RISK__MAX_QUOTE_AGE_MS": "3600000", "QT_RISK__MAX_TICK_LAG_S": "0", "QT_RISK__MAX_SPREAD_PCT": "1"}  # replayed ticks are years old
    with daemon_process(eps, tmp_path, **env):
        feed = FeedSubscriber(eps.feed)
        feed.wait_joined()
        terminals = {}
        for platform, exe in executables.items():
            command = f"tcp://127.0.0.1:{next(spare)}"
            name = f"harness-{platform}"
            log = tmp_path / f"{platform}.log"
            proc = subprocess.Popen([str(exe)], env=ea_env(eps, tick_file[0], name, command), stdout=log.open("wb"), stderr=subprocess.STDOUT)
            terminals[platform] = Terminal(platform, name, command, proc, log)
        try:
            yield eps, terminals, feed
        finally:
            for t in terminals.values():
                if t.proc.poll() is None:
                    t.proc.kill()
                    t.proc.wait(5)
            feed.close()


@contextlib.contextmanager
def ea_process(tmp_path: Path, executable: Path, tick_path: Path, name: str, **mql_env: str) -> Iterator[tuple[Endpoints, str, Path, subprocess.Popen[bytes], zmq.Socket]]:
    """One compiled EA (``name`` its TerminalId, ``mql_env`` more MQL_ settings), no daemon: its events go to a
    PULL socket (read it, or leave it unread). Yields the endpoints, the EA's command endpoint, its log, the
    process and that socket."""
    eps = Endpoints(spare=1)
    command_endpoint = f"tcp://127.0.0.1:{eps.spare_ports[0]}"
    events = zmq.Context.instance().socket(zmq.PULL)
    events.setsockopt(zmq.LINGER, 0)
    events.bind(eps.events)
    log = tmp_path / f"{name}.log"
    env = {**ea_env(eps, tick_path, name, command_endpoint), **mql_env}
    proc = subprocess.Popen([str(executable)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        yield eps, command_endpoint, log, proc, events
    finally:
        proc.kill()
        proc.wait(5)
        events.close()


@contextlib.contextmanager
def ea_running(tmp_path: Path, executable: Path, tick_path: Path, name: str, **mql_env: str) -> Iterator[tuple[Endpoints, str, Path]]:
    """One compiled EA for a test that commands it directly (``ask_ea``, as the daemon's retry would): its events
    go to a PULL socket nobody reads, no daemon needed (one started per test cost ~2.5 s each). Yields the
    endpoints, the EA's command endpoint and its log."""
    with ea_process(tmp_path, executable, tick_path, name, **mql_env) as (eps, command_endpoint, log, _proc, _events):
        yield eps, command_endpoint, log


def ask_ea(endpoint: str, command: dict | bytes, timeout_ms: int = 5000) -> tuple[bytes, dict]:
    """One command straight to the EA's REP socket (what the daemon's Lazy Pirate retry does)."""
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    try:
        req.send(command if isinstance(command, bytes) else encode(command))
        assert req.poll(timeout_ms), f"no reply from the EA to {command if isinstance(command, bytes) else command['type']}"
        raw = req.recv()
        return raw, decode_reply(raw)
    finally:
        req.close()


@pytest.mark.timeout(TIMEOUT_S)
def test_both_compiled_eas_drive_the_real_daemon(stack, tick_file) -> None:
    eps, terminals, feed = stack
    rows = tick_file[1]
    prices: dict[str, list[tuple[int, float, float]]] = {t.name: [] for t in terminals.values()}
    accounts: set[str] = set()

    def drain() -> None:
        while (got := feed.recv(50)) is not None:
            topic, msg = got
            data = msg["data"]
            if msg["type"] == "price_update" and data.get("terminal") in prices:
                prices[data["terminal"]].append((data["time_msc"], data["bid"], data["ask"]))
            elif msg["type"] == "account_update" and data.get("terminal") in prices:
                accounts.add(data["terminal"])

    # hello registers both terminals with their platform and command endpoint
    for t in terminals.values():
        session = wait_for(lambda: terminal_status(eps.control, t.name), 20, f"{t.name} to register")
        assert session["registered"] and session["platform"] == t.platform.upper().replace("QL", "T")
        assert session["command_endpoint"] == t.command
        assert session["run"] >= MIN_TIME_MSC, session  # the run: the UTC ms at the hello (the replay's clock here)
        # and each symbol's specs as the terminal has them (what the daemon sizes positions by)
        specs = wait_for(lambda: control(eps.control, "specs", terminal=t.name)["specs"], 10, f"{t.name}'s specs")
        assert set(specs) == set(session["symbols"]), specs
        eurusd = specs["EURUSD"]
        assert eurusd["tick_size"] in (1e-5, 1e-4, 1e-3) and eurusd["tick_value"] == pytest.approx(eurusd["tick_size"] * 100_000), eurusd
        assert {k: eurusd[k] for k in ("contract_size", "volume_min", "volume_step", "volume_max")} == {
            "contract_size": 100_000.0, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 100.0}  # fmt: skip

    # every replayed tick arrives, in order, with UTC times; seq has no gaps
    for t in terminals.values():
        wanted = expected_ticks(t.platform, rows)
        try:
            wait_for(lambda: (drain(), len(prices[t.name]) >= len(wanted))[1], 60, f"all {len(wanted)} ticks of {t.name}", interval=0)
        except AssertionError:
            got = prices[t.name]
            missing = [w for w in wanted if w not in set(got)][:5]
            raise AssertionError(f"{t.name}: {len(got)} of {len(wanted)} ticks; first missing {missing}; first got {got[:3]}; status {terminal_status(eps.control, t.name)}") from None
        assert prices[t.name] == wanted
        assert "replay_done" in t.output()
        session = terminal_status(eps.control, t.name)
        assert session["lost_events"] == 0 and session["seq_regressions"] == 0 and session["ea_dropped"] == 0
    wait_for(lambda: (drain(), accounts == set(prices))[1], 10, "account events from both EAs", interval=0)

    for t in terminals.values():
        # a trade through the daemon's control socket, executed by the EA's own code
        reply = control(eps.control, "trade", timeout_ms=20_000, symbol="EURUSD", side="buy", lots=0.1, terminal=t.name, source="test")
        order = reply["order"]
        assert order["status"] == "filled", reply
        ticket = order["ticket"]
        assert f"order_opened ticket={ticket} symbol=EURUSD comment=QT-{order['id']}" in t.output()
        positions = wait_for(
            lambda: [p for p in control(eps.control, "snapshot")["positions"] if str(p["ticket"]) == str(ticket) and p["terminal"] == t.name],
            10,
            f"{t.name}'s position in the daemon",
        )
        assert positions[0]["symbol"] == "EURUSD"

        # the same command id twice: the second answer comes from the EA's cache, no second order
        command = open_command("HARNESS" + t.platform[-1], "EURUSD", "sell", 0.2, deviation_points=1000, magic=7)
        first_raw, first = ask_ea(t.command, command)
        second_raw, _ = ask_ea(t.command, command)
        assert first["ok"] and second_raw == first_raw
        assert t.output().count(f"comment=QT-{command['id']}") == 1
        _, snap = ask_ea(t.command, snapshot_command("SNAP" + t.platform[-1]))
        assert sum(p["comment"] == f"QT-{command['id']}" for p in snap["positions"]) == 1
        assert snap["account"]["login"] == 5012345

        # bad stops (inside the broker's 10-point stop level): the terminal's own error code
        bid = rows[-1][1]
        bad = open_command("BADSTOPS" + t.platform[-1], "EURUSD", "buy", 0.1, sl=round(bid - 0.00003, 5), deviation_points=1000)
        _, refused = ask_ea(t.command, bad)
        assert refused["ok"] is False
        assert refused["error"]["code"] == (130 if t.platform == "mql4" else 10016), refused
        assert "invalid stops" in refused["error"]["message"]

        # the compiled parser refuses exactly what its Python transcription (tests/mql/test_wire.py) refuses, with the same code
        for text, code in REFUSED:
            _, answer = ask_ea(t.command, text.encode())
            assert answer["ok"] is False and answer["error"]["code"] == code, (text, answer)
        _, pong = ask_ea(t.command, b' {"id":"P1","v":1,"extra":null,"type":"ping"} ')
        assert pong["ok"] is True

    # removing the EA: bye reaches the daemon, then the process exits cleanly
    for t in terminals.values():
        t.proc.send_signal(signal.SIGTERM)
        assert t.proc.wait(10) == 0, t.output()[-2000:]
        session = wait_for(lambda: (s := terminal_status(eps.control, t.name)) and s["gone"] and s, 10, f"{t.name}'s bye")
        assert session["bye_reason"] == "expert removed from chart"


@pytest.mark.timeout(TIMEOUT_S)
def test_reinit_in_place_multipart_requests_and_lot_steps(stack, tmp_path: Path) -> None:
    """What a line-by-line review found, now run: each would have stalled or doubled an order.

    - The terminal re-initialises an EA in place (OnDeinit, OnInit, globals
      kept) when the chart's symbol or period changes: the EA must come back
      (no "port in use"), say hello again without a bye (a bye released the
      terminal's symbols to whichever other terminal ticked next), keep serving
      commands, and still answer a retried command id from its cache instead
      of trading twice.
    - A request of two frames must be read to its end and refused, or the
      REP socket would never reply again.
    - Lots are rounded down to the symbol's step; below the minimum is the
      terminal's invalid-volume error.
    """
    eps, terminals, _feed = stack
    for t in terminals.values():
        wait_for(lambda: (s := terminal_status(eps.control, t.name)) and s["registered"] and s, 20, f"{t.name} to register")
        p = t.platform[-1]

        before = open_command("BEFORE" + p, "EURUSD", "buy", 0.1, deviation_points=1000)
        first_raw, first = ask_ea(t.command, before)
        assert first["ok"], first
        old_run = terminal_status(eps.control, t.name)["run"]
        assert first["run"] == old_run, (first, old_run)

        t.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: "reinit oninit=0" in t.output(), 10, f"{t.name} to re-initialise")
        session = wait_for(lambda: (s := terminal_status(eps.control, t.name)) and s["hellos"] >= 2 and not s["gone"] and s, 10, f"{t.name}'s hello after the re-init")
        assert t.proc.poll() is None, t.output()[-2000:]
        byes = [line for line in (tmp_path / "daemon.log").read_text(errors="replace").splitlines() if "terminal said bye" in line and t.name in line]
        assert not byes, byes  # read after the hello, which the EA sends after any bye
        again_raw, _ = ask_ea(t.command, before)
        assert again_raw == first_raw, "a retried id after a re-init was executed again"
        # a new run, numbered afresh from its hello: (run, seq) still orders its events after the old run's
        assert session["run"] > old_run, (session, old_run)
        assert ask_ea(t.command, ping_command("RUNPING" + p))[1]["run"] == session["run"]
        assert t.output().count(f"comment=QT-{before['id']}") == 1
        reply = control(eps.control, "trade", timeout_ms=20_000, symbol="EURUSD", side="buy", lots=0.1, terminal=t.name, source="test")
        assert reply["order"]["status"] == "filled", reply
        assert session["lost_events"] == 0

        # two frames: refused as malformed, and the socket keeps answering
        req = zmq.Context.instance().socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(t.command)
        try:
            req.send_multipart([encode(ping_command("MP1" + p)), b"trailing frame"])
            assert req.poll(5000), "no reply to a two-frame request: the REP socket is stuck"
            refused = decode_reply(req.recv())
            assert refused["ok"] is False and refused["error"]["code"] == -1, refused
            req.send(encode(ping_command("MP2" + p)))
            assert req.poll(5000)
            assert decode_reply(req.recv())["ok"] is True
        finally:
            req.close()

        # lots: 0.017 -> 0.01 (step 0.01, rounded down, never up); 0.004 is under the minimum
        _, odd = ask_ea(t.command, open_command("STEP" + p, "EURUSD", "sell", 0.017, deviation_points=1000))
        assert odd["ok"] and odd["lots"] == 0.01, odd
        _, tiny = ask_ea(t.command, open_command("TINY" + p, "EURUSD", "sell", 0.004, deviation_points=1000))
        assert tiny["ok"] is False and tiny["error"]["code"] == (131 if t.platform == "mql4" else 10014), tiny


@pytest.mark.timeout(TIMEOUT_S)
def test_a_copy_that_cannot_start_says_nothing_for_the_one_that_runs(stack, executables, tick_file) -> None:
    """A second copy of the EA on another chart of the same terminal has the same default terminal id and
    command port: its bind fails and it does not start. It used to say bye under that id on its way out
    (OnDeinit after a failed OnInit), and the daemon took the working copy for gone: orders refused, ticks
    flowing. Now it sends nothing (seen as no seq regression: its bye had seq 0), and the terminal trades."""
    eps, terminals, _feed = stack
    for platform, t in terminals.items():
        before = wait_for(lambda: (s := terminal_status(eps.control, t.name)) and s["connected"] and s["events"] > 5 and s, 30, f"{t.name} streaming")
        copy = subprocess.run([str(executables[platform])], env=ea_env(eps, tick_file[0], t.name, t.command), capture_output=True, timeout=60)
        out = (copy.stdout + copy.stderr).decode(errors="replace")  # the EA's Print goes to stderr
        assert copy.returncode == 3 and "cannot bind the command socket" in out and "oninit=1" in out, out[-2000:]  # INIT_FAILED
        # what the copy sent on its way out (the old code's bye) left with it: give the daemon time to read it
        wait_for(lambda: terminal_status(eps.control, t.name)["events"] >= before["events"] + 3, 10, f"{t.name}'s next events")
        after = terminal_status(eps.control, t.name)
        assert after["seq_regressions"] == before["seq_regressions"] and not after["gone"], (before, after)
        reply = control(eps.control, "trade", timeout_ms=20_000, symbol="EURUSD", side="buy", lots=0.1, terminal=t.name, source="test")
        assert reply["order"]["status"] == "filled", reply


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("platform", ["mql4", "mql5"])
def test_a_retry_after_the_ea_restarted_does_not_open_twice(tmp_path: Path, executables, tick_file, platform: str) -> None:
    """The EA answers a repeated command id from its reply cache, which lives in memory: an EA re-attached (or a
    terminal restarted) after opening a position but before its reply reached the daemon got the daemon's
    Lazy Pirate retry with an empty cache and opened a second position. The position's comment QT-<id> is the
    record that survives: the fresh EA must answer with that position."""
    # MT4 with StopsAfterFill: the earlier run may have stopped between the fill and setting the stops
    with ea_running(tmp_path, executables[platform], tick_file[0], f"harness-again-{platform}", MQL_POSITION="EURUSD,0,0.3,QT-AGAIN00001",
                    **({"MQL_INPUT_StopsAfterFill": "true"} if platform == "mql4" else {})) as (eps, command_endpoint, log):  # fmt: skip
        held = wait_for(lambda: re.search(r"order_opened ticket=(\d+) symbol=EURUSD comment=QT-AGAIN00001", log.read_text(errors="replace")), 30, "the held position")
        ticket = int(held.group(1))
        _, before = ask_ea(command_endpoint, snapshot_command("SNAPBEFORE"))
        opened_at = next(p["open_price"] for p in before["positions"] if p["comment"] == "QT-AGAIN00001")
        sl, tp = round(opened_at - 0.01, 5), round(opened_at + 0.01, 5)
        _, again = ask_ea(command_endpoint, open_command("AGAIN00001", "EURUSD", "buy", 0.3, sl=sl, tp=tp, deviation_points=1000))
        assert again["ok"] and int(again["ticket"]) == ticket and again["lots"] == 0.3 and "stops_error" not in again, again
        _, fresh = ask_ea(command_endpoint, open_command("FRESH00001", "EURUSD", "buy", 0.1, deviation_points=1000))
        assert fresh["ok"] and int(fresh["ticket"]) != ticket, fresh
        out = log.read_text(errors="replace")
        assert out.count("comment=QT-AGAIN00001") == 1 and out.count("comment=QT-FRESH00001") == 1, out[-2000:]
        _, snap = ask_ea(command_endpoint, snapshot_command("SNAPAGAIN1"))
        assert sorted(p["comment"] for p in snap["positions"]) == ["QT-AGAIN00001", "QT-FRESH00001"], snap["positions"]
        held = next(p for p in snap["positions"] if p["comment"] == "QT-AGAIN00001")
        if platform == "mql4":  # the stops the earlier run never set are set now
            assert (held["sl"], held["tp"]) == (sl, tp), held


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("platform", ["mql4", "mql5"])
def test_a_trade_meant_for_another_account_is_refused(tmp_path: Path, executables, tick_file, platform: str) -> None:
    """Found by a review (2026-12-04): commands carried no account, so a command the daemon was still retrying
    when the trader switched the terminal to another account (a demo to a live one) ran on the new account. A
    trade command now says which account it is for (login, from the terminal's account events); the EA refuses
    it logged in to another (65602) and runs it logged in to that one."""
    with ea_running(tmp_path, executables[platform], tick_file[0], f"harness-account-{platform}", MQL_LOGIN="7000001") as (eps, command_endpoint, log):
        wait_for(lambda: ask_ea(command_endpoint, ping_command("ACCTPING01"))[1]["ok"], 30, "the EA serving commands")
        _, other = ask_ea(command_endpoint, for_account(open_command("ACCTOPEN01", "EURUSD", "buy", 0.1, deviation_points=1000), 5012345))
        assert other["ok"] is False and other["error"]["code"] == WRONG_ACCOUNT and "7000001" in other["error"]["message"], other
        _, snap = ask_ea(command_endpoint, snapshot_command("ACCTSNAP01"))
        assert snap["positions"] == [], snap["positions"]
        raw, own = ask_ea(command_endpoint, for_account(open_command("ACCTOPEN02", "EURUSD", "buy", 0.1, deviation_points=1000), 7000001))
        assert own["ok"], own
        # event_seq: the last event built before the command ran; the trade's own positions and account events
        # come after it (what the daemon counts to settle from positions), and a retry gets the same reply
        _, ping = ask_ea(command_endpoint, ping_command("ACCTPING02"))
        assert 0 <= own["event_seq"] and ping["event_seq"] >= own["event_seq"] + 2, (own, ping)
        assert own["run"] == ping["run"] >= MIN_TIME_MSC, (own, ping)  # the run that numbered them
        assert ask_ea(command_endpoint, for_account(open_command("ACCTOPEN02", "EURUSD", "buy", 0.1, deviation_points=1000), 7000001))[0] == raw


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("platform", ["mql4", "mql5"])
def test_stops_are_put_on_the_symbols_tick_grid(tmp_path: Path, executables, tick_file, platform: str) -> None:
    """Found by a review (2026-12-04): the EAs rounded stops to the symbol's digits only. Where a tick is several
    points (US30 in 1.0, a future in 0.25) a stop with the right digits but off the grid is refused as invalid
    (130 / 10016): an order with stops the daemon computed failed, a stop was not moved. Here a tick of 5
    points (0.00005 on EURUSD); the terminal refuses a stop off that grid, as a broker does."""
    with ea_running(tmp_path, executables[platform], tick_file[0], f"harness-grid-{platform}", MQL_TICK_SIZE_POINTS="5") as (eps, command_endpoint, log):
        wait_for(lambda: ask_ea(command_endpoint, ping_command("GRIDPING01"))[1]["ok"], 30, "the EA serving commands")
        _, snap = ask_ea(command_endpoint, snapshot_command("GRIDSNAP01"))
        _, opened = ask_ea(command_endpoint, open_command("GRIDOPEN01", "EURUSD", "buy", 0.1, sl=1.30123, tp=1.45247, deviation_points=1000))
        assert opened["ok"], opened
        _, snap = ask_ea(command_endpoint, snapshot_command("GRIDSNAP02"))
        (held,) = snap["positions"]
        assert (held["sl"], held["tp"]) == (1.30125, 1.45245), held  # the nearest ticks of 0.00005
        _, moved = ask_ea(command_endpoint, modify_command("GRIDMOVE01", int(opened["ticket"]), 1.31011, 1.44989))
        assert moved["ok"], moved
        _, snap = ask_ea(command_endpoint, snapshot_command("GRIDSNAP03"))
        assert (snap["positions"][0]["sl"], snap["positions"][0]["tp"]) == (1.3101, 1.4499), snap["positions"]


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("closed_before", [0.05, 0.10])
def test_a_retried_close_after_the_ea_restarted_is_answered_from_its_deal(tmp_path: Path, executables, tick_file, closed_before: float) -> None:
    """Found by a review (2026-12-04): MT5 keeps a position's ticket on a partial close. An EA re-attached after
    closing 0.05 of 0.10 but before its reply reached the daemon got the Lazy Pirate retry with an empty reply
    cache, found 0.05 left, and closed it: the half the trader kept. The earlier try's deal (comment QT-<id>)
    is in the position's history: the EA answers the retry from it and closes nothing (a position closed in
    full is answered the same way, not "not found"). MT4 gives the rest a new ticket: its retry finds no
    position."""
    with ea_running(tmp_path, executables["mql5"], tick_file[0], "harness-partial-mql5", MQL_POSITION="EURUSD,0,0.10,QT-KEPT000001",
                    MQL_POSITION_CLOSED=f"{closed_before},QT-PCLOSE0001") as (eps, command_endpoint, log):  # fmt: skip
        held = wait_for(lambda: re.search(r"order_opened ticket=(\d+) symbol=EURUSD comment=QT-KEPT000001", log.read_text(errors="replace")), 30, "the held position")
        ticket = int(held.group(1))
        _, again = ask_ea(command_endpoint, close_command("PCLOSE0001", ticket, closed_before, position_lots=0.10))
        assert again["ok"] and int(again["ticket"]) == ticket and again["lots"] == closed_before and again["price"] > 0, again
        _, snap = ask_ea(command_endpoint, snapshot_command("SNAPPART01"))
        assert [p["lots"] for p in snap["positions"]] == ([0.05] if closed_before == 0.05 else []), snap  # what the trader kept
        if closed_before == 0.05:
            _, partial = ask_ea(command_endpoint, close_command("PCLOSE0002", ticket, 0.02, position_lots=0.05))  # asked against what it holds
            assert partial["ok"] and partial["lots"] == 0.02, partial
            _, snap = ask_ea(command_endpoint, snapshot_command("SNAPPART02"))
            assert [p["lots"] for p in snap["positions"]] == [0.03], snap


def drain_events(events: zmq.Socket, seconds: float) -> list[dict[str, Any]]:
    """Every event the EA sends for ``seconds``."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        if events.poll(50):
            out.append(json.loads(events.recv()))
    return out


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("platform", ["mql4", "mql5"])
def test_a_reinit_in_place_neither_loses_nor_repeats_a_tick(tmp_path: Path, executables, tick_file, platform: str) -> None:
    """Found by a review (2026-12-06): a re-initialisation in place (the trader flips the chart's timeframe)
    started the symbol list afresh. MT5 then sent only the current quote and copied on from it: the ticks
    that arrived since the last timer event were never sent, and not counted in ``dropped`` (a 200 ms timer
    lost hundreds in five flips). Both platforms sent the last tick again in the new run. Each symbol now
    keeps what was last sent for it: every tick of the file goes out once (MT4: each change once), across
    five re-initialisations. MT5 streams EURUSD from its timer alone here (the chart shows another symbol)."""
    chart = {"MQL_CHART_SYMBOL": "GBPUSD", "MQL_INPUT_SymbolList": "EURUSD"} if platform == "mql5" else {}
    with ea_process(tmp_path, executables[platform], tick_file[0], f"harness-flip-{platform}", MQL_INPUT_TimerMilliseconds="200", **chart) as (eps, command_endpoint, log, proc, events):  # fmt: skip
        sent = drain_events(events, 0.3)
        for _ in range(5):
            proc.send_signal(signal.SIGUSR1)
            sent += drain_events(events, 0.2)
        sent += drain_events(events, 0.5)
        wait_for(lambda: "replay_done" in log.read_text(errors="replace"), 30, "the replay to end")
        sent += drain_events(events, 1.0)
    assert log.read_text(errors="replace").count("reinit oninit=0") == 5
    assert sum(e["type"] == "hello" for e in sent) == 6
    ticks = [(e["time_msc"], e["bid"], e["ask"]) for e in sent if e["type"] == "tick"]
    assert ticks == expected_ticks(platform, tick_file[1]), f"{len(ticks)} ticks sent, {len(expected_ticks(platform, tick_file[1]))} in the file"
    assert {e["dropped"] for e in sent if e["type"] == "heartbeat"} <= {0}


@pytest.mark.timeout(TIMEOUT_S)
def test_the_first_try_of_a_close_runs_on_a_position_shrunk_by_someone_else(tmp_path: Path, executables, tick_file) -> None:
    """Found by a review (2026-12-06): the MT5 EA took a position smaller than the close's position_lots for
    a sign that an earlier try of that close ran, and refused with 65601, which the daemon settles from the
    positions as filled. A manual partial close (or another EA, or a netting deal) shrinks a position too:
    the first try of a close was refused and the trader told it filled. Only the close's own deal says it
    ran; here there is none, so it runs, capped at what the position holds."""
    with ea_running(tmp_path, executables["mql5"], tick_file[0], "harness-shrunk-mql5", MQL_POSITION="EURUSD,0,0.20,QT-SHRUNK00001",
                    MQL_POSITION_CLOSED="0.10,MANUAL") as (eps, command_endpoint, log):  # fmt: skip
        held = wait_for(lambda: re.search(r"order_opened ticket=(\d+) symbol=EURUSD comment=QT-SHRUNK00001", log.read_text(errors="replace")), 30, "the held position")
        ticket = int(held.group(1))
        _, first = ask_ea(command_endpoint, close_command("CLOSEFIRST1", ticket, 0.0, position_lots=0.20))
        assert first["ok"] and int(first["ticket"]) == ticket and first["lots"] == 0.1, first
        _, snap = ask_ea(command_endpoint, snapshot_command("SNAPSHRUNK"))
        assert snap["positions"] == [], snap["positions"]


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize(
    ("platform", "currency", "balance"),
    [("mql5", "BTC", "0.12345678"), ("mql4", "BTC", "0.12345678"), ("mql4", "JPY", "987654321.01")],
)
def test_an_account_keeps_its_money_exactly(tmp_path: Path, executables, tick_file, platform: str, currency: str, balance: str) -> None:
    """Money fields were written with 2 decimals whatever the account's currency: a BTC balance of 0.12345678
    reached the daemon as 0.12. MT5 says how many decimals the account currency has (ACCOUNT_CURRENCY_DIGITS);
    MQL4 does not, so MT4 writes 8; a large balance at 8 decimals (987654321.00999999 on the wire) must still
    read back as the number the terminal holds."""
    eps = Endpoints(spare=1)
    with daemon_process(eps, tmp_path):
        env = {**ea_env(eps, tick_file[0], "harness-money", f"tcp://127.0.0.1:{eps.spare_ports[0]}"),
               "MQL_CURRENCY": currency, "MQL_CURRENCY_DIGITS": "8", "MQL_BALANCE": balance}  # fmt: skip
        log = tmp_path / "money.log"
        proc = subprocess.Popen([str(executables[platform])], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            account = wait_for(
                lambda: next((a for a in control(eps.control, "snapshot")["accounts"] if a.get("terminal") == "harness-money"), None),
                30,
                "the account",
            )
            assert account["currency"] == currency and account["balance"] == float(balance) and account["equity"] == float(balance), account
        finally:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("platform", ["mql4", "mql5"])
@pytest.mark.parametrize("terminal_id", ["", "harness-early"])
def test_an_ea_started_before_the_login_says_hello_as_the_account(tmp_path: Path, executables, tick_file, platform: str, terminal_id: str) -> None:
    """With no TerminalId the id is <login>@<server>, and a terminal not logged in yet reads login 0: the EA
    said hello as "0@<server>" and kept that id after the login (every such terminal the same id). It now
    waits for the login, sends nothing meanwhile, and says hello as the account without a restart. Before
    the login it serves no command either (a daemon retrying one across a terminal restart must find the
    positions synced), and with a TerminalId set (the hello goes at once) it still serves nothing and sends no
    account of zeros (the day's starting equity) or empty positions before the login."""
    eps = Endpoints(spare=1)
    command_endpoint = f"tcp://127.0.0.1:{eps.spare_ports[0]}"
    with daemon_process(eps, tmp_path, QT_RISK__MAX_QUOTE_AGE_MS="3600000", QT_RISK__MAX_TICK_LAG_S="0", QT_RISK__MAX_SPREAD_PCT="1"):  # replayed ticks are old
        feed = FeedSubscriber(eps.feed, (b"account",))
        env = {**ea_env(eps, tick_file[0], terminal_id, command_endpoint),
               "MQL_LOGIN": "7012345", "MQL_SERVER": "Harness-Live", "MQL_LOGIN_AFTER_MS": "1500",
               "MQL_TICK_US": "4000"}  # the replay (6 s) goes on well after the login  # fmt: skip
        log = tmp_path / f"{platform}-login.log"
        started = time.monotonic()
        proc = subprocess.Popen([str(executables[platform])], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        try:
            _, pong = ask_ea(command_endpoint, ping_command("EARLYPING1"), timeout_ms=20_000)  # with a TerminalId too
            assert pong["ok"] and time.monotonic() - started >= 1.4, "a command was served before the login"
            name = terminal_id or "7012345@Harness-Live"
            wait_for(lambda: any(q["terminal"] == name for q in control(eps.control, "snapshot")["terminal_quotes"]), 30, f"{name}'s ticks")
            session = terminal_status(eps.control, name)
            assert session["lost_events"] == 0 and session["seq_regressions"] == 0, session
            health = control(eps.control)["health"]
            assert [t["terminal"] for t in health["terminals"]] == [name], health["terminals"]
            if not terminal_id:
                assert "no account has logged in yet" in log.read_text(errors="replace")
            # Its ticks flow before the login (with a TerminalId), its positions only after: until they come an open is
            # answered 503 "has not sent its positions" (the daemon checks the limits against them), and retried, as
            # the error says. A trade answered otherwise ends the waiting.
            def traded() -> dict[str, Any] | None:
                reply = control(eps.control, "trade", timeout_ms=20_000, symbol="EURUSD", side="buy", lots=0.1, terminal=name, source="test")
                waiting = reply.get("status") == 503 and "has not sent its positions" in reply.get("error", "")
                return None if waiting else reply

            reply = wait_for(traded, 30, f"{name}'s positions, then the trade")
            assert reply["order"]["status"] == "filled", reply
            wait_for(lambda: any(a.get("terminal") == name for a in control(eps.control, "snapshot")["accounts"]), 30, f"{name}'s account")
            accounts = []
            while (msg := feed.recv(500)) is not None:
                accounts.append(msg[1])
            assert accounts and all(a["data"]["login"] == 7012345 for a in accounts), accounts
        finally:
            feed.close()
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize(
    ("platform", "old", "new", "expect"),
    [
        ("mql4", "OrderSelect(i, SELECT_BY_POS, MODE_TRADES)", "OrderSelet(i, SELECT_BY_POS, MODE_TRADES)", "OrderSelet"),
        ("mql5", "PositionSelectByTicket((ulong)cmd.ticket)", "PositionSelectByTicket((ulong)cmd.ticket, 0)", "PositionSelectByTicket"),
        ("mql4", "tick.time <= 0", "tick.time_msc <= 0", "time_msc"),  # MQL4's MqlTick has no time_msc
    ],
)
def test_a_broken_copy_of_an_ea_does_not_build(tmp_path: Path, platform: str, old: str, new: str, expect: str) -> None:
    copy = tmp_path / "mql"
    shutil.copytree(REPO / "mql", copy)
    expert = copy / "Experts" / harness.mqlsource.EXPERTS[platform].name
    text = expert.read_text(encoding="utf-8")
    assert old in text, f"mutation anchor {old!r} is gone from {expert.name}: update this test"
    expert.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(harness.BuildError) as failed:
        harness.build(platform, tmp_path / "build", mql_root=copy)
    assert expect in str(failed.value)


def test_the_prelude_is_generated_from_the_reference() -> None:
    decls = harness.declarations_for({"OrderSend", "StringSubstr", "CopyTicks"}, "mql4")
    assert any(d.startswith("int OrderSend(string symbol, int cmd, double volume") and "string comment = NULL" in d for d in decls)
    assert "string StringSubstr(string string_value, int start_pos, int length = 0);" in decls  # MQL4: 0 = to the end
    assert any("no documented MQL4 signature" in d and d.startswith("// CopyTicks") for d in decls)
    assert "string StringSubstr(string string_value, int start_pos, int length = -1);" in harness.declarations_for({"StringSubstr"}, "mql5")

