"""Per-symbol evaluation of the ensemble against baselines; text table, JSON and plot.

Strategies compared on the same ticks and the same horizon:
- ``ensemble``: the daemon's signals (BUY/SELL acted on, HOLD not);
- ``technical``: the technical component alone, through the same thresholds
  and signal policy (``models.policy.apply_policy``, the kernel's own code);
- ``coin_flip``: a seeded coin decides BUY or SELL at each moment the
  ensemble acts, so it trades as often and as late as the ensemble does
  (one draw: what the ensemble is judged against is the chance level at
  those moments, ``scoring.trade_scores``);
- ``always_hold``: never trades, always says 0.5.

No strategy trades across a pause of the market longer than
:data:`MAX_HOLD_GAP_MS` (a weekend, a holiday): the horizon is counted in
ticks, and a trade opened on Friday's last ticks would be held to Sunday's.
Each strategy counts the ones it left out (``trades_over_gap``).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from quantumtrader.config import SignalsConfig
from quantumtrader.evaluate.replay import ReplayResult, TickArrays
from quantumtrader.evaluate.scoring import calibration, probability_scores, trade_scores, up_down
from quantumtrader.models.policy import BUY, HOLD, PREDICTIONS, SELL, apply_policy
from quantumtrader.models.state import make_policy_state
from quantumtrader.outputs import replacing, save_figure
from quantumtrader.pips import pip_size

COIN_SEED = 20140501

#: A trade whose horizon holds a pause between two ticks longer than this is not scored (see the module's doc).
MAX_HOLD_GAP_MS = 3_600_000


def technical_policy(result: ReplayResult, cfg: SignalsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The signal policy over the technical component's probabilities, every tick in one call.

    Each symbol runs as its pipeline row (``result.rows``), with a policy
    state of its own, as in the daemon: the row matters, because the policy
    starts each symbol's interval clock early by a fraction that depends on
    it (``models.policy.policy_step``), so a baseline run as another row
    would time its first periodic signal, and those after it until a
    prediction changes, apart from the ensemble's.
    """
    t = result.ticks
    n = t.sym.shape[0]
    prediction = np.empty(n, dtype=np.int64)
    emit = np.empty(n, dtype=np.bool_)
    rows = result.rows[t.sym]
    params3 = np.array([cfg.buy_threshold, cfg.sell_threshold, cfg.interval_s])
    policy = make_policy_state(int(result.rows.max()) + 1 if result.rows.size else 0)
    apply_policy(policy, rows, result.technical, t.time_msc / 1000.0, params3, prediction, emit)
    return prediction, emit


def spans_gap(time_msc: np.ndarray, horizon: int) -> np.ndarray:
    """Per labelled tick (all but the last ``horizon``): whether its horizon holds a pause of more than
    :data:`MAX_HOLD_GAP_MS` between two ticks."""
    n_labelled = max(0, time_msc.size - horizon)
    gaps_before = np.concatenate(([0], np.cumsum(np.diff(time_msc) > MAX_HOLD_GAP_MS)))  # pauses before each tick
    return gaps_before[horizon:] - gaps_before[:n_labelled] > 0


#: What became of each signal (``--signals``' ``outcome`` column), by code: not acted on, scored, acted on within the
#: horizon of the file's end (no outcome yet), or acted on with a market pause within its horizon (not scored).
OUTCOMES: tuple[str, ...] = ("hold", "scored", "no_outcome_yet", "market_pause")
NOT_ACTED, SCORED, NO_OUTCOME_YET, MARKET_PAUSE = range(len(OUTCOMES))
NO_SIGNAL = -1


def signal_outcomes(prediction: np.ndarray, emit: np.ndarray, over_gap: np.ndarray) -> np.ndarray:
    """Per tick, the outcome code (:data:`OUTCOMES`) of the signal given there, :data:`NO_SIGNAL` where none was:
    the one rule of which signals are scored, for the scores and ``--signals`` alike."""
    n_labelled = over_gap.size
    code = np.full(prediction.size, NO_SIGNAL, dtype=np.int64)
    code[emit] = NOT_ACTED
    acted = emit & (prediction != HOLD)
    code[acted] = NO_OUTCOME_YET
    labelled = acted[:n_labelled]
    code[:n_labelled][labelled] = np.where(over_gap[labelled], MARKET_PAUSE, SCORED)
    return code


class Acted(NamedTuple):
    """A strategy's BUY/SELL signals: the scored ones' rows and sides (+1 BUY, -1 SELL), and how many there were
    in all (``signals``) and left out for a pause (``over_gap``)."""

    rows: np.ndarray
    direction: np.ndarray
    signals: int
    over_gap: int


def _acted(prediction: np.ndarray, code: np.ndarray) -> Acted:
    rows = np.flatnonzero(code == SCORED)
    acted = int((code >= SCORED).sum())  # every code from SCORED up is a BUY or SELL
    return Acted(rows, np.where(prediction[rows] == BUY, 1, -1), acted, int((code == MARKET_PAUSE).sum()))


def _strategy(name: str, p: np.ndarray | None, acted: Acted, emit: np.ndarray | None, prediction: np.ndarray | None,
              y: np.ndarray, bid: np.ndarray, ask: np.ndarray, mid: np.ndarray, horizon: int, pip: float) -> dict[str, Any]:
    rows = acted.rows
    n_labelled = y.size
    probs = probability_scores(np.full(n_labelled, 0.5) if p is None else p[:n_labelled], y)
    trades = trade_scores(acted.direction, rows, bid, ask, mid, horizon, pip)
    out: dict[str, Any] = {"strategy": name, "probability": probs, **trades}
    out["trades_over_gap"] = acted.over_gap
    if emit is not None and prediction is not None:
        out["signals"] = int(emit.sum())
        out["signals_by_prediction"] = {label: int((emit & (prediction == code)).sum()) for label, code in (("BUY", BUY), ("SELL", SELL), ("HOLD", HOLD))}
    else:  # the coin: a signal at each of the ensemble's BUY/SELL moments
        out["signals"] = acted.signals
    out["_cumulative_pnl"] = np.cumsum(trades["_per_trade"]["pnl_pips"])
    out["_rows"] = rows
    out["calibration"] = calibration(p[:n_labelled], y) if p is not None else []
    return out


def evaluate_symbol(result: ReplayResult, s: int, ticks_of: np.ndarray, technical: tuple[np.ndarray, np.ndarray], cfg: SignalsConfig) -> dict[str, Any]:
    """Symbol ``s``'s report; ``ticks_of``: the indices of its ticks in time order; ``technical``: :func:`technical_policy`'s."""
    t = result.ticks
    symbol = t.symbols[s]
    bid, ask = t.bid[ticks_of], t.ask[ticks_of]
    h = cfg.horizon_ticks
    n = bid.size
    n_labelled = max(0, n - h)
    mid = 0.5 * (bid + ask)
    pip = pip_size(symbol, float(np.median(mid)))
    y = up_down(mid[h:], mid[:n_labelled])[0].astype(np.float64)
    p, tech = result.probability[ticks_of], result.technical[ticks_of]
    prediction, emit = result.prediction[ticks_of], result.emit[ticks_of]

    times = t.time_msc[ticks_of]
    over_gap = spans_gap(times, h)
    outcome = signal_outcomes(prediction, emit, over_gap)
    ensemble = _acted(prediction, outcome)
    tech_pred, tech_emit = technical[0][ticks_of], technical[1][ticks_of]
    # A coin of each symbol's own: one sequence for all gave every symbol of a run the same draws.
    coin = np.random.default_rng([COIN_SEED, zlib.crc32(symbol.encode())]).choice(np.array([1, -1]), size=ensemble.rows.size)
    strategies = [
        _strategy("ensemble", p, ensemble, emit, prediction, y, bid, ask, mid, h, pip),
        _strategy("technical", tech, _acted(tech_pred, signal_outcomes(tech_pred, tech_emit, over_gap)), tech_emit, tech_pred, y, bid, ask, mid, h, pip),
        _strategy("coin_flip", None, ensemble._replace(direction=coin), None, None, y, bid, ask, mid, h, pip),
        _strategy("always_hold", None, Acted(ensemble.rows[:0], ensemble.direction[:0], 0, 0), None, None, y, bid, ask, mid, h, pip),
    ]
    spread_pips = (ask - bid) / pip
    return {
        "_signals": _signal_table(strategies[0], outcome, times, bid, ask, p, tech, prediction, h),
        "symbol": symbol,
        "ticks": int(n),
        "labelled_ticks": int(n_labelled),
        "horizon_ticks": h,
        "pip_size": pip,
        "median_spread_pips": float(np.median(spread_pips)) if n else math.nan,
        "strategies": strategies,
    }


SIGNAL_COLUMNS: tuple[str, ...] = (
    "symbol", "tick", "time_msc", "prediction", "probability", "technical", "outcome",
    "exit_time_msc", "entry_bid", "entry_ask", "exit_bid", "exit_ask", "hit", "pnl_pips",
)  # fmt: skip


def _signal_table(ensemble: dict[str, Any], outcome: np.ndarray, times: np.ndarray, bid: np.ndarray, ask: np.ndarray, p: np.ndarray,
                  tech: np.ndarray, prediction: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """The ensemble's signals one by one (``outcome``: :func:`signal_outcomes`), with the quotes each was scored
    on and the scoring's own per-trade hit and P&L, not computed again: what ``--signals`` writes."""
    rows = np.flatnonzero(outcome != NO_SIGNAL)
    code = outcome[rows]
    scored = code == SCORED
    # the scored signals are the ensemble's trades (both from signal_outcomes), in the same order
    scored_at = np.searchsorted(ensemble["_rows"], rows[scored])
    hit, pnl = np.zeros(rows.size, dtype=np.bool_), np.zeros(rows.size)
    hit[scored], pnl[scored] = ensemble["_per_trade"]["hit"][scored_at], ensemble["_per_trade"]["pnl_pips"][scored_at]
    exit_rows = np.minimum(rows + horizon, times.size - 1)
    return {
        "tick": rows, "time_msc": times[rows], "prediction": prediction[rows], "probability": p[rows], "technical": tech[rows],
        "outcome": code, "exit_time_msc": times[exit_rows], "entry_bid": bid[rows], "entry_ask": ask[rows],
        "exit_bid": bid[exit_rows], "exit_ask": ask[exit_rows], "hit": hit, "pnl_pips": pnl,
    }  # fmt: skip


def write_signals(path: Path, symbols: list[dict[str, Any]]) -> None:
    """Every ensemble signal of every scored symbol as CSV (:data:`SIGNAL_COLUMNS`), in time order per symbol,
    replacing ``path`` whole or not at all (``outputs.UnwrittenOutput``). ``tick`` is the signal's place among
    its symbol's accepted ticks (from 0), so its exit is tick + H even where two ticks share a millisecond.
    Exit quotes are given for a BUY/SELL with an outcome (scored, or left out for a market pause); hit and
    P&L for a scored one only; an empty field where there is none."""
    import csv

    with replacing(path) as temporary, temporary.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=SIGNAL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for sym in symbols:
            tab = sym["_signals"]
            for i in range(tab["tick"].size):
                code = int(tab["outcome"][i])
                row = {"symbol": sym["symbol"], "tick": int(tab["tick"][i]), "time_msc": int(tab["time_msc"][i]), "outcome": OUTCOMES[code],
                       "prediction": PREDICTIONS[int(tab["prediction"][i])], "probability": repr(float(tab["probability"][i])),
                       "technical": repr(float(tab["technical"][i])), "entry_bid": repr(float(tab["entry_bid"][i])),
                       "entry_ask": repr(float(tab["entry_ask"][i]))}  # fmt: skip
                if code in (SCORED, MARKET_PAUSE):  # there is a tick H later
                    row.update(exit_time_msc=int(tab["exit_time_msc"][i]), exit_bid=repr(float(tab["exit_bid"][i])), exit_ask=repr(float(tab["exit_ask"][i])))
                if code == SCORED:
                    row.update(hit=int(tab["hit"][i]), pnl_pips=repr(float(tab["pnl_pips"][i])))
                writer.writerow(row)


def _scorable(n_ticks: int, horizon_ticks: int) -> bool:
    """The one rule both sides below use: a symbol is scored when some tick has an outcome ``horizon_ticks`` later."""
    return n_ticks > horizon_ticks


def too_few_ticks(ticks: TickArrays, horizon_ticks: int) -> dict[str, int]:
    """Symbols with no more accepted ticks than the horizon, and how many they have: none of their ticks has
    an outcome ``horizon_ticks`` later, so there is nothing to score them on (every score was NaN, printed as
    a table of ``nan``)."""
    counts = np.bincount(ticks.sym, minlength=len(ticks.symbols))
    return {symbol: int(n) for symbol, n in zip(ticks.symbols, counts) if not _scorable(n, horizon_ticks)}


def evaluate(result: ReplayResult, cfg: SignalsConfig) -> list[dict[str, Any]]:
    """The report of every symbol with more ticks than the horizon (the others: :func:`too_few_ticks`).

    The ticks are grouped by symbol once (a stable sort keeps each symbol's in
    time order) and the technical baseline's policy runs once over all of them:
    per symbol, a mask over every tick and a policy state sized to the symbol's
    row made the work grow with the square of the symbol count."""
    order = np.argsort(result.ticks.sym, kind="stable")
    bounds = np.searchsorted(result.ticks.sym[order], np.arange(len(result.ticks.symbols) + 1))
    technical = technical_policy(result, cfg)
    return [
        evaluate_symbol(result, s, order[bounds[s] : bounds[s + 1]], technical, cfg)
        for s in range(len(result.ticks.symbols))
        if _scorable(bounds[s + 1] - bounds[s], cfg.horizon_ticks)
    ]


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the private series (``_*`` keys): the arrays the plot and ``--signals`` use."""
    if isinstance(report, dict):
        return {k: public(v) for k, v in report.items() if not k.startswith("_")}
    if isinstance(report, list):
        return [public(v) for v in report]
    return report


def _fmt(x: float, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _fmt_p(p: float) -> str:
    """A p-value to three places, and one below that as such, not as a 0.000 that reads as impossible."""
    return "<0.001" if p < 0.0005 else _fmt(p, ".3f")


def text_table(symbols: list[dict[str, Any]]) -> str:
    lines = []
    for sym in symbols:
        lines.append(
            f"{sym['symbol']}: {sym['ticks']:,} ticks, horizon {sym['horizon_ticks']} ticks, "
            f"pip {sym['pip_size']:g}, median spread {sym['median_spread_pips']:.2f} pips, base rate (mid up) {sym['strategies'][0]['probability']['base_rate']:.4f}"
        )
        lines.append(
            f"  {'strategy':<12} {'signals':>8} {'trades':>7} {'hit rate':>9} {'95% CI':>17} {'chance':>7} {'p':>7} {'won':>6} "
            f"{'P&L pips':>11} {'pips/trade':>10} {'Brier':>8} {'skill':>8} {'log loss':>9}"
        )
        for st in sym["strategies"]:
            ci = st["hit_rate_ci95"]
            pr = st["probability"]
            lines.append(
                f"  {st['strategy']:<12} {st['signals']:>8} {st['trades']:>7} {_fmt(st['hit_rate'], '.4f'):>9} "
                f"{'[' + _fmt(ci[0], '.3f') + ', ' + _fmt(ci[1], '.3f') + ']':>17} {_fmt(st['chance_hit_rate'], '.4f'):>7} "
                f"{_fmt_p(st['p_value_vs_chance']):>7} {_fmt(st['win_rate'], '.3f'):>6} {st['pnl_pips']:>11.1f} {_fmt(st['pnl_pips_per_trade'], '.3f'):>10} "
                f"{pr['brier']:>8.5f} {_fmt(pr['brier_skill'], '+.5f'):>8} {pr['log_loss']:>9.5f}"
            )
        lines.append(
            "  95% CI: allowing for overlapping trades (a chain of trades opened within the horizon of each other shares"
            " its outcome); chance: what a random side hits at the same moments (ties miss both); p: the hit rate against"
            " chance; won: the share of trades that made money after the spread"
        )
        gapped = {st["strategy"]: st["trades_over_gap"] for st in sym["strategies"] if st["trades_over_gap"]}
        if gapped:
            lines.append(
                f"  not scored, their horizon spanning a market pause over {MAX_HOLD_GAP_MS // 60_000} min: "
                + ", ".join(f"{name} {k}" for name, k in gapped.items())
            )
        lines.append(
            f"  reference: Brier of the base rate {sym['strategies'][0]['probability']['brier_base_rate']:.5f}, "
            f"log loss of the base rate {sym['strategies'][0]['probability']['log_loss_base_rate']:.5f}"
        )
    return "\n".join(lines)


def plot(symbols: list[dict[str, Any]], path: Path) -> None:
    """Calibration curve and cumulative P&L per symbol (needs the ``plot`` extra: matplotlib), replacing ``path``
    whole or not at all (``outputs.UnwrittenOutput``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(symbols), 2, figsize=(12, 4.5 * len(symbols)), squeeze=False)
    for (cal_ax, pnl_ax), sym in zip(axes, symbols):
        cal_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for st in sym["strategies"]:
            if st["calibration"]:
                cal_ax.plot([b["p_mean"] for b in st["calibration"]], [b["observed"] for b in st["calibration"]], marker="o", label=st["strategy"])
            if st["trades"]:
                pnl_ax.plot(st["_cumulative_pnl"], label=f"{st['strategy']} ({st['trades']} trades)")
        cal_ax.set(title=f"{sym['symbol']}: calibration (P(mid up in {sym['horizon_ticks']} ticks))", xlabel="predicted", ylabel="observed")
        cal_ax.legend()
        pnl_ax.axhline(0, color="grey", linewidth=0.8)
        pnl_ax.set(title=f"{sym['symbol']}: cumulative P&L of acting on signals", xlabel="trade", ylabel="pips (spread paid)")
        if pnl_ax.get_legend_handles_labels()[0]:
            pnl_ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
