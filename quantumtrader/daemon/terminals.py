"""Terminal sessions: who is connected, when they were last heard, what they lost.

A session starts with a ``hello`` (which names the terminal's command
endpoint) and is refreshed by every event. ``seq`` is +1 per event a terminal
sends, so a jump of n means n-1 events were lost on the way; a ``hello`` resets
the expectation because the EA's counter restarts with it. Staleness uses the
monotonic clock passed in, never the wall clock, so a clock change on the VPS
cannot mark every terminal stale at once.

A terminal that stays silent for ``daemon.retire_after_s`` is *retired*: still
listed (its positions and orders may matter), but no longer a reason for
health to say degraded. Without it, an EA removed without ``bye`` (a crashed
terminal, a VPS moved) kept health degraded until the daemon restarted. It is
not a ``bye``: its next event of any kind brings it back at once, as a stale
terminal's does, so an hour-long network outage loses no ticks on return.

A session is *forgotten* only to make room (``daemon.max_terminals``): when a
new id comes and every slot is taken, the terminal silent longest among
those that are stale or said bye, and hold nothing (the daemon asks its
subsystems, :meth:`~quantumtrader.daemon.server.Daemon.keeps_terminal`),
gives up its slot. Before, the ids of a run were kept until a restart, so
events of 64 made-up or past ids locked every new terminal out for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantumtrader.log import get_logger
from quantumtrader.protocol import MAX_LONG, iso_from_msc

log = get_logger("quantumtrader.daemon")
RUNS_KEPT = 16  # an EA's runs a session remembers the order of (orders in flight span one or two)


@dataclass(slots=True)
class TerminalSession:
    terminal: str
    platform: str = ""
    command_endpoint: str = ""
    symbols: tuple[str, ...] = ()
    specs: dict[str, dict[str, float]] = field(default_factory=dict)  # the broker's, per symbol (protocol.SYMBOL_SPEC_FIELDS)
    heartbeat_s: float = 5.0
    registered: bool = False  # False until a hello arrives (events from a terminal the daemon never met)
    last_seen: float = 0.0  # monotonic seconds
    last_seen_msc: int = 0  # wall clock, for humans
    last_seq: int = -1
    events: int = 0
    refused_events: int = 0  # events received and refused (their seq accounted: not counted as lost too)
    lost_events: int = 0  # sum of seq gaps
    seq_regressions: int = 0  # seq went backwards without a hello (duplicate or reordered)
    ea_dropped: int = 0  # what the EA itself reports it could not send
    hellos: int = 0
    run: int | None = None  # the EA's run as its hello (or a heartbeat repeating it) named it (protocol.check_run)
    # Each run's place in the order the daemon first read it (the last RUNS_KEPT): which of two runs came first,
    # by the pipe's order rather than by the EAs' clocks (a run is the EA's UTC ms, and a clock set back made a
    # later run's number smaller; ExecutionEngine._shows_outcome).
    runs: dict[int, int] = field(default_factory=dict)
    stale: bool = False
    retired: bool = False  # stale for daemon.retire_after_s: listed, but no longer makes health degraded
    gone: bool = False  # said bye
    bye_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runs_read(self) -> int:
        """How many runs were read so far: the newest place in ``runs`` (places grow, only the oldest is dropped)."""
        return next(reversed(self.runs.values()), 0)

    @property
    def connected(self) -> bool:
        """Registered, heard lately and no bye: a terminal the daemon trades with and judges."""
        return self.registered and not self.stale and not self.gone

    def to_json(self) -> dict[str, Any]:
        return {
            "terminal": self.terminal,
            "platform": self.platform,
            "command_endpoint": self.command_endpoint,
            "symbols": list(self.symbols),
            "registered": self.registered,
            "connected": self.connected,
            "stale": self.stale,
            "retired": self.retired,
            "gone": self.gone,
            "bye_reason": self.bye_reason,
            "last_seen": iso_from_msc(self.last_seen_msc) if self.last_seen_msc else None,
            "last_seen_msc": self.last_seen_msc,
            "last_seq": self.last_seq,
            "events": self.events,
            "refused_events": self.refused_events,
            "lost_events": self.lost_events,
            "seq_regressions": self.seq_regressions,
            "ea_dropped": self.ea_dropped,
            "hellos": self.hellos,
            "run": self.run,
        }


class TerminalRegistry:
    """All terminal sessions of the daemon, keyed by terminal id."""

    def __init__(self, default_heartbeat_s: float, stale_heartbeats: int) -> None:
        self.sessions: dict[str, TerminalSession] = {}
        self._default_heartbeat_s = default_heartbeat_s
        self._stale_heartbeats = stale_heartbeats

    def hello(self, msg: dict[str, Any], now: float, now_msc: int) -> TerminalSession:
        """Register or re-register a terminal; its seq counter starts afresh."""
        session = self.sessions.get(msg["terminal"])
        if session is None:
            session = self.sessions[msg["terminal"]] = TerminalSession(terminal=msg["terminal"])
        self.register(session, msg)
        session.hellos += 1
        session.last_seq = msg["seq"]
        session.events += 1
        session.last_seen = now
        session.last_seen_msc = now_msc
        return session

    def register(self, session: TerminalSession, msg: dict[str, Any]) -> None:
        """Take the hello fields (from a hello, or a heartbeat that repeats them)."""
        session.platform = msg["platform"]
        session.command_endpoint = msg["command_endpoint"]
        session.symbols = tuple(msg["symbols"])
        session.specs = msg.get("specs", {})  # heartbeats that repeat them refresh them (Daemon.handle_heartbeat)
        session.heartbeat_s = float(msg.get("heartbeat_s", self._default_heartbeat_s))
        session.run = run = msg.get("run")
        if run is not None and run not in session.runs:
            session.runs[run] = session.runs_read + 1
            if len(session.runs) > RUNS_KEPT:
                del session.runs[next(iter(session.runs))]
        session.registered = True
        session.stale = False
        session.retired = False
        session.gone = False
        session.bye_reason = ""

    def seen(self, terminal: str, seq: int, now: float, now_msc: int) -> tuple[TerminalSession, bool]:
        """Account one event. Returns (session, known) — known is False for a terminal without hello."""
        session = self.sessions.get(terminal)
        known = session is not None
        if session is None:
            session = self.sessions[terminal] = TerminalSession(terminal=terminal, heartbeat_s=self._default_heartbeat_s)
        _account_seq(session, seq)
        session.events += 1
        if session.stale:  # its going stale and retired were logged (warnings): its return is said too
            log.info("terminal back", terminal=terminal, silent_s=round(now - session.last_seen, 1), was="retired" if session.retired else "stale")
            session.stale = session.retired = False
        session.last_seen = now
        session.last_seen_msc = now_msc
        return session, known

    def refused(self, terminal: str, seq: int) -> None:
        """An event of ``terminal`` that was received and refused. Its seq is taken only when it is the one
        expected next (an EA's in-order stream with a bad quote in it), so the next event's gap does not count
        it again as lost; any other seq is left alone, since a refused event is suspect (a garbage sender's seq 0
        under a terminal's id would otherwise make the terminal's next event a gap of thousands). Nothing else:
        a refused event neither makes a session (they are capped) nor says the terminal is alive."""
        session = self.sessions.get(terminal)
        if session is None:
            return
        session.refused_events += 1
        if session.last_seq >= 0 and seq == session.last_seq + 1:
            session.last_seq = seq

    def bye(self, terminal: str, reason: str) -> None:
        session = self.sessions.get(terminal)
        if session is not None:
            session.gone = True
            session.bye_reason = reason

    def update_stale(self, now: float) -> list[TerminalSession]:
        """Mark terminals silent for ``stale_heartbeats`` periods; returns those that just became stale."""
        newly: list[TerminalSession] = []
        for session in self.sessions.values():
            if session.stale or session.gone:
                continue
            if now - session.last_seen > self._stale_heartbeats * session.heartbeat_s:
                session.stale = True
                newly.append(session)
        return newly

    def restart_silence_clocks(self, now: float) -> None:
        """After the daemon itself was frozen: silence is timed from ``now`` for every terminal not yet stale (their
        events of that time wait unread in the socket; a terminal that is really gone goes stale one window later)."""
        for session in self.sessions.values():
            if not session.stale and not session.gone:
                session.last_seen = max(session.last_seen, now)

    def retire_silent(self, now: float, after_s: float) -> list[TerminalSession]:
        """Retire stale terminals silent for ``after_s`` seconds (0: never); returns those just retired."""
        if after_s <= 0:
            return []
        newly = [s for s in self.sessions.values() if s.stale and not s.retired and now - s.last_seen > after_s]
        for session in newly:
            session.retired = True
        return newly

    def forgettable(self) -> list[TerminalSession]:
        """Sessions that may give up their slot if nothing holds them: stale or said bye; those that never registered
        first, then silent longest first."""
        return sorted((s for s in self.sessions.values() if s.stale or s.gone), key=lambda s: (s.registered, s.last_seen))

    def forget(self, terminal: str) -> None:
        """Drop ``terminal``'s session: its next event is a new terminal's (unknown until its hello or heartbeat)."""
        self.sessions.pop(terminal, None)

    def degraded_by(self) -> list[TerminalSession]:
        """The terminals that make health degraded: registered, stale and not yet retired (one event of a made-up id
        made health degraded for ``retire_after_s``, an hour by default)."""
        return [s for s in self.sessions.values() if s.stale and not s.retired and s.registered]

    def is_gone(self, terminal: str) -> bool:
        """Said bye and nothing brought it back (an unknown id is not gone: it was never met)."""
        session = self.sessions.get(terminal)
        return session is not None and session.gone

    def connected(self) -> list[TerminalSession]:
        return [s for s in self.sessions.values() if s.connected]

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.sessions.values()]


def _account_seq(session: TerminalSession, seq: int) -> None:
    """The gap before ``seq`` counts as lost, a step back as a regression; ``seq`` is the newest after."""
    expected = session.last_seq + 1
    if session.last_seq >= 0:
        if seq > expected:  # "at least" past 2^63 - 1: seq resets with each hello, so gaps can add up beyond 64 bits
            session.lost_events = min(session.lost_events + seq - expected, MAX_LONG)
        elif seq < expected:
            session.seq_regressions += 1
    session.last_seq = seq
