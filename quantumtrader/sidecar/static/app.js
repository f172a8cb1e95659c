// QuantumTrader dashboard: a client of the sidecar's public REST and WebSocket API, nothing else.
//
// Data flow: REST loads everything once the socket says "connected" (so a reconnect catches up on
// whatever it missed), then WebSocket messages keep it live. Rendering is batched per animation frame.

import { ApiError, Session } from "./api.js";
import { Live } from "./live.js";
import { lineChart, SERIES_COLORS, sparkline, svgEl } from "./charts.js";

const SPARK_POINTS = 60;
const MAX_SIGNALS = 200;
const LATENCY_SAMPLES = 150;
const HEALTH_POLL_MS = 2_000;
const CLOSE_CONFIRM_MS = 4_000;

const $ = (sel, root = document) => root.querySelector(sel);

// -- state --------------------------------------------------------------------------------------------

const session = new Session();
const live = new Live(() => session.token, () => session.refresh());

const state = {
  quotes: new Map(), // symbol -> {symbol, bid, ask, spread, time_msc, digits, mids: [], dir}
  signals: new Map(), // id -> signal (with .via = "ws" | "rest")
  positions: new Map(), // terminal|ticket -> position
  account: null,
  currencies: new Map(), // terminal -> its account's currency (every terminal's account_update)
  health: null,
  latency: [], // [{t, stages: {name: {p50_us, ...}}}]
  dirty: new Set(),
  frame: 0,
  healthTimer: 0,
  clockTimer: 0,
  catchUp: 0,
};

// -- formatting ---------------------------------------------------------------------------------------

function decimals(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return 0;
  const s = String(x);
  if (s.includes("e")) return 8;
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : Math.min(8, s.length - dot - 1);
}

function fixed(x, digits) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–";
}

function money(x, currency) {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  const text = x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return currency ? `${text} ${currency}` : text;
}

function pct(x) {
  return typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "–";
}

function micros(us) {
  if (typeof us !== "number" || !Number.isFinite(us)) return "–";
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1_000) return `${(us / 1_000).toFixed(us >= 10_000 ? 0 : 1)} ms`;
  return `${us.toFixed(us >= 100 ? 0 : 1)} µs`;
}

function clock(msc) {
  if (typeof msc !== "number") return "–";
  return new Date(msc).toISOString().slice(11, 23);
}

function ago(msc) {
  if (typeof msc !== "number") return "–";
  const s = Math.max(0, (Date.now() - msc) / 1000);
  if (s < 60) return `${s.toFixed(1)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function timeMsc(obj) {
  if (typeof obj.time_msc === "number") return obj.time_msc;
  const t = Date.parse(obj.timestamp || "");
  return Number.isNaN(t) ? 0 : t;
}

function cell(text, className = "") {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function button(text, label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function setEmpty(name, empty) {
  const note = $(`[data-empty-for="${name}"]`);
  if (note) note.hidden = !empty;
}

function optionize(select, values, keepFirst) {
  const current = select.value;
  const have = new Set(Array.from(select.options).map((o) => o.value));
  const missing = values.filter((v) => !have.has(v));
  if (missing.length === 0) return;
  const all = Array.from(new Set([...Array.from(select.options).map((o) => o.value), ...values]))
    .filter((v) => !(keepFirst && v === ""))
    .sort();
  select.replaceChildren();
  if (keepFirst) select.appendChild(new Option("All", ""));
  for (const v of all) select.appendChild(new Option(v, v));
  select.value = current && (all.includes(current) || current === "") ? current : select.options[0] ? select.options[0].value : "";
}

// -- rendering ----------------------------------------------------------------------------------------

function schedule(what) {
  state.dirty.add(what);
  if (!state.frame) state.frame = requestAnimationFrame(render);
}

const RENDERERS = {
  quotes: () => renderQuotes(),
  positions: () => renderPositions(),
  account: () => renderAccount(),
  signals: () => renderSignals(),
  health: () => renderHealth(),
  latency: () => renderLatency(),
};

function render() {
  state.frame = 0;
  const dirty = state.dirty;
  state.dirty = new Set();
  for (const [name, draw] of Object.entries(RENDERERS)) {
    if (!dirty.has(name)) continue;
    try {
      draw();
    } catch (err) {
      reportError(err); // one broken panel must not stop the others; the error still reaches the console
    }
  }
}

function quoteRow(symbol) {
  const body = $("#quotes tbody");
  let row = body.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
  if (row) return row;
  row = document.createElement("tr");
  row.dataset.symbol = symbol;
  row.setAttribute("aria-label", `${symbol} quote`);
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = symbol;
  row.append(th, cell("–", "num bid"), cell("–", "num ask"), cell("–", "num spread"));
  const spark = document.createElement("td");
  spark.className = "spark";
  const svg = svgEl("svg", { class: "sparkline", role: "img", "aria-label": `${symbol} mid price trend` });
  spark.appendChild(svg);
  row.append(spark, cell("–", "time opt"));
  const rows = Array.from(body.children);
  const after = rows.find((r) => r.dataset.symbol > symbol);
  body.insertBefore(row, after || null);
  return row;
}

function flash(el, dir) {
  el.classList.remove("flash-up", "flash-down");
  if (!dir) return;
  void el.offsetWidth; // restart the animation
  el.classList.add(dir > 0 ? "flash-up" : "flash-down");
}

function renderQuotes() {
  for (const q of state.quotes.values()) {
    if (!q.changed) continue;
    q.changed = false;
    const row = quoteRow(q.symbol);
    const bid = $(".bid", row);
    const ask = $(".ask", row);
    bid.textContent = fixed(q.bid, q.digits);
    ask.textContent = fixed(q.ask, q.digits);
    flash(bid, q.dirBid);
    flash(ask, q.dirAsk);
    const spread = typeof q.spread === "number" ? q.spread : q.ask - q.bid;
    $(".spread", row).textContent = Number.isFinite(spread) ? (spread * 10 ** q.digits).toFixed(0) : "–";
    $(".time", row).textContent = clock(q.time_msc);
    sparkline($("svg", row), q.mids);
  }
  setEmpty("quotes", state.quotes.size === 0);
  const symbols = Array.from(state.quotes.keys());
  optionize($("#ticket-symbol"), symbols, false);
  optionize($("#filter-symbol"), symbols, true);
  renderTicketQuote();
}

function renderTicketQuote() {
  const q = state.quotes.get($("#ticket-symbol").value);
  $("#ticket-quote").textContent = q ? `bid ${fixed(q.bid, q.digits)} · ask ${fixed(q.ask, q.digits)}` : "";
}

// Two terminal ids name the same terminal, or one is unknown (older messages carry none).
function sameTerminal(a, b) {
  return !a || !b || a === b;
}

function positionKey(p) {
  return `${p.terminal || ""}|${p.ticket}`;
}

function renderPositions() {
  const body = $("#positions tbody");
  const trader = session.isTrader;
  const seen = new Set();
  const totals = new Map(); // currency -> sum: terminals of accounts in other currencies are not added up
  const list = Array.from(state.positions.values()).sort((a, b) => String(a.open_time).localeCompare(String(b.open_time)));
  for (const p of list) {
    const key = positionKey(p);
    seen.add(key);
    let row = body.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
    if (!row || row.dataset.trader !== String(trader)) {
      const fresh = positionRow(p, trader);
      if (row) row.replaceWith(fresh);
      else body.appendChild(fresh);
      row = fresh;
    }
    const q = state.quotes.get(p.symbol);
    const digits = q ? q.digits : Math.max(decimals(p.open_price), decimals(p.current_price));
    const profit = typeof p.profit === "number" ? p.profit : p.profit_loss;
    if (typeof profit === "number") {
      const currency = accountCurrency(p.terminal);
      totals.set(currency, (totals.get(currency) || 0) + profit);
    }
    $(".lots", row).textContent = fixed(p.lots ?? p.volume, 2);
    $(".open", row).textContent = fixed(p.open_price, digits);
    $(".price", row).textContent = fixed(p.current_price, digits);
    $(".sl", row).textContent = p.sl ? fixed(p.sl, digits) : "–";
    $(".tp", row).textContent = p.tp ? fixed(p.tp, digits) : "–";
    const pl = $(".pl", row);
    pl.textContent = money(profit);
    pl.classList.toggle("pos", profit > 0);
    pl.classList.toggle("neg", profit < 0);
  }
  for (const row of Array.from(body.children)) {
    if (!seen.has(row.dataset.key)) row.remove();
  }
  setEmpty("positions", state.positions.size === 0);
  const totalEl = $("#positions-total");
  const sums = Array.from(totals.values());
  totalEl.textContent = state.positions.size ? Array.from(totals, ([currency, sum]) => money(sum, currency)).join(" · ") : "";
  totalEl.classList.toggle("pos", sums.length > 0 && sums.every((x) => x > 0));
  totalEl.classList.toggle("neg", sums.length > 0 && sums.every((x) => x < 0));
}

// The label a position's P&L is summed under: its account's currency; a terminal whose account has not
// been seen yet (its account_update is a heartbeat away) is summed on its own, under its name.
function accountCurrency(terminal) {
  const a = state.account;
  if (!terminal) return a ? a.currency || "" : "";
  const known = state.currencies.get(terminal);
  if (known !== undefined) return known;
  if (a && sameTerminal(a.terminal, terminal)) return a.currency || "";
  return `(${terminal})`;
}

function rememberCurrency(account) {
  if (!account || !account.terminal || typeof account.currency !== "string") return;
  if (state.currencies.get(account.terminal) === account.currency) return;
  state.currencies.set(account.terminal, account.currency);
  schedule("positions");
}

function positionRow(p, trader) {
  const row = document.createElement("tr");
  row.dataset.key = positionKey(p);
  row.dataset.ticket = String(p.ticket);
  row.dataset.trader = String(trader);
  row.setAttribute("aria-label", `Position ${p.ticket} ${p.type} ${p.symbol}`);
  row.append(
    cell(String(p.ticket), "ticket opt"),
    cell(p.symbol, "symbol"),
    cell(p.type, `side side-${String(p.type).toLowerCase()}`),
    cell("", "num lots"),
    cell("", "num open opt"),
    cell("", "num price"),
    cell("", "num sl opt"),
    cell("", "num tp opt"),
    cell("", "num pl"),
  );
  if (trader) {
    const actions = document.createElement("td");
    actions.className = "actions trader-only";
    actions.append(
      button("Close", `Close position ${p.ticket}`, "btn-close", (e) => closePosition(p, e.currentTarget)),
      button("Modify", `Modify position ${p.ticket}`, "btn-modify", () => openModify(state.positions.get(positionKey(p)) || p)),
    );
    row.appendChild(actions);
  }
  return row;
}

function renderAccount() {
  const dl = $("#account");
  const a = state.account;
  dl.replaceChildren();
  $("#account-note").textContent = a ? "" : "No account yet (no terminal connected).";
  if (!a) return;
  const items = [
    ["Login", String(a.login ?? "–")],
    ["Name", a.name || "–"],
    ["Server", a.server || "–"],
    ["Balance", money(a.balance, a.currency)],
    ["Equity", money(a.equity, a.currency)],
    ["Profit", money(a.profit, a.currency)],
    ["Margin", money(a.margin, a.currency)],
    ["Free margin", money(a.free_margin, a.currency)],
    ["Margin level", typeof a.margin_level === "number" && a.margin_level > 0 ? `${a.margin_level.toFixed(0)}%` : "–"],
    ["Leverage", a.leverage ? `1:${a.leverage}` : "–"],
  ];
  for (const [k, v] of items) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.field = k.toLowerCase().replace(/ /g, "_");
    dl.append(dt, dd);
  }
}

function signalFilter() {
  const conf = Number($("#filter-conf").value);
  return { symbol: $("#filter-symbol").value, minConfidence: Number.isFinite(conf) ? Math.min(1, Math.max(0, conf)) : 0 };
}

function matchesFilter({ symbol, minConfidence }) {
  return (s) => (!symbol || s.symbol === symbol) && (s.confidence ?? 0) >= minConfidence;
}

function renderSignals() {
  const { symbol, minConfidence } = signalFilter();
  const list = Array.from(state.signals.values())
    .filter(matchesFilter({ symbol, minConfidence }))
    .sort((a, b) => timeMsc(b) - timeMsc(a))
    .slice(0, MAX_SIGNALS / 2);
  const ol = $("#signals");
  const existing = new Map(Array.from(ol.children).map((li) => [li.dataset.id, li]));
  const items = list.map((s) => existing.get(String(s.id)) || signalItem(s));
  ol.replaceChildren(...items);
  setEmpty("signals", items.length === 0);
}

function signalItem(s) {
  const li = document.createElement("li");
  li.dataset.id = String(s.id);
  li.dataset.symbol = s.symbol;
  li.dataset.via = s.via;
  li.dataset.confidence = String(s.confidence ?? "");
  const prediction = String(s.prediction || "HOLD");
  li.className = `signal signal-${prediction.toLowerCase()}`;
  li.setAttribute("aria-label", `${prediction} ${s.symbol}, confidence ${pct(s.confidence)}`);
  const head = document.createElement("div");
  head.className = "signal-head";
  const badge = document.createElement("span");
  badge.className = "badge pred";
  badge.textContent = prediction;
  const sym = document.createElement("span");
  sym.className = "sym";
  sym.textContent = s.symbol;
  const nums = document.createElement("span");
  nums.className = "nums";
  nums.textContent = `p ${pct(s.probability)} · conf ${pct(s.confidence)}`;
  const when = document.createElement("time");
  when.dateTime = s.timestamp || "";
  when.textContent = clock(timeMsc(s));
  head.append(badge, sym, nums, when);
  li.appendChild(head);
  const comps = s.components && typeof s.components === "object" ? Object.entries(s.components) : [];
  if (comps.length) {
    const ul = document.createElement("ul");
    ul.className = "components";
    ul.setAttribute("aria-label", "Components");
    for (const [name, value] of comps) {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.className = "fill";
      const v = typeof value === "number" ? Math.min(1, Math.max(0, value)) : 0;
      fill.style.setProperty("width", `${(v * 100).toFixed(0)}%`);
      bar.appendChild(fill);
      const num = document.createElement("span");
      num.className = "v";
      num.textContent = typeof value === "number" ? value.toFixed(2) : "–";
      item.append(label, bar, num);
      ul.appendChild(item);
    }
    li.appendChild(ul);
  }
  return li;
}

function terminalState(t) {
  if (t.gone) return "gone";
  if (t.retired) return "retired";  // silent for daemon.retire_after_s: health no longer waits for it
  if (t.stale) return "stale";
  return t.connected === false ? "disconnected" : "connected";
}

const TRADING_TEXT = { active: "active", reducing: "reducing only (daily loss limit)", halted: "halted (kill switch)" };

function renderHealth() {
  const h = state.health;
  const badge = $("#health-status");
  badge.textContent = h ? h.status : "";
  badge.dataset.status = h ? h.status : "";
  const body = $("#terminals tbody");
  body.replaceChildren();
  const terminals = h && h.connections && Array.isArray(h.connections.terminals) ? h.connections.terminals : [];
  for (const t of terminals) {
    const row = document.createElement("tr");
    row.dataset.terminal = t.terminal;
    const st = terminalState(t);
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = t.terminal;
    const stateCell = cell(st, `state state-${st}`);
    const gaps = (t.lost_events ?? 0) + (t.seq_regressions ?? 0);
    row.append(
      th,
      stateCell,
      cell(ago(t.last_seen_msc ?? Date.parse(t.last_seen || "")), "num last-seen"),
      cell(String(t.last_seq ?? "–"), "num opt"),
      // refused events (bad quotes, a clock off) are the rejects' to tell, not a gap on the wire
      cell(`${t.lost_events ?? 0} lost · ${t.seq_regressions ?? 0} back${t.refused_events ? ` · ${t.refused_events} refused` : ""}`, `num gaps${gaps ? " warn" : ""}`),
      cell(String(Array.isArray(t.symbols) ? t.symbols.length : "–"), "num opt"),
    );
    row.querySelector(".last-seen").dataset.msc = String(t.last_seen_msc ?? "");
    body.appendChild(row);
  }
  setEmpty("terminals", terminals.length === 0);
  const facts = $("#health-facts");
  facts.replaceChildren();
  if (!h) return;
  const daemon = h.daemon || {};
  const feed = h.feed || {};
  const flow = h.data_flow || {};
  const trading = h.trading || null;
  const items = [
    ["Daemon", `${daemon.status || "–"}${typeof daemon.uptime === "number" ? `, up ${Math.round(daemon.uptime)} s` : ""}`],
    // a halt or the daily-loss limit said here, not only in the next order's refusal
    ["Trading", trading ? TRADING_TEXT[trading.state] || String(trading.state) : "–"],
    ["Feed seq", `${feed.last_seq ?? "–"} (gaps ${feed.gaps ?? 0}, snapshots ${feed.snapshots ?? 0})`],
    ["Last tick", flow.last_market_update ? flow.last_market_update.slice(11, 23) : "–"],
    ["Pending trades", String(flow.pending_trades ?? 0)],
    ["WebSocket clients", String(h.connections ? h.connections.websocket_clients : "–")],
  ];
  // why the daemon says degraded (no terminal, a stale one, the signal store, a clock): the badge alone did not say
  const problems = Array.isArray(daemon.problems) ? daemon.problems.map(String) : [];
  items.push(["Problems", problems.length ? problems.join(" · ") : "none"]);
  for (const [k, v] of items) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    if (k === "Problems" && problems.length) dd.className = "warn";
    facts.append(dt, dd);
  }
}

function tickAges() {
  for (const el of document.querySelectorAll("#terminals .last-seen")) {
    const msc = Number(el.dataset.msc);
    if (msc) el.textContent = ago(msc);
  }
}

function stageNames() {
  const names = new Set();
  for (const sample of state.latency) for (const n of Object.keys(sample.stages)) names.add(n);
  return Array.from(names);
}

function renderLatency() {
  const last = state.latency[state.latency.length - 1];
  const body = $("#latency tbody");
  body.replaceChildren();
  const names = stageNames();
  for (const name of names) {
    const s = (last && last.stages[name]) || {};
    const row = document.createElement("tr");
    row.dataset.stage = name;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name.replace(/_/g, " ");
    row.append(th, cell(micros(s.p50_us), "num"), cell(micros(s.p90_us), "num"), cell(micros(s.p99_us), "num"), cell(micros(s.max_us), "num opt"), cell(String(s.count ?? 0), "num opt"));
    body.appendChild(row);
  }
  const key = $("#latency-pct").value;
  const series = names.map((name) => ({ name, values: state.latency.map((x) => (x.stages[name] ? x.stages[name][key] : null)) }));
  lineChart($("#latency-chart"), series, micros);
  const legend = $("#latency-legend");
  legend.replaceChildren(
    ...names.map((name, i) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.setProperty("background", SERIES_COLORS[i % SERIES_COLORS.length]);
      li.append(swatch, document.createTextNode(name.replace(/_/g, " ")));
      return li;
    }),
  );
}

// -- data in --------------------------------------------------------------------------------------------

function applyQuote(data) {
  if (!data || typeof data.symbol !== "string") return;
  const old = state.quotes.get(data.symbol);
  const q = old || { symbol: data.symbol, mids: [], digits: 0 };
  const t = timeMsc(data);
  if (old && t && q.time_msc && t < q.time_msc) return; // older than what is shown (REST raced the socket)
  q.dirBid = old && typeof old.bid === "number" ? Math.sign(data.bid - old.bid) : 0;
  q.dirAsk = old && typeof old.ask === "number" ? Math.sign(data.ask - old.ask) : 0;
  q.bid = data.bid;
  q.ask = data.ask;
  q.spread = data.spread;
  q.time_msc = t;
  q.digits = Math.max(q.digits, decimals(data.bid), decimals(data.ask));
  if (typeof data.bid === "number" && typeof data.ask === "number" && (q.dirBid || q.dirAsk || q.mids.length === 0)) {
    q.mids.push((data.bid + data.ask) / 2);
    if (q.mids.length > SPARK_POINTS) q.mids.shift();
  }
  q.changed = true;
  state.quotes.set(q.symbol, q);
  for (const p of state.positions.values()) {
    // its own broker's quote only, as the server prices it (another terminal may stream the symbol too)
    if (p.symbol === q.symbol && sameTerminal(p.terminal, data.terminal)) {
      p.current_price = p.type === "BUY" ? data.bid : data.ask;
      schedule("positions");
    }
  }
  schedule("quotes");
}

function applySignal(sig, via) {
  if (!sig || sig.id === undefined) return;
  const id = String(sig.id);
  if (state.signals.has(id)) return;
  state.signals.set(id, { ...sig, id, via });
  if (state.signals.size > MAX_SIGNALS * 1.5) {
    // Keep the newest overall and the newest that the filter shows (older matches must not be pushed out).
    const newest = Array.from(state.signals.values()).sort((a, b) => timeMsc(b) - timeMsc(a));
    const keep = new Set(newest.slice(0, MAX_SIGNALS));
    for (const s of newest.filter(matchesFilter(signalFilter())).slice(0, MAX_SIGNALS / 2)) keep.add(s);
    state.signals = new Map(Array.from(keep, (s) => [s.id, s]));
  }
  schedule("signals");
}

function applyPosition(p) {
  if (!p || p.ticket === undefined) return;
  const key = positionKey(p);
  if (p.status === "closed") state.positions.delete(key);
  else {
    const { status, ...rest } = p;
    state.positions.set(key, rest);
  }
  schedule("positions");
}

function applyHealth(h, fromRest) {
  if (!h) return;
  if (fromRest) {
    state.health = h;
    const stages = {};
    for (const [name, s] of Object.entries(h.latency || {})) {
      if (s && typeof s === "object" && s.count > 0) stages[name] = s;
    }
    state.latency.push({ t: Date.now(), stages });
    if (state.latency.length > LATENCY_SAMPLES) state.latency.shift();
    schedule("latency");
  } else if (state.health) {
    // The feed's health (every second): fresher terminals and daemon state, same shapes.
    if (Array.isArray(h.terminals)) state.health.connections = { ...state.health.connections, terminals: h.terminals };
    state.health.daemon = { ...(state.health.daemon || {}), status: h.status, uptime: h.uptime, problems: h.problems };
    if (h.data_flow) state.health.data_flow = h.data_flow;
  }
  schedule("health");
}

function onLiveMessage(msg) {
  const data = msg.data;
  switch (msg.type) {
    case "authenticated": // the renewed token took: the server's role for it applies (a downgrade too)
      if (data && data.role) session.setRole(data.role);
      break;
    case "price_update":
      applyQuote(data);
      break;
    case "signal":
      applySignal(data, "ws");
      break;
    case "position_update":
      applyPosition(data);
      break;
    case "account_update":
      rememberCurrency(data);
      // the account shown is the one REST gave (several terminals each send theirs: it flipped between them)
      if (data && (!state.account || !state.account.terminal || data.terminal === state.account.terminal)) {
        state.account = data;
        schedule("account");
        schedule("positions");
      }
      break;
    case "health":
      applyHealth(data, false);
      break;
    default:
      break; // trade_update, pong, error...: positions and account carry the outcome
  }
}

// -- REST loads (first load and catch-up after every reconnect) --------------------------------------------

async function loadMarket() {
  const body = await session.api("/api/market");
  for (const q of body.quotes || []) applyQuote(q);
}

async function loadPositions() {
  const body = await session.api("/api/positions");
  state.positions = new Map((body.positions || []).map((p) => [positionKey(p), p]));
  schedule("positions");
}

async function loadAccount() {
  try {
    state.account = await session.api("/api/account");
    rememberCurrency(state.account);
  } catch (err) {
    if (err.status !== 503) throw err;
    state.account = null; // no terminal connected
  }
  schedule("account");
}

async function loadSignals(sinceMsc) {
  const { symbol, minConfidence } = signalFilter();
  const params = new URLSearchParams({ limit: "100" });
  if (symbol) params.set("symbol", symbol);
  params.set("min_confidence", String(minConfidence)); // always: the server's default is 0.7, the filter's may be 0
  if (sinceMsc) params.set("since", String(sinceMsc));
  const body = await session.api(`/api/signals?${params}`);
  for (const s of body.signals || []) applySignal(s, "rest");
}

async function loadHealth() {
  // with the token: without one, health names no terminal (its id is the account login)
  applyHealth(await session.api("/api/health"), true);
}

function newestSignalMsc() {
  let newest = 0;
  for (const s of state.signals.values()) newest = Math.max(newest, timeMsc(s));
  return newest;
}

async function catchUp() {
  const run = ++state.catchUp;
  const since = newestSignalMsc();
  const results = await Promise.allSettled([loadMarket(), loadPositions(), loadAccount(), loadSignals(since ? since - 1000 : 0), loadHealth()]);
  if (run !== state.catchUp) return;
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  $("#positions-error").textContent = failed.length ? `Could not load everything: ${failed[0].message}` : "";
  document.body.dataset.loaded = String(run);
}

function pollHealth() {
  clearTimeout(state.healthTimer);
  state.healthTimer = setTimeout(async () => {
    if (!session.loggedIn) return;
    try {
      await loadHealth();
    } catch {
      // the sidecar is away; the connection state says so
    }
    pollHealth();
  }, HEALTH_POLL_MS);
}

// -- actions --------------------------------------------------------------------------------------------

// A plain decimal ("0.5", ".5", "12"), null when empty, else NaN. The fields are text, not type=number: a number
// field reads "1e", "." or "-" as "" (blank: a risk-sized order) and "0,5" as 05 (5 lots).
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;
function numberOrNull(input) {
  const raw = input.value.trim();
  if (raw === "") return null;
  return DECIMAL.test(raw) ? Number(raw) : NaN;
}

function showTicketResult(ok, text) {
  $("#ticket-status").textContent = ok ? text : "";
  $("#ticket-error").textContent = ok ? "" : text;
  $("#ticket-refused").hidden = ok;
}

async function submitTicket(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const side = form.elements.side.value;
  const order = { symbol: $("#ticket-symbol").value, type: side };
  if (!$("#ticket-risk").checked) order.lots = numberOrNull($("#ticket-lots"));
  order.stop_loss = numberOrNull($("#ticket-sl"));
  order.take_profit = numberOrNull($("#ticket-tp"));
  for (const [k, v] of Object.entries(order)) {
    if (Number.isNaN(v)) {
      showTicketResult(false, `${k.replace("_", " ")} is not a number (a dot for decimals: 0.5)`);
      return;
    }
  }
  if (order.lots === null) {  // sent as null, the risk rules size it: only when asked to
    showTicketResult(false, "lots: give a size, or tick Size by risk");
    return;
  }
  if (!order.symbol) {
    showTicketResult(false, "choose a symbol");
    return;
  }
  const submit = $("#ticket-submit");
  submit.disabled = true;
  $("#ticket-status").textContent = "Sending…";
  $("#ticket-refused").hidden = true;
  try {
    const res = await session.api("/api/trade", { method: "POST", body: order });
    const lots = res.order && typeof res.order.lots === "number" ? ` ${res.order.lots} lots` : "";
    showTicketResult(true, `${res.message || "Filled"}: ${side}${lots} ${order.symbol} at ${res.price ?? "?"}, ticket ${res.ticket}`);
  } catch (err) {
    showTicketResult(false, err instanceof ApiError ? err.message : String(err));
  } finally {
    submit.disabled = false;
  }
}

async function closePosition(p, btn) {
  if (btn.dataset.armed !== "1") {
    btn.dataset.armed = "1";
    btn.textContent = "Confirm close";
    setTimeout(() => {
      if (btn.isConnected) {
        btn.dataset.armed = "";
        btn.textContent = "Close";
      }
    }, CLOSE_CONFIRM_MS);
    return;
  }
  btn.disabled = true;
  btn.textContent = "Closing…";
  try {
    // the row's terminal: tickets are per broker, and two terminals may hold this number
    await session.api(`/api/trade/close/${encodeURIComponent(p.ticket)}`, { method: "POST", body: p.terminal ? { terminal: p.terminal } : {} });
    $("#positions-error").textContent = "";
  } catch (err) {
    $("#positions-error").textContent = `Close ${p.ticket} refused: ${err.message}`;
    btn.disabled = false;
    btn.dataset.armed = "";
    btn.textContent = "Close";
  }
}

let modifying = null;

function openModify(p) {
  modifying = p;
  $("#modify-title").textContent = `Modify ${p.ticket} (${p.type} ${p.symbol})`;
  $("#modify-sl").value = p.sl ? String(p.sl) : "";
  $("#modify-tp").value = p.tp ? String(p.tp) : "";
  $("#modify-error").textContent = "";
  $("#modify-dialog").showModal();
}

async function submitModify(event) {
  event.preventDefault();
  if (!modifying) return;
  const body = { ticket: String(modifying.ticket), stop_loss: numberOrNull($("#modify-sl")), take_profit: numberOrNull($("#modify-tp")) };
  if (modifying.terminal) body.terminal = modifying.terminal;
  if (Number.isNaN(body.stop_loss) || Number.isNaN(body.take_profit)) {
    $("#modify-error").textContent = "stop loss and take profit must be numbers (a dot for decimals)";
    return;
  }
  $("#modify-submit").disabled = true;
  try {
    await session.api("/api/trade/modify", { method: "PUT", body });
    $("#modify-dialog").close();
  } catch (err) {
    $("#modify-error").textContent = err.message;
  } finally {
    $("#modify-submit").disabled = false;
  }
}

// -- views ------------------------------------------------------------------------------------------------

const STATE_TEXT = { connected: "Live", connecting: "Connecting…", offline: "Offline" };

function showConnection({ state: s, attempt, retryAt }) {
  const el = $("#conn");
  el.dataset.state = s;
  if (s === "reconnecting") {
    const secs = Math.max(0, Math.round((retryAt - Date.now()) / 1000));
    el.textContent = `Reconnecting in ${secs} s (try ${attempt})`;
  } else {
    el.textContent = STATE_TEXT[s] || s;
  }
}

function applyRole() {
  const trader = session.isTrader;
  document.body.dataset.role = session.role || "";
  $("#ticket-panel").hidden = !trader;
  for (const el of document.querySelectorAll("th.trader-only")) el.hidden = !trader;
  const who = $("#whoami");
  who.textContent = session.user ? `${session.user.username} (${session.user.role})` : "";
  schedule("positions");
}

function showDashboard() {
  $("#login-view").hidden = true;
  $("#dash").hidden = false;
  $("#whoami").hidden = false;
  $("#logout").hidden = false;
  applyRole();
  live.start();
  pollHealth();
  clearInterval(state.clockTimer);
  state.clockTimer = setInterval(() => {
    tickAges();
    if (live.state === "reconnecting") showConnection({ state: live.state, attempt: live.attempt, retryAt: live.retryAt });
  }, 1000);
}

function showLogin(reason) {
  live.stop();
  clearTimeout(state.healthTimer);
  clearInterval(state.clockTimer);
  state.quotes.clear();
  state.signals.clear();
  state.positions.clear();
  state.account = null;
  state.currencies.clear();
  state.health = null;
  state.latency = [];
  for (const sel of ["#quotes tbody", "#positions tbody", "#signals", "#terminals tbody", "#latency tbody"]) $(sel).replaceChildren();
  $("#dash").hidden = true;
  $("#whoami").hidden = true;
  $("#logout").hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = reason || "";
  $("#login-pass").value = "";
  document.body.dataset.role = "";
  $("#login-user").focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const username = $("#login-user").value.trim();
  const password = $("#login-pass").value;
  if (!username || !password) {
    $("#login-error").textContent = "Enter your user name and password.";
    return;
  }
  $("#login-submit").disabled = true;
  $("#login-error").textContent = "";
  try {
    await session.login(username, password);
    $("#login-pass").value = "";
    showDashboard();
  } catch (err) {
    $("#login-error").textContent = err instanceof ApiError ? err.message : String(err);
  } finally {
    $("#login-submit").disabled = false;
  }
}

function syncSideButton() {
  const side = $("#ticket").elements.side.value;
  const submit = $("#ticket-submit");
  submit.textContent = `Place ${side}`;
  submit.className = side === "BUY" ? "btn-buy" : "btn-sell";
}

function init() {
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", () => session.logout(""));
  $("#ticket").addEventListener("submit", submitTicket);
  $("#ticket").addEventListener("change", syncSideButton);
  $("#ticket-risk").addEventListener("change", (e) => { $("#ticket-lots").disabled = e.currentTarget.checked; });
  $("#ticket-symbol").addEventListener("change", renderTicketQuote);
  $("#modify-form").addEventListener("submit", submitModify);
  $("#modify-cancel").addEventListener("click", () => $("#modify-dialog").close());
  $("#latency-pct").addEventListener("change", () => schedule("latency"));
  $("#signal-filter").addEventListener("submit", (e) => e.preventDefault());
  $("#signal-filter").addEventListener("change", () => {
    schedule("signals");
    loadSignals(0).catch(() => {}); // older matches the feed list may not hold
  });
  $("#filter-conf").addEventListener("input", () => schedule("signals"));

  session.addEventListener("logout", (e) => showLogin(e.detail));
  session.addEventListener("role", applyRole);
  session.addEventListener("refreshed", () => live.reauth()); // the open socket keeps going on the new token
  live.addEventListener("state", (e) => showConnection(e.detail));
  live.addEventListener("message", (e) => onLiveMessage(e.detail));
  live.addEventListener("connected", (e) => {
    if (e.detail.role) session.setRole(e.detail.role);
    catchUp();
  });
  window.addEventListener("online", () => live.retryNow());
  window.addEventListener("resize", () => schedule("latency")); // the chart is drawn at its shown size
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !session.loggedIn) return;
    session.resume().catch(() => {});
    live.retryNow();
  });

  if (session.loggedIn) {
    session.resume().then(showDashboard, () => { if (session.loggedIn) showDashboard(); });
  } else {
    showLogin("");
  }
}

init();
