"""The execution engine: trade requests -> risk -> journal -> terminal -> outcome.

Every order follows one path whoever asked (app, CLI, auto-trading):
validate the request, route it to a terminal, fill in missing size and stops,
run the risk rules (a refusal names its rule), journal the intent, queue the
command on the terminal's Lazy Pirate session, and when the terminal answers
(or every try times out) record the outcome, publish ``trade_update`` and
answer the requester. Orders whose outcome is unknown are settled from the
terminal's ``positions`` by their ``QT-<id>`` comment, never sent again.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from typing import Any, NamedTuple

import zmq

from quantumtrader.config import ORDERS_FILE, Config, parse_symbol_map
from quantumtrader.daemon.control import ControlError, Responder
from quantumtrader.daemon.server import Daemon
from quantumtrader.execution.errors import CLOSE_TARGET_GONE, OUTCOME_UNKNOWN, describe
from quantumtrader.execution.journal import OrderJournal, RiskStateDamaged
from quantumtrader.execution.orders import FILLED, PENDING, REJECTED, UNKNOWN, Order
from quantumtrader.execution.risk import Exposure, OpenIntent, RiskEngine, round_lots_down
from quantumtrader.execution.sessions import CommandSession, Gate
from quantumtrader.log import get_logger
from quantumtrader.metrics import LogLimiter
from quantumtrader.protocol import (
    MAX_PRICE,
    MAX_TICKET,
    ORDERS_LIMIT_MAX,
    ProtocolError,
    check_positions,
    check_symbol,
    close_command,
    for_account,
    modify_command,
    new_command_id,
    now_msc,
    open_command,
    order_side,
    positive_int,
    request_fingerprint,
    request_id_reused,
)
from quantumtrader.store.db import opening

log = get_logger("quantumtrader.execution")
_NOT_EXECUTED_KEPT = 256  # opens settled "not executed" remembered for a late QT-<id> (a few KB)

# A broker's suffix: a separator and up to 4 more (EURUSD.r, EURUSD#, EURUSD.pro), or up to 4 lowercase letters or
# digits (EURUSDm, EURUSDc). Capitals without a separator are another symbol: "EUR" + "USD" opened EURUSD for "EUR".
_SUFFIX_RE = re.compile(r"[._#+\-][A-Za-z0-9]{0,4}|[a-z0-9]{1,4}")


class OpenPlan(NamedTuple):
    """What :meth:`ExecutionEngine.plan_open` makes of an open: its lots and stops, or why it cannot size it."""

    lots: float
    sl: float
    tp: float
    problem: str | None  # the sizing's refusal (no tick value for the account's currency...), or None


class ExecutionEngine:
    def __init__(self, config: Config, daemon: Daemon, *, context: zmq.Context[Any] | None = None) -> None:
        self.config = config
        self.daemon = daemon
        self._context = context or zmq.Context.instance()
        self.risk = RiskEngine(config.risk)
        self.journal = OrderJournal(config.data_path / ORDERS_FILE, config.execution.journal_sync)
        self.sessions: dict[str, CommandSession] = {}
        self.orders: dict[str, Order] = {}  # unsettled orders (pending or unknown) by id
        self._journal_log = LogLimiter(config.daemon.reject_log_interval_s)
        # terminal -> ticket -> the close that filled it, until a positions event built after it ran (they may not show it yet)
        self._closed_since_positions: dict[str, dict[int, Order]] = {}
        # terminal -> ticket -> [open filled by a reply, positions events since that did not list it]: it counts
        # against the limits until one does (or settle_snapshots do not: closed meanwhile, by its stop).
        self._opened_not_listed: dict[str, dict[int, list[Any]]] = {}
        # opens settled "not executed" in this run, by id (the last _NOT_EXECUTED_KEPT): a position with their
        # QT-<id> that comes later (a terminal that ran a command it had held) settles them again as filled
        self._not_executed: dict[str, Order] = {}
        # until when the positions terminals listed before the restart count for those not heard since (risk.py)
        self._held_until: float | None = time.monotonic() + config.daemon.retire_after_s if config.daemon.retire_after_s else None
        self._waiters: dict[str, list[Responder]] = {}
        self._by_request: dict[str, str] = {}
        self._volatility: Any = None
        self._symbol_map = parse_symbol_map(config.execution.symbol_map)
        # The journal's first reads and writes: a damaged page they meet stops the start naming the file
        # (StateFileError), as damage found by the open does, instead of a traceback a service manager restarts.
        # The risk state first: it only reads, so damage there is found before anything is written.
        with opening(self.journal.path):
            self._restore_risk()
            self._book_tickets = self._restore_books()
            self._take_over_unsettled()

    def _take_over_unsettled(self) -> None:
        """Orders the previous run left pending become unknown, to be settled from the terminal's positions."""
        for order in self.journal.unsettled():
            # The daemon stopped mid-command: the outcome is unknown until the
            # terminal's positions say. Never resend blindly.
            order.status = UNKNOWN
            order.updated_msc = now_msc()
            self.journal.save(order)
            self.orders[order.id] = order
        if self.orders:
            log.warning("orders to reconcile from the previous run", count=len(self.orders))

    def _restore_risk(self) -> None:
        """The kill switch and the day's starting equity as the previous run left them (halted when unreadable)."""
        try:
            saved = self.journal.load_risk()
        except RiskStateDamaged as exc:
            # Unknown whether an operator had halted trading: halted it stays until one says otherwise.
            self.risk.restore({"kill_switch": True}, now_msc())
            log.error("saved risk state unreadable: trading halted to be safe (control risk {\"kill_switch\": false} lifts it)", problem=str(exc))
        else:
            if saved is not None and self.risk.restore(saved, now_msc()):  # the control request's halt, kept across the restart
                log.warning("trading halted: the kill switch was set on by the control request before the daemon stopped (control risk {\"kill_switch\": false} lifts it)")

    def _restore_books(self) -> dict[str, frozenset[int]]:
        """The positions each terminal listed before the restart, handed to the market as the baseline of its first
        list; returns their tickets by terminal (a book is saved again only when they change).

        Each book is checked as a positions event is (the file is ours, but a crash or an older version may have
        left anything): one that fails is dropped and said, and that terminal's first list is all "opened", as before.
        """
        books: dict[str, list[dict[str, Any]]] = {}
        clock_msc = now_msc()
        for terminal, positions in self.journal.load_books().items():
            try:
                check_positions(positions, clock_msc, self.config.daemon.max_clock_skew_ms)
            except ProtocolError as exc:
                log.warning("saved positions of a terminal unusable: its first list after this start counts as all opened", terminal=terminal, problem=str(exc)[:200])
                continue
            books[terminal] = positions
        self.daemon.market.restore_positions(books)
        return {terminal: frozenset(pos["ticket"] for pos in book) for terminal, book in books.items()}

    def _save_book(self, terminal: str, positions: list[dict[str, Any]]) -> None:
        """``terminal``'s book saved when its tickets changed (not its profit: a restart's first list says "updated").
        A failed save is tried again with the next list (its tickets are not taken as saved)."""
        tickets = frozenset(pos["ticket"] for pos in positions)
        if tickets == self._book_tickets.get(terminal, frozenset()):
            return
        try:
            self.journal.save_book(terminal, positions)
        except sqlite3.Error as exc:
            self.daemon.counters["risk_state_errors"] += 1
            self._journal_log.log("books", log.error, "positions not saved: after a restart the changes since the last save would be told again", error=repr(exc)[:300])
            return
        if tickets:
            self._book_tickets[terminal] = tickets
        else:
            self._book_tickets.pop(terminal, None)

    # -- wiring ------------------------------------------------------------------

    def attach(self) -> None:
        d = self.daemon
        d.on_event("hello", self.handle_hello)
        d.on_event("positions", self.handle_positions)
        d.on_event("account", self.handle_account)
        d.keeps_terminal(self.keeps_terminal)
        d.on_terminal_forgotten(self.forget_terminal)
        d.every_pass(self.check_timeouts)
        d.next_deadline(self.next_deadline)
        d.control.register_async("trade", self.control_trade)
        d.control.register_async("close", self.control_close)
        d.control.register_async("modify", self.control_modify)
        d.control.register("orders", self.control_orders)
        d.control.register("risk", self.control_risk)
        d.pending_trades = lambda: self._count(PENDING)  # health's data_flow: derived, never counted by hand
        d.status_fields(lambda: {"orders_pending": d.pending_trades(), "orders_unknown": self._count(UNKNOWN)})
        # the trading state in health: a trader learned of a halt only from the next order's refusal
        d.health_fields(lambda: {"trading": {"state": self.risk.state.value, "kill_switch": self.risk.kill_switch}})
        d.health_problems(self._unreported_problems)
        if self.risk.held_restored():
            log.info("positions counted until their terminals report", terminals=self.risk.held_restored())

    def set_volatility_source(self, source: Any) -> None:
        """``source(symbol) -> float | None``: recent volatility of tick returns for default stops."""
        self._volatility = source

    def close(self) -> None:
        """An ordered stop (uvicorn's shape): nothing new leaves, what left may finish, then the sockets.

        Commands still queued behind their terminal are refused (never sent:
        safe to ask again); a command in flight gets ``execution.stop_wait_ms``
        for its reply; an order still unanswered then is journaled unknown
        and its requester told so (the next start settles it from the
        terminal's positions). Before, a stop closed the sockets at once: the
        order stayed "pending" in the journal and its requester waited out
        its own timeout for an answer that never came.
        """
        until = time.monotonic() + self.config.execution.stop_wait_ms / 1000.0
        for session in self.sessions.values():
            for command in session.drop_queued():
                order = self.orders.get(command["id"])
                if order is not None and order.status == PENDING:
                    self._settle(order, REJECTED, error="not sent: the daemon stopped while it waited its turn at the terminal")
        for session in self.sessions.values():
            if session.inflight is not None:
                log.info("waiting for the terminal to answer before the stop", terminal=session.terminal, order=session.inflight.command["id"])
                session.await_inflight(until)
        for order in [o for o in self.orders.values() if o.status == PENDING]:
            self._mark_unknown(
                order,
                "the daemon stopped before the terminal answered; will settle from the terminal's positions at the next start",
                "the daemon is stopping before the terminal answered: the order's outcome is unknown and will be reconciled at the next start",
            )
        for session in self.sessions.values():
            session.close()
        self.journal.close()

    # -- terminal events ---------------------------------------------------------------

    def handle_hello(self, msg: dict[str, Any]) -> None:
        terminal = msg["terminal"]
        session = self.sessions.get(terminal)
        if session is None:
            ec = self.config.execution
            self.sessions[terminal] = CommandSession(
                terminal,
                msg["command_endpoint"],
                context=self._context,
                timeout_ms=ec.command_timeout_ms,
                retries=ec.command_retries,
                queue_max=ec.queue_max,
                watch=self.daemon.watch,
                unwatch=self.daemon.unwatch,
                on_reject=lambda reason, detail: self.daemon.rejects.reject("commands", reason, detail),
            )
            self.sessions[terminal].retarget(msg["command_endpoint"])
        else:
            session.retarget(msg["command_endpoint"])
        for order in self.orders.values():
            if order.terminal == terminal and order.status == UNKNOWN:
                order.snapshots_without = 0  # judge it on what the terminal reports from now on

    def keeps_terminal(self, terminal: str) -> str | None:
        """Why ``terminal``'s session may not give up its slot: an order of it unsettled, a command under way, a fill
        its positions have not listed yet (each settles from what it sends next, under its id)."""
        if any(o.terminal == terminal for o in self.orders.values()):
            return "it has unsettled orders"
        session = self.sessions.get(terminal)
        if session is not None and (session.inflight is not None or session.queue):
            return "a command to it is under way"
        if self._opened_not_listed.get(terminal):
            return "fills of it are not in its positions yet"
        return None

    def forget_terminal(self, terminal: str) -> None:
        """Its session was forgotten to make room: its command socket closed, its bookkeeping dropped (a hello
        under the same id later starts afresh). The journal keeps its orders; the risk state, its day's loss."""
        session = self.sessions.pop(terminal, None)
        if session is not None:
            session.close()
        self._closed_since_positions.pop(terminal, None)
        self._opened_not_listed.pop(terminal, None)
        if self.risk.forget_terminal(terminal):
            self._save_risk()

    def handle_account(self, msg: dict[str, Any]) -> None:
        # The daemon's clock decides the day, not the EA's: a terminal's old or skewed time_msc flipped the
        # day back and forth, and each flip took the day's starting equity afresh (no daily loss).
        if self.risk.on_account(msg["terminal"], msg["equity"], now_msc(), currency=msg["currency"], login=msg["login"]):
            self._save_risk()

    def _save_risk(self) -> None:
        """The kill switch and the day's starting equity, so a restart keeps both (a failure is counted and logged)."""
        try:
            self.journal.save_risk(self.risk.saved_state())
        except sqlite3.Error as exc:
            self.daemon.counters["risk_state_errors"] += 1
            self._journal_log.log("risk", log.error, "risk state not saved: a restart would forget the kill switch", error=repr(exc)[:300])

    def handle_positions(self, msg: dict[str, Any]) -> None:
        """Settle unknown orders of this terminal from its complete list of positions."""
        terminal = msg["terminal"]
        seq = msg["seq"]
        run = msg.get("run")
        if self.risk.on_positions(terminal, len(msg["positions"])):
            self._save_risk()
        self._save_book(terminal, msg["positions"])
        closed = self._closed_since_positions.get(terminal)
        if closed:
            for ticket, close in list(closed.items()):
                if self._shows_outcome(close, seq, run):  # one built before the close ran still shows the old lots (a review)
                    del closed[ticket]
        self._forget_listed_opens(terminal, {p["ticket"] for p in msg["positions"]}, seq, run)
        if self._not_executed:
            self._executed_after_all(terminal, msg["positions"])
        unknown = [o for o in self.orders.values() if o.terminal == terminal and o.status == UNKNOWN]
        if not unknown:
            return
        by_comment = {p["comment"]: p for p in msg["positions"]}
        by_ticket = {p["ticket"]: p for p in msg["positions"]}
        for order in unknown:
            if order.kind == "open" and ("QT-" + order.id) in by_comment:
                self._filled_from(order, by_comment["QT-" + order.id])
                continue
            held = by_ticket.get(order.ticket)
            if order.kind == "close" and held is None:
                self._settle(order, FILLED, reconciled=True)
                continue
            if order.kind == "close" and order.position_lots and held["lots"] < order.position_lots - 1e-9:  # held: a None closed it above
                # A partial close keeps the ticket on MT5 (and the paper terminal): its lots shrank.
                self._settle(order, FILLED, lots=round(order.position_lots - held["lots"], 8), reconciled=True)
                continue
            if order.kind == "modify" and held is not None and _same_price(held["sl"], order.sl) and _same_price(held["tp"], order.tp):
                self._settle(order, FILLED, reconciled=True)  # the position carries the stops asked for
                continue
            if not self._shows_outcome(order, seq, run):  # built before the command ran: silent on it
                continue
            order.snapshots_without += 1
            if order.snapshots_without >= self.config.execution.settle_snapshots:
                reason = f"not executed: the terminal's positions show no QT-{order.id} after {order.snapshots_without} snapshots"
                if order.kind == "close":
                    reason = f"not executed: position {order.ticket} still open after {order.snapshots_without} snapshots"
                self._settle(order, REJECTED, error=reason, reconciled=True)
                if order.kind == "open":
                    self._not_executed[order.id] = order
                    while len(self._not_executed) > _NOT_EXECUTED_KEPT:
                        del self._not_executed[next(iter(self._not_executed))]

    def _executed_after_all(self, terminal: str, positions: list[dict[str, Any]]) -> None:
        """Opens settled "not executed" whose QT-<id> a position now carries: filled after all, settled so.

        The snapshots that settled them were read after the command left, but a terminal that held it (frozen,
        or a command without a reply, so no ``event_seq`` to judge them by) can run it later; the order's
        history said "not executed" of a position the trader holds (a hunt's suggestion, 2026-12-05)."""
        for pos in positions:
            comment = pos["comment"]
            order = self._not_executed.get(comment[3:]) if comment.startswith("QT-") else None
            if order is None or order.terminal != terminal:
                continue
            del self._not_executed[order.id]
            self.daemon.counters["orders_executed_after_all"] += 1
            log.warning("an order settled as not executed was executed after all", id=order.id, terminal=terminal, ticket=pos["ticket"], earlier=order.error)
            self._filled_from(order, pos, error=f"executed after it was settled as {order.error!r}")

    def _filled_from(self, order: Order, pos: dict[str, Any], error: str = "") -> None:
        """An open settled filled from the position with its QT-<id>: its ticket, price and lots."""
        self._settle(order, FILLED, ticket=pos["ticket"], price=pos["open_price"], lots=pos["lots"], error=error, reconciled=True)

    # -- the Lazy Pirate loop duties -------------------------------------------------------

    def check_timeouts(self, now: float) -> None:
        for session in self.sessions.values():
            if session.inflight is not None and now >= session.deadline:
                session.check(now)

    def next_deadline(self) -> float:
        return min((s.deadline for s in self.sessions.values()), default=float("inf"))

    # -- control requests ----------------------------------------------------------------

    def control_trade(self, request: dict[str, Any], responder: Responder) -> None:
        if self._answer_repeat(request, responder):
            return
        _check_expiry(request)
        symbol = _symbol(request)
        side = _side(request)
        lots = _optional_number(request, "lots")
        sl = _optional_number(request, "sl", "stop_loss", "stopLoss") or 0.0
        tp = _optional_number(request, "tp", "take_profit", "takeProfit") or 0.0
        terminal, broker_symbol = self.route(symbol, _optional_text(request, "terminal"))
        if not self.positions_known(terminal):
            raise ControlError(f"terminal {terminal!r} has not sent its positions since the daemon started: the limits cannot be checked yet; retry in a few seconds", 503)
        quote = self.daemon.market.terminal_quotes.get((terminal, broker_symbol))  # the price this terminal trades at
        order = self._new_order(request, "open", terminal, symbol, broker_symbol, side)
        asked = lots
        plan = self.plan_open(terminal, broker_symbol, side, lots, sl, tp)
        if plan.problem:
            self._refuse(order, plan.problem, responder)
            return
        lots, sl, tp = plan.lots, plan.sl, plan.tp
        spec = self._spec(terminal, broker_symbol)
        account = self.daemon.market.accounts.get(terminal) or {}
        order.lots, order.sl, order.tp = lots, sl, tp
        intent = OpenIntent(broker_symbol, side, lots, sl, tp)
        reason = self.risk.check_open(
            intent,
            quote,
            self._quote_age_ms(terminal, broker_symbol),
            self._exposure(terminal, broker_symbol),
            spec,
            tick_lag_ms=tick_lag_ms(quote),
            equity=float(account.get("equity", 0.0)),
            account_currency=account.get("currency"),
        )
        if reason:
            if asked is not None and asked != lots and reason.startswith("lots "):  # "lots 0 below the minimum" of 0.001 asked
                reason += f" ({asked:g} asked, rounded down to the lot step {self.risk.lot_step(spec):g})"
            self._refuse(order, reason, responder)
            return
        ec = self.config.execution
        command = open_command(order.id, broker_symbol, side, lots, sl=sl, tp=tp, deviation_points=ec.deviation_points, magic=ec.magic)
        self._dispatch(order, command, responder, gate=lambda: self._still_wanted(order))

    def plan_open(self, terminal: str, broker_symbol: str, side: str, lots: float | None, sl: float = 0.0, tp: float = 0.0) -> OpenPlan:
        """The lots and stops an open at ``terminal`` gets before the risk rules judge it: missing stops set from
        the price and volatility, missing lots sized by risk, lots rounded down to the step. One place for
        :meth:`control_trade` and for auto-trading, which must judge the position limits with the lots an order
        will have (with 0 a sized order passed them, and every signal at the limit became a journaled refusal)."""
        quote = self.daemon.market.terminal_quotes.get((terminal, broker_symbol))
        spec = self._spec(terminal, broker_symbol)
        if quote is not None:
            vol = self._volatility(broker_symbol) if self._volatility else None
            sl, tp = self.risk.default_stops(side, quote["bid"], quote["ask"], sl, tp, vol)
            digits = _price_digits(quote["ask"])
            sl, tp = round(sl, digits), round(tp, digits)
            if lots is None:
                account = self.daemon.market.accounts.get(terminal) or {}
                problem = self.risk.sizing_problem(broker_symbol, account.get("currency"), spec)
                if problem:
                    return OpenPlan(0.0, sl, tp, problem)
                lots = self.risk.size_lots(broker_symbol, side, quote["bid"], quote["ask"], sl, float(account.get("equity", 0.0)), spec)
        return OpenPlan(round_lots_down(lots or 0.0, self.risk.lot_step(spec)), sl, tp, None)

    def control_close(self, request: dict[str, Any], responder: Responder) -> None:
        if self._answer_repeat(request, responder):
            return
        _check_expiry(request)
        ticket = _ticket(request)
        lots = _optional_number(request, "lots") or 0.0
        terminal, pos = self._find_position(ticket, _optional_text(request, "terminal"))
        order = self._new_order(request, "close", terminal, pos["symbol"], pos["symbol"], "")
        order.ticket, order.lots = ticket, lots
        # The lots the position has now, unless another close of it may still change them before the next
        # positions event (one in flight, or one filled since the last event): then a shrink proves nothing.
        closing = any(o.kind == "close" and o.ticket == ticket and o.terminal == terminal for o in self.orders.values())  # tickets are per terminal
        if not closing and ticket not in self._closed_since_positions.get(terminal, ()):
            order.position_lots = pos["lots"]
        if lots:
            step = self.risk.lot_step(self._spec(terminal, pos["symbol"]))
            order.lots = round_lots_down(lots, step)
            if not order.lots:  # 0 lots on the wire closes the whole position: never what a partial close asked for
                raise ControlError(f"lots {lots:g} is below the lot step {step:g}: nothing to close (0 would close the whole position)", 422)
        self._dispatch(order, close_command(order.id, ticket, order.lots, order.position_lots), responder)

    def control_modify(self, request: dict[str, Any], responder: Responder) -> None:
        if self._answer_repeat(request, responder):
            return
        _check_expiry(request)
        ticket = _ticket(request)
        sl = _optional_number(request, "sl", "stop_loss", "stopLoss")
        tp = _optional_number(request, "tp", "take_profit", "takeProfit")
        terminal, pos = self._find_position(ticket, _optional_text(request, "terminal"))
        sl = pos["sl"] if sl is None else sl
        tp = pos["tp"] if tp is None else tp
        order = self._new_order(request, "modify", terminal, pos["symbol"], pos["symbol"], pos["side"])
        order.ticket, order.sl, order.tp, order.lots = ticket, sl, tp, pos["lots"]
        # Only the stops that change are checked: a trailing stop already near the price must not block a new TP.
        reason = self.risk.check_modify(
            pos["side"], self.daemon.market.terminal_quotes.get((terminal, pos["symbol"])), sl if sl != pos["sl"] else 0.0, tp if tp != pos["tp"] else 0.0
        )
        if reason:
            self._refuse(order, reason, responder)
            return
        self._dispatch(order, modify_command(order.id, ticket, sl, tp), responder)

    def control_orders(self, request: dict[str, Any]) -> dict[str, Any]:
        """The newest orders; with ``request_id``, the order that trade request made (none: an empty list).

        A client whose trade request timed out (commands wait their turn at a slow terminal) asks this
        before it could think a retry safe: the order exists and may still fill.
        """
        request_id = _optional_text(request, "request_id")
        if request_id is not None:
            order = self._order_of_request(request_id)
            return {"orders": [order.to_app()] if order is not None else [], "request_id": request_id}
        limit = request.get("limit", 100)
        if type(limit) is not int or not 1 <= limit <= ORDERS_LIMIT_MAX:
            raise ControlError(f"limit must be an integer from 1 to {ORDERS_LIMIT_MAX}", 422)
        return {"orders": [o.to_app() for o in self.journal.recent(limit)]}

    def control_risk(self, request: dict[str, Any]) -> dict[str, Any]:
        """Read the trading state; ``{"kill_switch": true|false}`` flips the kill switch."""
        if "kill_switch" in request:
            if type(request["kill_switch"]) is not bool:
                raise ControlError("kill_switch must be true or false", 422)
            if request["kill_switch"] is False and self.risk.config_halts:
                raise ControlError("trading is halted by the config (risk.trading_enabled = false): set it true there and restart", 409)
            self.risk.switch(request["kill_switch"])
            # opens waiting behind a slow terminal were approved before the switch: refused now, not when their turn comes
            dropped = sum(session.recheck_queue() for session in self.sessions.values()) if self.risk.kill_switch else 0
            log.warning("kill switch changed", on=self.risk.kill_switch, source=request.get("source", ""), queued_opens_refused=dropped)
            self._save_risk()
        if "daily_loss_reset" in request:
            if type(request["daily_loss_reset"]) is not bool:
                raise ControlError("daily_loss_reset must be true or false", 422)
            if request["daily_loss_reset"]:
                self.risk.reset_daily_loss()
                log.warning("daily loss reset: the day starts again from the equity now", source=request.get("source", ""))
                self._save_risk()
        return {
            "state": self.risk.state.value,
            "kill_switch": self.risk.kill_switch,
            "daily_loss": self.risk.daily_loss(),
            "daily_losses": self.risk.daily_losses(),  # per account currency: the limit is judged in each alone
            "daily_loss_breached": self.risk.daily_loss_breached,
        }

    # -- routing -------------------------------------------------------------------------

    def route(self, symbol: str, terminal: str | None) -> tuple[str, str]:
        """(terminal, broker symbol) for a request; ControlError 503/400 when there is none or several."""
        connected = {s.terminal: s for s in self.daemon.terminals.connected()}
        if terminal is not None:
            session = connected.get(terminal)
            if session is None:
                raise ControlError(f"terminal {terminal!r} is not connected", 503)
            broker = self._broker_symbol(terminal, symbol, session.symbols)
            if broker is None:
                raise ControlError(f"terminal {terminal!r} does not stream {symbol}", 422)
            return terminal, broker
        if not connected:
            raise ControlError("no terminal connected", 503)
        default = self.config.execution.default_terminal
        if default:
            # The default trades what it streams even while it is away (silent, gone, or not heard since a restart):
            # one that blinked sent its auto-trades to the other account, the one the trader never picked, while its
            # own position was still open (a hunt), and so did a daemon restarted while it was down (a churn soak;
            # 2026-12-05). Another terminal trades a symbol only when the default's hello did not list it.
            session = self.daemon.terminals.sessions.get(default)
            broker = self._broker_symbol(default, symbol, session.symbols) if session is not None and session.registered else None
            streams = broker is not None or session is None or not session.registered  # not known yet: it may
            if streams and default not in connected:
                raise ControlError(
                    f"terminal {default!r} (execution.default_terminal), which trades what it streams when no terminal is named,"
                    " is not connected (silent, gone, or not heard since the daemon started): its orders do not go to another"
                    " account; name a terminal to trade there",
                    503,
                )
            if broker is not None:
                return default, broker
        candidates = [(t, b) for t, s in connected.items() if (b := self._broker_symbol(t, symbol, s.symbols)) is not None]
        if not candidates:
            raise ControlError(f"no connected terminal streams {symbol}", 422)
        if len(candidates) == 1:
            return candidates[0]
        names = ", ".join(sorted(t for t, _ in candidates))
        raise ControlError(f"{symbol} is streamed by several terminals ({names}): name one, or set execution.default_terminal", 400)

    def _broker_symbol(self, terminal: str, symbol: str, streamed: tuple[str, ...]) -> str | None:
        mapped = self._symbol_map.get((terminal, symbol))
        if mapped is not None:
            return mapped
        if symbol in streamed:
            return symbol
        # A broker suffix (EURUSD.r, EURUSDm, EURUSD#): use it when exactly one matches.
        matches = [s for s in streamed if s.startswith(symbol) and _SUFFIX_RE.fullmatch(s[len(symbol):])]
        return matches[0] if len(matches) == 1 else None

    # -- order lifecycle -----------------------------------------------------------------

    def _new_order(self, request: dict[str, Any], kind: str, terminal: str, symbol: str, broker_symbol: str, side: str) -> Order:
        stamp = now_msc()
        source = request.get("source", "")
        return Order(
            id=new_command_id(),
            kind=kind,
            terminal=terminal,
            symbol=symbol,
            broker_symbol=broker_symbol,
            side=side,
            lots=0.0,
            sl=0.0,
            tp=0.0,
            source=source if type(source) is str else "",
            request_id=request.get("id", "") if type(request.get("id")) is str else "",
            fingerprint=request_fingerprint(request),
            comment=_optional_text(request, "comment") or "",
            created_msc=stamp,
            updated_msc=stamp,
        )

    def _answer_repeat(self, request: dict[str, Any], responder: Responder) -> bool:
        """A control request repeated by a Lazy Pirate client finds its order instead of making another."""
        request_id = request.get("id")
        if type(request_id) is not str or not request_id:
            return False
        order = self._order_of_request(request_id)
        if order is None:
            return False
        if order.fingerprint and order.fingerprint != request_fingerprint(request):
            # A client's Idempotency-Key used again for another request (a close, other lots): answering with the
            # first order told the app "Position closed successfully" of a close that never happened (a hunt,
            # 2026-12-06). Refused, as the IETF Idempotency-Key draft says: a new request needs a new key.
            self.daemon.counters["request_ids_reused"] += 1
            responder.error(request_id_reused(request_id, f"order {order.id}, {order.kind} {order.symbol}"), 422)
            return True
        if order.status == PENDING:
            self._waiters.setdefault(order.id, []).append(responder)
        else:
            self._answer(order, responder)
        return True

    def _order_of_request(self, request_id: str) -> Order | None:
        order_id = self._by_request.get(request_id)
        order = self.orders.get(order_id) if order_id else None
        return order if order is not None else self.journal.by_request(request_id)

    def _record(self, order: Order) -> bool:
        """Save to the order journal; False (counted, logged once per interval) if SQLite refuses (a full disk).

        An order not yet sent is then refused (``_dispatch``): no command leaves without its durable
        intent. A later state that cannot be saved stays in memory and on the feed; after a restart the
        journal's older state makes the order unknown and the positions settle it, never a resend.
        """
        try:
            self.journal.save(order)
        except sqlite3.Error as exc:
            self.daemon.counters["order_journal_errors"] += 1
            self._journal_log.log("journal", log.error, "order journal write failed", error=repr(exc)[:300], order=order.id, status=order.status)
            return False
        return True

    def _refuse(self, order: Order, reason: str, responder: Responder) -> None:
        order.status = REJECTED
        order.error = reason
        self._record(order)
        self._publish(order)
        self.daemon.counters["orders_refused_by_risk"] += 1
        responder.error(reason, 422, order=order.to_app())

    def _still_wanted(self, order: Order) -> bool:
        """An open leaving its terminal's queue: the rules that may have changed while it waited, again
        (:meth:`RiskEngine.check_queued`). Refused, it is settled as rejected and never sent."""
        quote = self.daemon.market.terminal_quotes.get((order.terminal, order.broker_symbol))
        reason = self.risk.check_queued(
            OpenIntent(order.broker_symbol, order.side, order.lots, order.sl, order.tp),
            quote,
            self._quote_age_ms(order.terminal, order.broker_symbol),
            tick_lag_ms=tick_lag_ms(quote),
        )
        if reason is None:
            return True
        self.daemon.counters["orders_refused_by_risk"] += 1
        self._settle(order, REJECTED, error=f"not sent: while it waited its turn at the terminal, {reason}")
        return False

    def _dispatch(self, order: Order, command: dict[str, Any], responder: Responder, gate: Gate | None = None) -> None:
        session = self.sessions.get(order.terminal)
        if session is None:
            raise ControlError(f"terminal {order.terminal!r} has no command session yet", 503)
        if not self._record(order):  # the intent is durable before the command leaves, or it does not leave
            raise ControlError("the order journal cannot be written (see the daemon's log: a full disk?); no order is sent until it can", 503)
        self.orders[order.id] = order
        if order.request_id:
            self._by_request[order.request_id] = order.id
        self._waiters[order.id] = [responder]
        self._publish(order)
        account = self.daemon.market.accounts.get(order.terminal) or {}
        command = for_account(command, int(account.get("login", 0)))  # the terminal refuses it on another account
        order.epoch = self._hellos(order.terminal)
        if not session.submit(command, lambda reply, attempts, rtt_ns: self._on_reply(order, reply, attempts, rtt_ns), gate):
            self._settle(order, REJECTED, error=f"terminal {order.terminal} has {self.config.execution.queue_max} commands waiting")

    def _on_reply(self, order: Order, reply: dict[str, Any] | None, attempts: int, rtt_ns: int) -> None:
        order.attempts = attempts
        if reply is None:
            self._mark_unknown(
                order,
                f"no reply after {attempts} tries of {self.config.execution.command_timeout_ms} ms; will settle from the terminal's positions",
                "terminal did not answer in time; the order's outcome is unknown and will be reconciled",
            )
            return
        self.daemon.metrics.record("command_round_trip", rtt_ns)
        if "event_seq" in reply:
            if "run" in reply:  # the run that numbered it: the hellos read since the dispatch do not matter
                order.after_seq, order.after_run = reply["event_seq"], reply["run"]
                session = self.daemon.terminals.sessions.get(order.terminal)
                order.runs_read = session.runs_read if session is not None else 0
            elif self._hellos(order.terminal) == order.epoch:  # else which run of the EA it counts in is unknown
                order.after_seq = reply["event_seq"]
        retried_close_gone = order.kind == "close" and attempts > 1 and not reply["ok"] and reply["error"]["code"] in CLOSE_TARGET_GONE
        if not reply["ok"] and (reply["error"]["code"] in OUTCOME_UNKNOWN or retried_close_gone):
            err = reply["error"]
            text = describe(err["code"], err["message"])
            self._mark_unknown(order, f"{text}; may still execute, will settle from the terminal's positions", f"{text}: the order's outcome is unknown and will be reconciled")
            return
        if reply["ok"]:
            error, error_code = "", 0
            stops = reply.get("stops_error")
            if stops is not None:
                # The position exists without the stops asked for: say so, and record what it holds.
                error_code = stops["code"]
                error = f"filled, but the terminal refused its stops: {describe(error_code, stops['message'])}; the position has no SL/TP"
                order.sl = order.tp = 0.0
                self.daemon.counters["orders_stops_refused"] += 1
                log.warning("order filled without its stops", id=order.id, terminal=order.terminal, ticket=reply.get("ticket"), error=error)
            self._settle(
                order,
                FILLED,
                ticket=reply.get("ticket", order.ticket),
                price=reply.get("price", 0.0),
                lots=reply.get("lots", order.lots),
                error=error,
                error_code=error_code,
            )
        else:
            err = reply["error"]
            self._settle(order, REJECTED, error=describe(err["code"], err["message"]), error_code=err["code"])

    def _mark_unknown(self, order: Order, error: str, answer: str) -> None:
        """The terminal may or may not have executed it: kept open until a positions snapshot settles it."""
        order.status = UNKNOWN
        order.error = error
        order.updated_msc = now_msc()
        self._record(order)
        self._publish(order)
        self.daemon.counters["orders_unknown"] += 1
        for responder in self._waiters.pop(order.id, []):
            responder.error(answer, 504, order=order.to_app())

    def _settle(self, order: Order, status: str, *, ticket: int = 0, price: float = 0.0, lots: float | None = None, error: str = "", error_code: int = 0, reconciled: bool = False) -> None:
        order.status = status
        order.ticket = ticket or order.ticket
        order.price = price or order.price
        if lots:
            order.lots = lots
        order.error = error
        order.error_code = error_code
        order.reconciled = reconciled
        order.updated_msc = now_msc()
        if order.kind == "close" and status == FILLED:
            self._closed_since_positions.setdefault(order.terminal, {})[order.ticket] = order
        if order.kind == "open" and status == FILLED and not reconciled and order.ticket not in self.daemon.market.positions.get(order.terminal, {}):
            self._opened_not_listed.setdefault(order.terminal, {})[order.ticket] = [order, 0]
        self._record(order)
        self.orders.pop(order.id, None)
        # a retried request finds a settled order in the journal (_order_of_request): an entry per request
        # for good was all a soak saw grow (2,000 after 2,000 trades)
        self._by_request.pop(order.request_id, None)
        self._publish(order)
        self.daemon.counters[f"orders_{status}"] += 1
        if reconciled:
            log.info("order reconciled", id=order.id, status=status, ticket=order.ticket, terminal=order.terminal)
        for responder in self._waiters.pop(order.id, []):
            self._answer(order, responder)

    def _answer(self, order: Order, responder: Responder) -> None:
        if order.status == FILLED:
            responder.ok(order=order.to_app())
        elif order.status == REJECTED:
            responder.error(order.error or "rejected", 422, order=order.to_app())
        else:
            responder.error("the order's outcome is unknown and will be reconciled", 504, order=order.to_app())

    def _publish(self, order: Order) -> None:
        self.daemon.feed.publish("trade", order.to_app(), order.updated_msc or now_msc())

    # -- helpers -------------------------------------------------------------------------

    def _count(self, status: str) -> int:
        return sum(1 for o in self.orders.values() if o.status == status)

    def _spec(self, terminal: str, broker_symbol: str) -> dict[str, float] | None:
        """The symbol's specs as its terminal last sent them (hello or heartbeat), None if it did not."""
        session = self.daemon.terminals.sessions.get(terminal)
        return session.specs.get(broker_symbol) if session is not None else None

    def _quote_age_ms(self, terminal: str, symbol: str) -> float:
        # Receive time, not the broker's tick time: broker clocks and replayed data drift.
        received_ns = self.daemon.market.terminal_received_ns.get((terminal, symbol))
        if received_ns is None:
            return math.inf
        return (time.perf_counter_ns() - received_ns) / 1e6

    def limits_reason(self, terminal: str, broker_symbol: str, lots: float) -> str | None:
        """Why an open of ``lots`` (0: sized later) at ``terminal`` would be refused by the position limits, or None."""
        return self.risk.check_limits(self._exposure(terminal, broker_symbol), lots)

    def _expire_held(self) -> None:
        """Terminals that listed positions before the restart and never came back stop counting after retire_after_s."""
        if self._held_until is not None and time.monotonic() > self._held_until:
            self.risk.forget_held()
            self._held_until = None

    def _unreported_problems(self) -> list[str]:
        """Terminals that listed positions before the restart and have not since: the limits count them, health says so
        (a churn soak saw health "healthy" while a frozen terminal's positions were nowhere in the daemon)."""
        self._expire_held()
        books = self.daemon.market.positions
        missing = {t: n for t, n in self.risk.held_restored().items() if t not in books}
        if not missing:
            return []
        # Without the ids: a terminal not heard yet has no session, so the sidecar could not hide its id (a broker
        # login) from a caller without a token as it does every listed terminal's. The start's log names them.
        return [
            f"{len(missing)} terminal(s) listed {sum(missing.values())} open positions before the daemon started and have not"
            " reported since; they count toward risk.max_open_positions until they do (or daemon.retire_after_s)"
        ]

    def _exposure(self, terminal: str, broker_symbol: str) -> Exposure:
        opens = self.opens_not_in_positions()  # once: holdings reads the same list
        held = sum(lots for _, lots in self.holdings(terminal, broker_symbol, opens))
        books = self.daemon.market.positions
        self._expire_held()
        unreported = self.risk.unreported_positions(books)  # listed before the restart, not since
        return Exposure(open_positions=sum(len(b) for b in books.values()) + unreported + len(opens), symbol_lots=held)

    def positions_known(self, terminal: str) -> bool:
        """Whether ``terminal`` has sent its positions since this daemon started. A terminal that outlived a restart
        is routable from its first heartbeat; its positions come in the next events, and a batch of signals
        between the two was traded against an empty book: a kill -9 soak (2026-12-05) saw one terminal go from 16
        positions to 31, each symbol's pair held twice, max_open_positions 20. Opens wait for them."""
        return terminal in self.daemon.market.positions

    def holdings(self, terminal: str, broker_symbol: str, opens: list[Order] | None = None) -> list[tuple[str, float]]:
        """(side, lots) of what ``terminal`` holds or has under way in ``broker_symbol``: its positions, and its opens
        the positions do not show yet (``opens``: :meth:`opens_not_in_positions`, when the caller has it). The risk
        limits' exposure and auto-trading's one per direction read it."""
        book = self.daemon.market.positions.get(terminal, {}).values()
        held = [(p["side"], p["lots"]) for p in book if p["symbol"] == broker_symbol]
        opens = self.opens_not_in_positions() if opens is None else opens
        return held + [(o.side, o.lots) for o in opens if o.terminal == terminal and o.broker_symbol == broker_symbol]

    def _forget_listed_opens(self, terminal: str, tickets: set[int], seq: int, run: int | None) -> None:
        """A positions event (numbered ``seq`` in ``run``): filled opens it lists are counted from the positions now; one
        missing from ``settle_snapshots`` events built after it filled was closed before any listed it (its stop),
        and holds no slot."""
        waiting = self._opened_not_listed.get(terminal)
        if not waiting:
            return
        for ticket, entry in list(waiting.items()):
            if ticket in tickets:
                del waiting[ticket]
                continue
            if self._shows_outcome(entry[0], seq, run):
                entry[1] += 1
                if entry[1] >= self.config.execution.settle_snapshots:
                    del waiting[ticket]

    def _shows_outcome(self, order: Order, seq: int, run: int | None) -> bool:
        """Whether the terminal's positions event numbered ``seq`` (in ``run``) was built after ``order``'s command ran.

        A daemon behind on a terminal's events (a fast feed, a backlog after a restart) read positions events
        the terminal built before the fill, after the fill's reply: three of them dropped a filled open from the
        limits' count while the positions it read did not show it yet (max_open_positions 3, 9 positions open),
        and settled executed opens as "not executed" (a hunt, 2026-12-05). The reply's ``event_seq`` says which
        events came after. Where the reply and the event name their EA's ``run``, (run, seq) orders them across
        re-initialisations: an EA re-initialised while the daemon was behind answered from its new run, numbered
        afresh, and the old run's queued events counted as after it. Without ``event_seq``, or without runs and
        with a hello since the dispatch (another run of the EA, its numbers afresh), every event counts, as before."""
        if order.after_seq is None:
            return True
        if order.after_run is not None and run is not None:
            if run == order.after_run:
                return seq > order.after_seq
            # Which run came first, by the order the daemon read them (TerminalSession.runs), not by their numbers
            # (the EAs' clocks): a clock set back between two runs made every later event count as earlier.
            session = self.daemon.terminals.sessions.get(order.terminal)
            runs = session.runs if session is not None else {}
            read, reply_read = runs.get(run), runs.get(order.after_run)
            if read is not None and reply_read is not None:
                return read > reply_read
            if read is not None:  # the reply's run not read yet: this event's run came before it if read before the reply
                return read > order.runs_read
            return run > order.after_run  # its run never read (a hello lost): by number, the EAs' runs grow with the clock
        if self._hellos(order.terminal) != order.epoch:
            return True
        return seq > order.after_seq

    def _hellos(self, terminal: str) -> int:
        session = self.daemon.terminals.sessions.get(terminal)
        return session.hellos if session is not None else -1

    def opens_not_in_positions(self) -> list[Order]:
        """Opens the positions do not show, for the risk limits and auto-trading's one per direction.

        Filled ones whose terminal has not listed them yet (a terminal replies first and sends positions after:
        counting on the positions alone let a burst of orders past the limits in between), pending ones, and
        unknown ones of a terminal that is with us in this run and has not said bye: a
        frozen terminal runs the commands it received when it unblocks (counting only pending ones let
        every later order through). An unknown open of a terminal not seen since a restart, or gone,
        still settles from its positions when it returns, but holds no slot meanwhile: a renamed or
        retired terminal's would hold one for good.
        """
        terminals = self.daemon.terminals
        filled = [entry[0] for waiting in self._opened_not_listed.values() for entry in waiting.values()]
        return filled + [
            o
            for o in self.orders.values()
            if o.kind == "open" and (o.status == PENDING or (o.terminal in terminals.sessions and not terminals.is_gone(o.terminal)))
        ]

    def _find_position(self, ticket: int, terminal: str | None) -> tuple[str, dict[str, Any]]:
        positions = self.daemon.market.positions
        gone = self.daemon.terminals.is_gone
        if terminal is not None:
            book = positions.get(terminal, {})
            found = [(terminal, book[ticket])] if ticket in book else []
        else:
            found = [(term, book[ticket]) for term, book in positions.items() if ticket in book]
            live = [(term, pos) for term, pos in found if not gone(term)]
            if len(live) == 1 and all(_same_position(pos, live[0][1]) for term, pos in found if gone(term)):
                found = live  # a renamed TerminalId: the gone name's copy of the same position, not a second one
        if len(found) > 1:  # tickets are per broker: two terminals may both hold this number
            # a gone terminal's too: its row is still listed, and its close landed on the other's position
            names = ", ".join(sorted(term for term, _ in found))
            raise ControlError(f"ticket {ticket} is held by several terminals ({names}): name one", 400)
        if found and gone(found[0][0]):  # its last positions stay known, but it takes no command
            raise ControlError(f"ticket {ticket} is held by {found[0][0]}, which said bye: it takes no command until it is back", 409)
        if not found:
            raise ControlError(f"no open position with ticket {ticket}", 404)
        return found[0]


# -- request field helpers (control requests are outside input: validate everything) ----------


def tick_lag_ms(quote: dict[str, Any] | None) -> float:
    """How far a quote's (or a signal's) own tick time lies behind this machine's UTC clock (0 for none, or one ahead)."""
    return max(0.0, float(now_msc() - quote["time_msc"])) if quote is not None else 0.0


def _symbol(request: dict[str, Any]) -> str:
    try:
        return check_symbol(request.get("symbol"))
    except ProtocolError as exc:
        raise ControlError(exc.detail, 422) from None


def _side(request: dict[str, Any]) -> str:
    side = order_side(request.get("side", request.get("type")))
    if side is None:
        raise ControlError("side must be buy or sell", 422)
    return side


#: Beyond any lot size, stop or take-profit of any market (the protocol's price bound); lot arithmetic on 1e308 overflowed (a 500).
_MAX_NUMBER = MAX_PRICE


def _optional_number(request: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = request.get(name)
        if value is None:
            continue
        if type(value) not in (int, float) or not 0 <= value <= _MAX_NUMBER:  # NaN fails it
            raise ControlError(f"{name} must be a number from 0 to {_MAX_NUMBER:g}", 422)
        return float(value)
    return None


def _check_expiry(request: dict[str, Any]) -> None:
    """``expires_msc`` (added, optional): a requester that stops waiting says when; read after it, nothing is done.
    The sidecar answered "not reachable" to a trade the stalled daemon read seconds later and executed."""
    expires = request.get("expires_msc")
    if expires is None:
        return
    if type(expires) is not int:
        raise ControlError("expires_msc must be an integer (ms since the epoch)", 422)
    late_ms = now_msc() - expires
    if late_ms > 0:
        raise ControlError(f"the request expired {late_ms} ms before the daemon read it: nothing was done", 408)


def _optional_text(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if type(value) is not str or len(value) > 64:
        raise ControlError(f"{name} must be a string of at most 64 characters", 422)
    return value


def _ticket(request: dict[str, Any]) -> int:
    ticket = positive_int(request.get("ticket"), MAX_TICKET)
    if ticket is None:
        raise ControlError("ticket must be a positive integer, at most 2^64-1 (or its string)", 422)
    return ticket


def _same_position(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """One position listed under two terminal ids (the EA's TerminalId changed): same symbol, side, opening and comment."""
    return all(a[k] == b[k] for k in ("symbol", "side", "open_time_msc", "comment"))


def _same_price(a: float, b: float) -> bool:
    """Equal as a terminal would store them (rounded to the symbol's digits: well above 1e-7 apart when not)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7)


def _price_digits(price: float) -> int:
    """Digits to round computed stops to: 5 for FX majors, 3 for JPY pairs, 2 for metals and indices."""
    if price < 10:
        return 5
    return 3 if price < 1000 else 2
