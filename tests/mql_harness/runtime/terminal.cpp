// The simulated terminal: implements the MQL built-ins the EAs call (as
// prelude.hpp, generated from the MQL reference, declares them) over a market
// replayed from a CSV, and runs the EA's handlers the way the terminal does.
//
// Configuration (environment, set by tests/mql_harness; MQL_POSITION, MQL_POSITION_CLOSED below):
//   MQL_TICKS           CSV "symbol,time_msc,bid,ask" (UTC ms), sorted by time
//   MQL_CHART_SYMBOL    the chart's symbol (OnTick fires for its ticks)
//   MQL_TICK_US         real microseconds between replayed ticks (default 500)
//   MQL_SERVER_OFFSET_S broker server time - UTC, seconds (default 7200)
//   MQL_BALANCE, MQL_LEVERAGE, MQL_LOGIN, MQL_SERVER, MQL_STOPS_LEVEL (points),
//   MQL_INPUT_<Name>    an EA input
// Stops on SIGTERM/SIGINT: OnDeinit(REASON_REMOVE), then the globals'
// destructors close the sockets, as when a trader removes the EA. SIGUSR1:
// OnDeinit(REASON_CHARTCHANGE) then OnInit() with the globals kept, as when
// the trader changes the chart's symbol or period.
// Prints "MQL_HARNESS <key>=<value>" lines on stdout for the test.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "mql_types.hpp"
#include "prelude.hpp"
#include "mql_templates.hpp"

int OnInit();
void OnDeinit(const int reason);
void OnTimer();
void OnTick();
void mql_apply_inputs();

// -- string ---------------------------------------------------------------------

string::string(const char* utf8) {
  if (!utf8) return;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(utf8);
  while (*p) {
    uint32_t c = *p++;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (extra) c &= (0x3F >> extra);
    for (int i = 0; i < extra && (*p & 0xC0) == 0x80; i++) c = (c << 6) | (*p++ & 0x3F);
    if (c >= 0x10000) {
      c -= 0x10000;
      units.push_back((char16_t)(0xD800 + (c >> 10)));
      units.push_back((char16_t)(0xDC00 + (c & 0x3FF)));
    } else {
      units.push_back((char16_t)c);
    }
  }
}

std::string string::utf8() const {
  std::string out;
  for (size_t i = 0; i < units.size(); i++) {
    uint32_t c = units[i];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < units.size()) c = 0x10000 + ((c - 0xD800) << 10) + (units[++i] - 0xDC00);
    if (c < 0x80) {
      out.push_back((char)c);
    } else if (c < 0x800) {
      out.push_back((char)(0xC0 | (c >> 6)));
      out.push_back((char)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back((char)(0xE0 | (c >> 12)));
      out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
      out.push_back((char)(0x80 | (c & 0x3F)));
    } else {
      out.push_back((char)(0xF0 | (c >> 18)));
      out.push_back((char)(0x80 | ((c >> 12) & 0x3F)));
      out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
      out.push_back((char)(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

void mql_critical(const char* what) {
  std::fprintf(stderr, "MQL critical error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void mql_print_line(const std::string& line) {
  std::fprintf(stderr, "[EA] %s\n", line.c_str());
  std::fflush(stderr);
}

std::string mql_format(const string& format, const std::vector<std::string>& args) {
  std::string f = format.utf8(), out;
  size_t next = 0;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] != '%') {
      out.push_back(f[i]);
      continue;
    }
    size_t j = i + 1;
    if (j < f.size() && f[j] == '%') {
      out.push_back('%');
      i = j;
      continue;
    }
    while (j < f.size() && std::strchr("-+ #0123456789.lhI", f[j])) j++;
    out += next < args.size() ? args[next++] : "?";
    i = j;
  }
  return out;
}

// -- the simulated market and account ------------------------------------------

namespace sim {

struct Tick {
  long utc_msc;
  double bid, ask;
};

struct Symbol {
  std::string name;
  int digits = 5;
  std::vector<Tick> ticks;  // every tick received so far (CopyTicks reads these)
  bool has_quote = false;
};

struct Order {  // an MT4 order / an MT5 position
  long ticket = 0;
  std::string symbol;
  int type = 0;  // 0 buy, 1 sell
  double lots = 0, open_price = 0, sl = 0, tp = 0, close_price = 0, commission = 0;
  long open_msc = 0, close_msc = 0;  // server time
  long magic = 0;
  std::string comment;
};

struct Deal {  // MT5 history
  ulong ticket = 0, order = 0, position = 0;
  long time_msc = 0;
  double price = 0, volume = 0, commission = 0;
  std::string symbol, comment;  // the comment is the order's (the request's), as most brokers keep it
};

struct HistoryOrder {  // MT5 history: the market order behind each deal
  ulong ticket = 0, position = 0;
  std::string symbol, comment;
};

std::vector<Symbol> symbols;
std::vector<std::pair<int, Tick>> tape;  // the whole replay, in order
size_t replayed = 0;
std::string chart_symbol;
long offset_s = 7200;
double balance = 10000.0;
long leverage = 100, login = 5012345, stops_level = 10;
long login_after_ms = 0;  // a terminal started before its account logged in reads login 0 until then
std::string server = "QuantumTrader-Harness";
std::string currency = "USD";
long currency_digits = 2;
double contract = 100000.0, vol_min = 0.01, vol_max = 100.0, vol_step = 0.01;
std::vector<Order> open_orders, history;
std::vector<Deal> deals;
std::vector<HistoryOrder> history_orders;
long next_ticket = 100000;
int last_error = 0;
int timer_ms = 0;
std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
std::chrono::steady_clock::time_point last_tick_at = started;
long last_tick_utc_msc = 0;
std::atomic<bool> stop{false};
std::atomic<bool> reinit{false};  // SIGUSR1: the trader changed the chart's symbol or period

Symbol* find(const std::string& name) {
  for (auto& s : symbols)
    if (s.name == name) return &s;
  return nullptr;
}
const Tick* quote(const Symbol* s) { return s && !s->ticks.empty() ? &s->ticks.back() : nullptr; }
double point(const Symbol* s) { return std::pow(10.0, -s->digits); }
// MQL_TICK_SIZE_POINTS: a tick of several points (an index's 1.0, a future's 0.25); a stop off that grid is refused
long tick_points = 1;
double tick_size(const Symbol* s) { return point(s) * tick_points; }
bool on_grid(const Symbol* s, double price) {
  double ticks = price / tick_size(s);
  return price == 0 || std::fabs(ticks - std::round(ticks)) < 1e-6;
}
long now_utc_msc() {
  auto since = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - last_tick_at);
  return last_tick_utc_msc + since.count();
}
long server_msc(long utc_msc) { return utc_msc + offset_s * 1000; }

double profit(const Order& o) {
  const Tick* q = quote(find(o.symbol));
  if (!q) return 0.0;
  double close = o.type == 0 ? q->bid : q->ask;
  return (o.type == 0 ? close - o.open_price : o.open_price - close) * o.lots * contract;
}
double margin() {
  double m = 0;
  for (auto& o : open_orders) m += o.lots * contract * o.open_price / (double)leverage;
  return m;
}
double equity() {
  double e = balance;
  for (auto& o : open_orders) e += profit(o);
  return e;
}

double account_double(int property_id) {
  switch (property_id) {
    case ACCOUNT_BALANCE: return balance;
    case ACCOUNT_EQUITY: return equity();
    case ACCOUNT_MARGIN: return margin();
    case ACCOUNT_MARGIN_FREE: return equity() - margin();
    case ACCOUNT_PROFIT: return equity() - balance;
  }
  return 0;
}
long account_integer(int property_id) {
#ifdef QT_MQL5
  if (property_id == ACCOUNT_MARGIN_MODE) return ACCOUNT_MARGIN_MODE_RETAIL_HEDGING;  // positions are never merged here
  if (property_id == ACCOUNT_CURRENCY_DIGITS) return currency_digits;
#endif
  if (property_id == ACCOUNT_LOGIN) {
    auto since = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return since.count() < login_after_ms ? 0 : login;
  }
  return property_id == ACCOUNT_LEVERAGE ? leverage : 0;
}
string account_string(int property_id) {
  if (property_id == ACCOUNT_CURRENCY) return string(currency.c_str());
  if (property_id == ACCOUNT_SERVER) return string(server.c_str());
  if (property_id == ACCOUNT_NAME) return string("Harness Trader");
  return string();
}

// MT4's rule for market orders: Buy: Bid-SL and TP-Bid >= StopLevel; Sell: SL-Ask and Ask-TP >= StopLevel.
bool stops_ok(const Symbol* s, int type, double sl, double tp) {
  const Tick* q = quote(s);
  double min = stops_level * point(s) - 1e-9;
  if (!on_grid(s, sl) || !on_grid(s, tp)) return false;
  if (type == 0) return (sl == 0 || q->bid - sl >= min) && (tp == 0 || tp - q->bid >= min);
  return (sl == 0 || sl - q->ask >= min) && (tp == 0 || q->ask - tp >= min);
}
bool volume_ok(double lots) {
  double steps = lots / vol_step;
  return lots >= vol_min - 1e-9 && lots <= vol_max + 1e-9 && std::fabs(steps - std::round(steps)) < 1e-7;
}

// One order opened at the current price; the checks and their codes are the platform's.
enum Check { OK, BAD_SYMBOL, BAD_VOLUME, BAD_STOPS, REQUOTE, NO_MONEY };
Check check_open(const std::string& symbol, int type, double lots, double price, long deviation, double sl, double tp) {
  Symbol* s = find(symbol);
  if (!s || !quote(s)) return BAD_SYMBOL;
  if (!volume_ok(lots)) return BAD_VOLUME;
  const Tick* q = quote(s);
  double market = type == 0 ? q->ask : q->bid;
  if (std::fabs(price - market) > deviation * point(s) + 1e-9) return REQUOTE;
  if (!stops_ok(s, type, sl, tp)) return BAD_STOPS;
  if (lots * contract * market / (double)leverage > equity() - margin()) return NO_MONEY;
  return OK;
}

Order& open(const std::string& symbol, int type, double lots, double sl, double tp, long magic, const std::string& comment) {
  const Tick* q = quote(find(symbol));
  Order o;
  o.ticket = next_ticket++;
  o.symbol = symbol;
  o.type = type;
  o.lots = lots;
  o.open_price = type == 0 ? q->ask : q->bid;
  o.sl = sl;
  o.tp = tp;
  o.open_msc = server_msc(q->utc_msc);
  o.magic = magic;
  o.comment = comment.substr(0, 31);  // MT4/MT5 keep 31 characters
  open_orders.push_back(o);
  std::printf("MQL_HARNESS order_opened ticket=%ld symbol=%s comment=%s\n", o.ticket, o.symbol.c_str(), o.comment.c_str());
  std::fflush(stdout);
  return open_orders.back();
}

// Close lots of an open order; MT4 reopens the remainder under a new ticket.
Order close(size_t index, double lots, bool remainder_new_ticket) {
  Order o = open_orders[index];
  const Tick* q = quote(find(o.symbol));
  double price = o.type == 0 ? q->bid : q->ask;
  double part = std::min(lots, o.lots);
  Order closed = o;
  closed.lots = part;
  closed.close_price = price;
  closed.close_msc = server_msc(q->utc_msc);
  balance += (o.type == 0 ? price - o.open_price : o.open_price - price) * part * contract;
  history.push_back(closed);
  open_orders.erase(open_orders.begin() + (long)index);
  if (o.lots - part > 1e-9) {
    Order rest = o;
    rest.lots = o.lots - part;
    if (remainder_new_ticket) {
      rest.ticket = next_ticket++;
      rest.comment = "from #" + std::to_string(o.ticket);
    }
    open_orders.push_back(rest);
  }
  return closed;
}

int find_open(long ticket) {
  for (size_t i = 0; i < open_orders.size(); i++)
    if (open_orders[i].ticket == ticket) return (int)i;
  return -1;
}

void load(const char* path) {
  std::ifstream in(path);
  if (!in) mql_critical("MQL_TICKS: cannot open the tick file");
  std::string line;
  while (std::getline(in, line)) {
    char name[64];
    long msc;
    double bid, ask;
    if (std::sscanf(line.c_str(), "%63[^,],%ld,%lf,%lf", name, &msc, &bid, &ask) != 4) continue;
    Symbol* s = find(name);
    if (!s) {
      { Symbol fresh; fresh.name = name; symbols.push_back(fresh); }
      s = &symbols.back();
    }
    tape.push_back({(int)(s - symbols.data()), Tick{msc, bid, ask}});
  }
  if (tape.empty()) mql_critical("MQL_TICKS: no ticks");
}

void apply(const std::pair<int, Tick>& t) {
  Symbol& s = symbols[(size_t)t.first];
  s.ticks.push_back(t.second);
  s.has_quote = true;
  last_tick_utc_msc = t.second.utc_msc;
  last_tick_at = std::chrono::steady_clock::now();
}

}  // namespace sim

// -- built-ins: common ------------------------------------------------------------

int GetLastError() { return sim::last_error; }
void ResetLastError() { sim::last_error = 0; }
ulong GetMicrosecondCount() {
  return (ulong)std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sim::started).count();
}
bool EventSetMillisecondTimer(int milliseconds) {
  if (milliseconds < 1) return false;
  sim::timer_ms = milliseconds;
  return true;
}
void EventKillTimer() { sim::timer_ms = 0; }
int TerminalInfoInteger(int property_id) { return property_id == TERMINAL_TRADE_ALLOWED ? 1 : 0; }
int MQLInfoInteger(int property_id) { return property_id == MQL_TRADE_ALLOWED ? 1 : 0; }
string Symbol() { return string(sim::chart_symbol.c_str()); }
datetime TimeGMT() { return sim::now_utc_msc() / 1000; }

double MathAbs(double value) { return std::fabs(value); }
bool MathIsValidNumber(double number) { return std::isfinite(number); }
double MathPow(double base, double exponent) { return std::pow(base, exponent); }
double MathRound(double value) { return std::round(value); }
double MathFloor(double val) { return std::floor(val); }
double NormalizeDouble(double value, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(value * f) / f;
}

// -- built-ins: strings -------------------------------------------------------------

int StringLen(string string_value) { return (int)string_value.units.size(); }
ushort StringGetCharacter(string string_value, int pos) {
  if (pos < 0 || pos >= (int)string_value.units.size()) {
    sim::last_error = 5041;  // ERR_STRING_OUT_OF_BOUNDS
    return 0;
  }
  return string_value.units[(size_t)pos];
}
string StringSubstr(string string_value, int start_pos, int length) {
  int n = (int)string_value.units.size();
  if (start_pos < 0 || start_pos >= n) return string();
#ifdef QT_MQL4
  if (length <= 0) length = n - start_pos;  // MQL4: 0 = to the end
#else
  if (length < 0) length = n - start_pos;  // MQL5: -1 = to the end
#endif
  return string(string_value.units.substr((size_t)start_pos, (size_t)length));
}
int StringCompare(const string& string1, const string& string2, bool case_sensitive) {
  return string1.units < string2.units ? -1 : string1.units == string2.units ? 0 : 1;
}
int StringSplit(const string string_value, const ushort separator, MqlArray<string>& result) {
  result.items.clear();
  if (string_value.units.empty()) return 0;
  std::u16string part;
  for (char16_t c : string_value.units) {
    if (c == separator) {
      result.items.push_back(string(part));
      part.clear();
    } else {
      part.push_back(c);
    }
  }
  result.items.push_back(string(part));
  return (int)result.items.size();
}
// count < 0: to the end of the array; either way the copy stops at a 0 byte, as documented
string CharArrayToString(MqlArray<uchar>& array, int start, int count, uint codepage) {
  std::string bytes;
  size_t end = count < 0 ? array.items.size() : std::min(array.items.size(), (size_t)start + (size_t)count);
  for (size_t i = (size_t)start; i < end && array.items[i] != 0; i++) bytes.push_back((char)array.items[i]);
  if (codepage == CP_UTF8) return string(bytes.c_str());
  string out;
  for (char c : bytes) out.units.push_back((char16_t)(unsigned char)c);
  return out;
}

int StringToCharArray(string text_string, MqlArray<uchar>& array, int start, int count, uint codepage) {
  std::string bytes = codepage == CP_UTF8 ? text_string.utf8() : std::string();
  if (codepage != CP_UTF8)
    for (char16_t c : text_string.units) bytes.push_back(c < 0x100 ? (char)c : '?');
  bytes.push_back('\0');  // the terminating 0 is copied too, as documented
  size_t n = count < 0 ? bytes.size() : std::min(bytes.size(), (size_t)count);
  if (array.items.size() < (size_t)start + n) array.items.resize((size_t)start + n);
  std::memcpy(array.items.data() + start, bytes.data(), n);
  return (int)n;
}
string ShortToString(ushort symbol_code) { return string(std::u16string(1, (char16_t)symbol_code)); }
string IntegerToString(long number, int str_len, ushort fill_symbol) {
  std::string s = std::to_string(number);
  while ((int)s.size() < str_len) s.insert(s.begin(), (char)fill_symbol);
  return string(s.c_str());
}
string DoubleToString(double value, int digits) {
  if (digits < 0 || digits > 16) digits = 8;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return string(buf);
}
long StringToInteger(string value) { return std::strtol(value.utf8().c_str(), nullptr, 10); }
double StringToDouble(string value) { return std::strtod(value.utf8().c_str(), nullptr); }

// -- built-ins: market ------------------------------------------------------------

bool SymbolSelect(string name, bool select) {
  if (sim::find(name.utf8())) return true;
  sim::last_error = 4301;  // ERR_MARKET_UNKNOWN_SYMBOL (MQL5); MQL4 checks it as 4106 below
#ifdef QT_MQL4
  sim::last_error = 4106;
#endif
  return false;
}
int SymbolsTotal(bool selected) { return (int)sim::symbols.size(); }
string SymbolName(int pos, bool selected) {
  return pos >= 0 && pos < (int)sim::symbols.size() ? string(sim::symbols[(size_t)pos].name.c_str()) : string();
}
long SymbolInfoInteger(string name, ENUM_SYMBOL_INFO_INTEGER prop_id) {
  sim::Symbol* s = sim::find(name.utf8());
  if (!s) return 0;
  switch (prop_id) {
    case SYMBOL_DIGITS: return s->digits;
    case SYMBOL_TRADE_STOPS_LEVEL: return sim::stops_level;
    case SYMBOL_FILLING_MODE: return 3;  // FOK | IOC
  }
  return 0;
}
double SymbolInfoDouble(string name, ENUM_SYMBOL_INFO_DOUBLE prop_id) {
  sim::Symbol* s = sim::find(name.utf8());
  const sim::Tick* q = sim::quote(s);
  switch (prop_id) {
    case SYMBOL_BID: return q ? q->bid : 0;
    case SYMBOL_ASK: return q ? q->ask : 0;
    case SYMBOL_POINT: return s ? sim::point(s) : 0;
    case SYMBOL_TRADE_CONTRACT_SIZE: return sim::contract;
    case SYMBOL_TRADE_TICK_SIZE: return s ? sim::tick_size(s) : 0;
    case SYMBOL_TRADE_TICK_VALUE: return s ? sim::tick_size(s) * sim::contract : 0;  // the sim's P&L: quote currency = account currency
    case SYMBOL_VOLUME_MIN: return sim::vol_min;
    case SYMBOL_VOLUME_MAX: return sim::vol_max;
    case SYMBOL_VOLUME_STEP: return sim::vol_step;
  }
  return 0;
}
bool SymbolInfoTick(string symbol, MqlTick& tick) {
  const sim::Tick* q = sim::quote(sim::find(symbol.utf8()));
  if (!q) return false;
  tick = MqlTick();
  long server = sim::server_msc(q->utc_msc);
  tick.time = server / 1000;
  tick.bid = q->bid;
  tick.ask = q->ask;
#ifdef QT_MQL5
  tick.time_msc = server;
#endif
  return true;
}

#ifdef QT_MQL4
// -- built-ins: MQL4 ----------------------------------------------------------------
static sim::Order selected;

datetime TimeCurrent() { return sim::server_msc(sim::last_tick_utc_msc) / 1000; }
bool RefreshRates() { return true; }
double MarketInfo(string symbol, int type) {
  sim::Symbol* s = sim::find(symbol.utf8());
  const sim::Tick* q = sim::quote(s);
  if (!s) {
    sim::last_error = 4106;
    return 0;
  }
  switch (type) {
    case MODE_BID: return q ? q->bid : 0;
    case MODE_ASK: return q ? q->ask : 0;
    case MODE_POINT: return sim::point(s);
    case MODE_DIGITS: return s->digits;
    case MODE_STOPLEVEL: return (double)sim::stops_level;
    case MODE_LOTSTEP: return sim::vol_step;
    case MODE_MINLOT: return sim::vol_min;
    case MODE_MAXLOT: return sim::vol_max;
  }
  return 0;
}
// MQL4 documents int property ids, MQL5 enums: one account serves both
double AccountInfoDouble(int property_id) { return sim::account_double(property_id); }
long AccountInfoInteger(int property_id) { return sim::account_integer(property_id); }
string AccountInfoString(int property_id) { return sim::account_string(property_id); }
int OrdersTotal() { return (int)sim::open_orders.size(); }
bool OrderSelect(int index, int select, int pool) {
  if (select == SELECT_BY_TICKET) {
    for (auto& o : sim::open_orders)
      if (o.ticket == index) return selected = o, true;
    for (auto& o : sim::history)
      if (o.ticket == index) return selected = o, true;
    sim::last_error = 4108;  // ERR_INVALID_TICKET
    return false;
  }
  auto& list = pool == MODE_HISTORY ? sim::history : sim::open_orders;
  if (index < 0 || index >= (int)list.size()) {
    sim::last_error = 4051;
    return false;
  }
  selected = list[(size_t)index];
  return true;
}
int OrderTicket() { return (int)selected.ticket; }
string OrderSymbol() { return string(selected.symbol.c_str()); }
int OrderType() { return selected.type; }
double OrderLots() { return selected.lots; }
double OrderOpenPrice() { return selected.open_price; }
double OrderClosePrice() {
  if (selected.close_msc) return selected.close_price;
  const sim::Tick* q = sim::quote(sim::find(selected.symbol));
  return q ? (selected.type == 0 ? q->bid : q->ask) : 0;
}
double OrderStopLoss() { return selected.sl; }
double OrderTakeProfit() { return selected.tp; }
double OrderProfit() { return sim::profit(selected); }
double OrderSwap() { return 0; }
double OrderCommission() { return selected.commission; }
int OrderMagicNumber() { return (int)selected.magic; }
string OrderComment() { return string(selected.comment.c_str()); }
datetime OrderOpenTime() { return selected.open_msc / 1000; }
datetime OrderCloseTime() { return selected.close_msc / 1000; }

int OrderSend(string symbol, int cmd, double volume, double price, int slippage, double stoploss, double takeprofit,
              string comment, int magic, datetime expiration, color arrow_color) {
  if (cmd != OP_BUY && cmd != OP_SELL) return sim::last_error = 3, -1;  // only market orders are simulated
  switch (sim::check_open(symbol.utf8(), cmd, volume, price, slippage, stoploss, takeprofit)) {
    case sim::BAD_SYMBOL: return sim::last_error = 4106, -1;
    case sim::BAD_VOLUME: return sim::last_error = 131, -1;
    case sim::REQUOTE: return sim::last_error = 138, -1;
    case sim::BAD_STOPS: return sim::last_error = 130, -1;
    case sim::NO_MONEY: return sim::last_error = 134, -1;
    case sim::OK: break;
  }
  return (int)sim::open(symbol.utf8(), cmd, volume, stoploss, takeprofit, magic, comment.utf8()).ticket;
}
bool OrderClose(int ticket, double lots, double price, int slippage, color arrow_color) {
  int i = sim::find_open(ticket);
  if (i < 0) return sim::last_error = 4108, false;
  sim::Order& o = sim::open_orders[(size_t)i];
  sim::Symbol* s = sim::find(o.symbol);
  const sim::Tick* q = sim::quote(s);
  double market = o.type == 0 ? q->bid : q->ask;
  if (!sim::volume_ok(lots) || lots > o.lots + 1e-9) return sim::last_error = 131, false;
  if (std::fabs(price - market) > slippage * sim::point(s) + 1e-9) return sim::last_error = 138, false;
  sim::close((size_t)i, lots, true);
  return true;
}
bool OrderModify(int ticket, double price, double stoploss, double takeprofit, datetime expiration, color arrow_color) {
  int i = sim::find_open(ticket);
  if (i < 0) return sim::last_error = 4108, false;
  sim::Order& o = sim::open_orders[(size_t)i];
  if (o.sl == stoploss && o.tp == takeprofit) return sim::last_error = 1, false;  // ERR_NO_RESULT
  if (!sim::stops_ok(sim::find(o.symbol), o.type, stoploss, takeprofit)) return sim::last_error = 130, false;
  o.sl = stoploss;
  o.tp = takeprofit;
  return true;
}
#endif

#ifdef QT_MQL5
// -- built-ins: MQL5 ----------------------------------------------------------------
static sim::Order position;  // the selected position
static std::vector<ulong> selected_deals, selected_orders;  // the history HistorySelectByPosition selected

datetime TimeTradeServer() { return sim::server_msc(sim::now_utc_msc()) / 1000; }
double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE property_id) { return sim::account_double(property_id); }
long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER property_id) { return sim::account_integer(property_id); }
string AccountInfoString(ENUM_ACCOUNT_INFO_STRING property_id) { return sim::account_string(property_id); }
int CopyTicks(string symbol_name, MqlArray<MqlTick>& ticks_array, uint flags, ulong from, uint count) {
  sim::Symbol* s = sim::find(symbol_name.utf8());
  if (!s) return sim::last_error = 4301, -1;
  if (count == 0) count = 2000;
  ticks_array.items.clear();
  for (const auto& t : s->ticks) {
    long server = sim::server_msc(t.utc_msc);
    if ((ulong)server < from) continue;
    MqlTick m;
    m.time = server / 1000;
    m.time_msc = server;
    m.bid = t.bid;
    m.ask = t.ask;
    ticks_array.items.push_back(m);
    if (ticks_array.items.size() >= count) break;
  }
  return ticks_array.size();
}
int PositionsTotal() { return (int)sim::open_orders.size(); }
ulong PositionGetTicket(int index) {
  if (index < 0 || index >= (int)sim::open_orders.size()) return sim::last_error = 4753, 0;
  position = sim::open_orders[(size_t)index];
  return (ulong)position.ticket;
}
bool PositionSelect(string symbol) {  // hedging: the symbol's first position, as the terminal does
  std::string name = symbol.utf8();
  for (auto& o : sim::open_orders)
    if (o.symbol == name) return position = o, true;
  return sim::last_error = 4753, false;
}
bool PositionSelectByTicket(ulong ticket) {
  int i = sim::find_open((long)ticket);
  if (i < 0) return sim::last_error = 4753, false;  // ERR_TRADE_POSITION_NOT_FOUND
  position = sim::open_orders[(size_t)i];
  return true;
}
long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER property_id) {
  switch (property_id) {
    case POSITION_TICKET: case POSITION_IDENTIFIER: return position.ticket;
    case POSITION_TIME: return position.open_msc / 1000;
    case POSITION_TIME_MSC: return position.open_msc;
    case POSITION_TYPE: return position.type;
    case POSITION_MAGIC: return position.magic;
  }
  return 0;
}
double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE property_id) {
  switch (property_id) {
    case POSITION_VOLUME: return position.lots;
    case POSITION_PRICE_OPEN: return position.open_price;
    case POSITION_SL: return position.sl;
    case POSITION_TP: return position.tp;
    case POSITION_PROFIT: return sim::profit(position);
    case POSITION_SWAP: return 0;
    case POSITION_PRICE_CURRENT: {
      const sim::Tick* q = sim::quote(sim::find(position.symbol));
      return q ? (position.type == 0 ? q->bid : q->ask) : 0;
    }
  }
  return 0;
}
string PositionGetString(ENUM_POSITION_PROPERTY_STRING property_id) {
  return string((property_id == POSITION_SYMBOL ? position.symbol : position.comment).c_str());
}
static const sim::Deal* deal(ulong ticket) {
  for (auto& d : sim::deals)
    if (d.ticket == ticket) return &d;
  return nullptr;
}
bool HistoryDealSelect(ulong ticket) { return deal(ticket) != nullptr; }
// the deals and the orders of the position (MQL5: "retrieves the history of deals and orders having the
// specified position identifier"); HistoryDealGet*/HistoryOrderGet* read what it selected
bool HistorySelectByPosition(ulong position_id) {
  selected_deals.clear();
  selected_orders.clear();
  for (auto& d : sim::deals)
    if (d.position == position_id) selected_deals.push_back(d.ticket);
  for (auto& o : sim::history_orders)
    if (o.position == position_id) selected_orders.push_back(o.ticket);
  return true;
}
string HistoryDealGetString(ulong ticket_number, ENUM_DEAL_PROPERTY_STRING property_id) {
  const sim::Deal* d = deal(ticket_number);
  if (!d) return sim::last_error = 4755, string();  // ERR_TRADE_DEAL_NOT_FOUND
  return string((property_id == DEAL_SYMBOL ? d->symbol : property_id == DEAL_COMMENT ? d->comment : std::string()).c_str());
}
// an order of the history selected beforehand (HistorySelectByPosition), as the MQL5 reference requires
string HistoryOrderGetString(ulong ticket_number, ENUM_ORDER_PROPERTY_STRING property_id) {
  for (ulong t : selected_orders) {
    if (t != ticket_number) continue;
    for (auto& o : sim::history_orders)
      if (o.ticket == t) return string((property_id == ORDER_SYMBOL ? o.symbol : property_id == ORDER_COMMENT ? o.comment : std::string()).c_str());
  }
  return sim::last_error = 4754, string();  // ERR_TRADE_ORDER_NOT_FOUND
}
int HistoryDealsTotal() { return (int)selected_deals.size(); }
ulong HistoryDealGetTicket(int index) { return index >= 0 && index < (int)selected_deals.size() ? selected_deals[(size_t)index] : 0; }
long HistoryDealGetInteger(ulong ticket_number, ENUM_DEAL_PROPERTY_INTEGER property_id) {
  const sim::Deal* d = deal(ticket_number);
  if (!d) return 0;
  switch (property_id) {
    case DEAL_TICKET: return (long)d->ticket;
    case DEAL_ORDER: return (long)d->order;
    case DEAL_TIME: return d->time_msc / 1000;
    case DEAL_TIME_MSC: return d->time_msc;
    case DEAL_POSITION_ID: return (long)d->position;
  }
  return 0;
}
double HistoryDealGetDouble(ulong ticket_number, ENUM_DEAL_PROPERTY_DOUBLE property_id) {
  const sim::Deal* d = deal(ticket_number);
  if (!d) return 0;
  switch (property_id) {
    case DEAL_PRICE: return d->price;
    case DEAL_VOLUME: return d->volume;
    case DEAL_COMMISSION: return d->commission;
    case DEAL_SWAP: case DEAL_PROFIT: return 0;
  }
  return 0;
}

static bool reject(MqlTradeResult& result, uint retcode) {
  result.retcode = retcode;
  sim::last_error = 4756;  // ERR_TRADE_SEND_FAILED
  return false;
}

static void add_deal(MqlTradeResult& result, ulong order, ulong position_id, double price, double volume, const std::string& symbol,
                     const std::string& comment) {
  sim::Deal d;
  d.ticket = (ulong)sim::next_ticket++;
  d.order = order;
  d.position = position_id;
  d.time_msc = sim::server_msc(sim::last_tick_utc_msc);
  d.price = price;
  d.volume = volume;
  d.symbol = symbol;
  d.comment = comment.substr(0, 31);
  sim::deals.push_back(d);
  sim::history_orders.push_back({order, position_id, symbol, d.comment});
  result.retcode = TRADE_RETCODE_DONE;
  result.deal = d.ticket;
  result.order = order;
  result.price = price;
  result.volume = volume;
}

bool OrderSend(MqlTradeRequest& request, MqlTradeResult& result) {
  ZeroMemory(result);
  std::string symbol = request.symbol.utf8();
  if (request.action == TRADE_ACTION_DEAL && request.position == 0) {
    if (request.type_filling == ORDER_FILLING_RETURN) return reject(result, TRADE_RETCODE_INVALID_FILL);
    switch (sim::check_open(symbol, request.type, request.volume, request.price, (long)request.deviation, request.sl, request.tp)) {
      case sim::BAD_SYMBOL: return reject(result, TRADE_RETCODE_INVALID);
      case sim::BAD_VOLUME: return reject(result, TRADE_RETCODE_INVALID_VOLUME);
      case sim::REQUOTE: return reject(result, TRADE_RETCODE_REQUOTE);
      case sim::BAD_STOPS: return reject(result, TRADE_RETCODE_INVALID_STOPS);
      case sim::NO_MONEY: return reject(result, TRADE_RETCODE_NO_MONEY);
      case sim::OK: break;
    }
    sim::Order& o = sim::open(symbol, request.type, request.volume, request.sl, request.tp, (long)request.magic, request.comment.utf8());
    add_deal(result, (ulong)o.ticket, (ulong)o.ticket, o.open_price, o.lots, symbol, request.comment.utf8());
    return true;
  }
  if (request.action == TRADE_ACTION_DEAL) {
    int i = sim::find_open((long)request.position);
    if (i < 0) return reject(result, TRADE_RETCODE_POSITION_CLOSED);
    sim::Order& o = sim::open_orders[(size_t)i];
    if (request.type == o.type) return reject(result, TRADE_RETCODE_INVALID);  // a close is the opposite deal
    if (!sim::volume_ok(request.volume) || request.volume > o.lots + 1e-9) return reject(result, TRADE_RETCODE_INVALID_VOLUME);
    sim::Symbol* s = sim::find(o.symbol);
    const sim::Tick* q = sim::quote(s);
    double market = o.type == 0 ? q->bid : q->ask;
    if (std::fabs(request.price - market) > (double)request.deviation * sim::point(s) + 1e-9) return reject(result, TRADE_RETCODE_REQUOTE);
    ulong position_id = (ulong)o.ticket;
    sim::Order closed = sim::close((size_t)i, request.volume, false);
    add_deal(result, (ulong)sim::next_ticket++, position_id, closed.close_price, closed.lots, closed.symbol, request.comment.utf8());
    return true;
  }
  if (request.action == TRADE_ACTION_SLTP) {
    int i = sim::find_open((long)request.position);
    if (i < 0) return reject(result, TRADE_RETCODE_POSITION_CLOSED);
    sim::Order& o = sim::open_orders[(size_t)i];
    if (o.sl == request.sl && o.tp == request.tp) return reject(result, TRADE_RETCODE_NO_CHANGES);
    if (!sim::stops_ok(sim::find(o.symbol), o.type, request.sl, request.tp)) return reject(result, TRADE_RETCODE_INVALID_STOPS);
    o.sl = request.sl;
    o.tp = request.tp;
    result.retcode = TRADE_RETCODE_DONE;
    return true;
  }
  return reject(result, TRADE_RETCODE_INVALID);
}

// MQL_POSITION_CLOSED=LOTS,COMMENT: an earlier run of the EA closed LOTS of the held position (MQL_POSITION)
// with an order commented COMMENT, and its reply went with that run: the deal is in the history
static void close_held_before_start(const char* spec) {
  double lots = 0;
  char comment[64] = {0};
  if (std::sscanf(spec, "%lf,%63s", &lots, comment) != 2 || sim::open_orders.empty()) mql_critical("MQL_POSITION_CLOSED: LOTS,COMMENT after MQL_POSITION");
  sim::Order& o = sim::open_orders.back();
  MqlTradeRequest request;
  MqlTradeResult result;
  request.action = TRADE_ACTION_DEAL;
  request.position = (ulong)o.ticket;
  request.symbol = string(o.symbol.c_str());
  request.volume = lots;
  request.type = o.type == 0 ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
  const sim::Tick* q = sim::quote(sim::find(o.symbol));
  request.price = o.type == 0 ? q->bid : q->ask;
  request.comment = string(comment);
  if (!OrderSend(request, result)) mql_critical("MQL_POSITION_CLOSED: the close failed");
}
#endif

// -- inputs and the event loop -------------------------------------------------------

static const char* input_text(const char* name) {
  std::string key = std::string("MQL_INPUT_") + name;
  return std::getenv(key.c_str());
}
bool mql_input_set(const char* name, string& value) {
  const char* v = input_text(name);
  return v ? (value = string(v), true) : false;
}
bool mql_input_set(const char* name, int& value) {
  const char* v = input_text(name);
  return v ? (value = std::atoi(v), true) : false;
}
bool mql_input_set(const char* name, bool& value) {
  const char* v = input_text(name);
  return v ? (value = std::strcmp(v, "true") == 0 || std::strcmp(v, "1") == 0, true) : false;
}
bool mql_input_set(const char* name, double& value) {
  const char* v = input_text(name);
  return v ? (value = std::atof(v), true) : false;
}

static long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : fallback;
}

static void on_signal(int) { sim::stop = true; }
static void on_reinit(int) { sim::reinit = true; }

// OnInit, reported on stdout; a failure ends the EA as the terminal does
static bool start_ea(const char* label) {
  int init = OnInit();
  std::printf("MQL_HARNESS %s=%d\n", label, init);
  std::fflush(stdout);
  if (init == INIT_SUCCEEDED) return true;
  OnDeinit(REASON_INITFAILED);
  return false;
}

int main() {
  const char* ticks = std::getenv("MQL_TICKS");
  if (!ticks) mql_critical("MQL_TICKS is not set");
  sim::load(ticks);
  sim::chart_symbol = std::getenv("MQL_CHART_SYMBOL") ? std::getenv("MQL_CHART_SYMBOL") : sim::symbols[0].name;
  sim::offset_s = env_long("MQL_SERVER_OFFSET_S", 7200);
  sim::balance = std::getenv("MQL_BALANCE") ? std::strtod(std::getenv("MQL_BALANCE"), nullptr) : 10000.0;  // a BTC account: 0.12345678
  if (std::getenv("MQL_CURRENCY")) sim::currency = std::getenv("MQL_CURRENCY");
  sim::currency_digits = env_long("MQL_CURRENCY_DIGITS", 2);
  sim::leverage = env_long("MQL_LEVERAGE", 100);
  sim::login = env_long("MQL_LOGIN", 5012345);
  sim::login_after_ms = env_long("MQL_LOGIN_AFTER_MS", 0);
  sim::stops_level = env_long("MQL_STOPS_LEVEL", 10);
  sim::tick_points = env_long("MQL_TICK_SIZE_POINTS", 1);
  if (std::getenv("MQL_SERVER")) sim::server = std::getenv("MQL_SERVER");
  long tick_us = env_long("MQL_TICK_US", 500);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGUSR1, on_reinit);

  // the terminal knows each symbol's current quote when the EA is attached
  std::vector<bool> seen(sim::symbols.size(), false);
  for (size_t i = 0; i < sim::tape.size(); i++) {
    int s = sim::tape[i].first;
    if (!seen[(size_t)s]) {
      seen[(size_t)s] = true;
      sim::apply(sim::tape[i]);
      sim::tape[i].first = -1;  // applied before start
    }
  }
  // MQL_POSITION=SYMBOL,TYPE,LOTS,COMMENT: a position the terminal holds before the EA starts (one an
  // earlier run of the EA opened, say, whose reply cache went with it)
  if (const char* held = std::getenv("MQL_POSITION")) {
    char symbol[64] = {0}, comment[64] = {0};
    int type = 0;
    double lots = 0;
    if (std::sscanf(held, "%63[^,],%d,%lf,%63s", symbol, &type, &lots, comment) != 4) mql_critical("MQL_POSITION: SYMBOL,TYPE,LOTS,COMMENT");
    sim::open(symbol, type, lots, 0, 0, 0, comment);
  }
#ifdef QT_MQL5
  if (const char* closed = std::getenv("MQL_POSITION_CLOSED")) close_held_before_start(closed);
#endif
  mql_apply_inputs();
  if (!start_ea("oninit")) return 3;
  using clock = std::chrono::steady_clock;
  auto next_tick = clock::now();
  auto next_timer = clock::now() + std::chrono::milliseconds(sim::timer_ms);
  size_t cursor = 0;
  bool announced = false;
  while (!sim::stop) {
    if (sim::reinit.exchange(false)) {
      // the terminal re-initialises the EA in place: OnDeinit, then OnInit, globals kept
      OnDeinit(REASON_CHARTCHANGE);
      if (!start_ea("reinit oninit")) return 3;
    }
    auto now = clock::now();
    while (cursor < sim::tape.size() && sim::tape[cursor].first < 0) cursor++;
    if (cursor < sim::tape.size() && now >= next_tick) {
      sim::apply(sim::tape[cursor]);
      bool chart = sim::symbols[(size_t)sim::tape[cursor].first].name == sim::chart_symbol;
      cursor++;
      sim::replayed++;
      if (chart) OnTick();
      next_tick += std::chrono::microseconds(tick_us);
    } else if (cursor >= sim::tape.size() && !announced) {
      announced = true;
      std::printf("MQL_HARNESS replay_done ticks=%zu\n", sim::tape.size());
      std::fflush(stdout);
    }
    if (sim::timer_ms > 0 && now >= next_timer) {
      OnTimer();
      next_timer = clock::now() + std::chrono::milliseconds(sim::timer_ms);
    }
    auto wake = next_timer;
    if (cursor < sim::tape.size() && next_tick < wake) wake = next_tick;
    if (wake > clock::now()) std::this_thread::sleep_until(std::min(wake, clock::now() + std::chrono::milliseconds(5)));
  }
  OnDeinit(REASON_REMOVE);
  std::printf("MQL_HARNESS deinit\n");
  std::fflush(stdout);
  return 0;
}
