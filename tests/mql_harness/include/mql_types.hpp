// MQL's types, as far as the EAs rely on them, for compiling the EA source with g++.
//
// string: UTF-16 code units (StringLen, StringGetCharacter count those), "+"
//   concatenates, == compares; NULL is the empty string.
// MqlArray<T>: MQL's dynamic array; an index out of range stops the program
//   as the terminal stops an EA ("array out of range"), so a sizing bug is a
//   test failure here, not undefined behaviour.
// MqlFixedArray<T, N>: MQL's fixed-size array, bounds-checked the same way.
// Constants and enums: the values of the MQL4/MQL5 documentation; the ones
//   that exist on one platform only are defined for that platform only
//   (QT_MQL4 / QT_MQL5), so using one on the other platform does not compile.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;  // 64-bit on LP64 Linux, as MQL's ulong
typedef long datetime;        // seconds since 1970, 64-bit
typedef uint color;

[[noreturn]] void mql_critical(const char* what);

class string {
 public:
  std::u16string units;
  string() {}
  string(const char* utf8);  // NULL -> ""
  string(const std::u16string& u) : units(u) {}
  std::string utf8() const;
  string& operator+=(const string& other) {
    units += other.units;
    return *this;
  }
  friend string operator+(const string& a, const string& b) { return string(a.units + b.units); }
  friend bool operator==(const string& a, const string& b) { return a.units == b.units; }
  friend bool operator!=(const string& a, const string& b) { return a.units != b.units; }
};

// A string literal of the EA source (the transform wraps each one).
inline string S(const char* utf8) { return string(utf8); }

template <class T>
class MqlArray {
 public:
  std::vector<T> items;
  T& operator[](long i) {
    if (i < 0 || i >= (long)items.size()) mql_critical("array out of range");
    return items[(size_t)i];
  }
  const T& operator[](long i) const {
    if (i < 0 || i >= (long)items.size()) mql_critical("array out of range");
    return items[(size_t)i];
  }
  int size() const { return (int)items.size(); }
};

template <class T, int N>
class MqlFixedArray {
 public:
  T items[N] = {};
  T& operator[](long i) {
    if (i < 0 || i >= N) mql_critical("array out of range");
    return items[i];
  }
};

struct MqlTick {
  datetime time = 0;
  double bid = 0, ask = 0, last = 0;
  ulong volume = 0;
#ifdef QT_MQL5
  long time_msc = 0;
  uint flags = 0;
  double volume_real = 0;
#endif
};

// -- constants of both platforms ---------------------------------------------
const color clrNONE = 0xFFFFFFFF;
const uint CP_ACP = 0;
const uint CP_UTF8 = 65001;
const int INIT_SUCCEEDED = 0;
const int INIT_FAILED = 1;
const int INIT_PARAMETERS_INCORRECT = 32767;
const int REASON_PROGRAM = 0, REASON_REMOVE = 1, REASON_RECOMPILE = 2, REASON_CHARTCHANGE = 3, REASON_CHARTCLOSE = 4,
          REASON_PARAMETERS = 5, REASON_ACCOUNT = 6, REASON_TEMPLATE = 7, REASON_INITFAILED = 8, REASON_CLOSE = 9;
const int TERMINAL_TRADE_ALLOWED = 8;
const int MQL_TRADE_ALLOWED = 14;

enum ENUM_SYMBOL_INFO_INTEGER { SYMBOL_DIGITS = 17, SYMBOL_TRADE_STOPS_LEVEL = 31, SYMBOL_FILLING_MODE = 34 };
enum ENUM_SYMBOL_INFO_DOUBLE {
  SYMBOL_BID = 1, SYMBOL_ASK = 4, SYMBOL_POINT = 16, SYMBOL_TRADE_TICK_VALUE = 26, SYMBOL_TRADE_TICK_SIZE = 27,
  SYMBOL_TRADE_CONTRACT_SIZE = 28, SYMBOL_VOLUME_MIN = 34,
  SYMBOL_VOLUME_MAX = 35, SYMBOL_VOLUME_STEP = 36
};
#ifdef QT_MQL5
enum ENUM_ACCOUNT_INFO_INTEGER { ACCOUNT_LOGIN = 0, ACCOUNT_LEVERAGE = 35, ACCOUNT_MARGIN_MODE = 32, ACCOUNT_CURRENCY_DIGITS = 44 };
enum ENUM_ACCOUNT_MARGIN_MODE {
  ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0, ACCOUNT_MARGIN_MODE_EXCHANGE = 1, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
};
enum ENUM_ACCOUNT_INFO_DOUBLE {
  ACCOUNT_BALANCE = 37, ACCOUNT_CREDIT = 38, ACCOUNT_PROFIT = 39, ACCOUNT_EQUITY = 40, ACCOUNT_MARGIN = 41,
  ACCOUNT_MARGIN_FREE = 42
};
enum ENUM_ACCOUNT_INFO_STRING { ACCOUNT_NAME = 1, ACCOUNT_SERVER = 3, ACCOUNT_CURRENCY = 36 };
#else
// MQL4 documents AccountInfo*(int property_id)
const int ACCOUNT_LOGIN = 0, ACCOUNT_LEVERAGE = 35;
const int ACCOUNT_BALANCE = 37, ACCOUNT_CREDIT = 38, ACCOUNT_PROFIT = 39, ACCOUNT_EQUITY = 40, ACCOUNT_MARGIN = 41,
          ACCOUNT_MARGIN_FREE = 42;
const int ACCOUNT_NAME = 1, ACCOUNT_SERVER = 3, ACCOUNT_CURRENCY = 36;
#endif

#ifdef QT_MQL4
// -- MQL4 only ------------------------------------------------------------------
const int OP_BUY = 0, OP_SELL = 1, OP_BUYLIMIT = 2, OP_SELLLIMIT = 3, OP_BUYSTOP = 4, OP_SELLSTOP = 5;
const int SELECT_BY_POS = 0, SELECT_BY_TICKET = 1;
const int MODE_TRADES = 0, MODE_HISTORY = 1;
const int MODE_LOW = 1, MODE_HIGH = 2, MODE_TIME = 5, MODE_BID = 9, MODE_ASK = 10, MODE_POINT = 11, MODE_DIGITS = 12,
          MODE_SPREAD = 13, MODE_STOPLEVEL = 14, MODE_LOTSIZE = 15, MODE_MINLOT = 23, MODE_LOTSTEP = 24,
          MODE_MAXLOT = 25;
#endif

#ifdef QT_MQL5
// -- MQL5 only ------------------------------------------------------------------
const uint COPY_TICKS_ALL = 0xFFFFFFFF, COPY_TICKS_INFO = 1, COPY_TICKS_TRADE = 2;
const int SYMBOL_FILLING_FOK = 1, SYMBOL_FILLING_IOC = 2;
enum ENUM_TRADE_REQUEST_ACTIONS { TRADE_ACTION_DEAL = 1, TRADE_ACTION_PENDING = 5, TRADE_ACTION_SLTP = 6 };
enum ENUM_ORDER_TYPE { ORDER_TYPE_BUY = 0, ORDER_TYPE_SELL = 1 };
enum ENUM_ORDER_TYPE_FILLING { ORDER_FILLING_FOK = 0, ORDER_FILLING_IOC = 1, ORDER_FILLING_RETURN = 2 };
enum ENUM_ORDER_TYPE_TIME { ORDER_TIME_GTC = 0, ORDER_TIME_DAY = 1 };
enum ENUM_POSITION_TYPE { POSITION_TYPE_BUY = 0, POSITION_TYPE_SELL = 1 };
enum ENUM_POSITION_PROPERTY_INTEGER {
  POSITION_TICKET = 0, POSITION_TIME = 1, POSITION_TIME_MSC = 2, POSITION_TYPE = 4, POSITION_MAGIC = 5,
  POSITION_IDENTIFIER = 6
};
enum ENUM_POSITION_PROPERTY_DOUBLE {
  POSITION_VOLUME = 10, POSITION_PRICE_OPEN = 11, POSITION_SL = 12, POSITION_TP = 13, POSITION_PRICE_CURRENT = 14,
  POSITION_SWAP = 15, POSITION_PROFIT = 16
};
enum ENUM_POSITION_PROPERTY_STRING { POSITION_SYMBOL = 20, POSITION_COMMENT = 21 };
enum ENUM_DEAL_PROPERTY_INTEGER { DEAL_TICKET = 0, DEAL_ORDER = 1, DEAL_TIME = 2, DEAL_TIME_MSC = 3, DEAL_POSITION_ID = 8 };
enum ENUM_DEAL_PROPERTY_STRING { DEAL_SYMBOL = 20, DEAL_COMMENT = 21 };
enum ENUM_ORDER_PROPERTY_STRING { ORDER_SYMBOL = 30, ORDER_COMMENT = 31 };
enum ENUM_DEAL_PROPERTY_DOUBLE { DEAL_VOLUME = 10, DEAL_PRICE = 11, DEAL_COMMISSION = 12, DEAL_SWAP = 13, DEAL_PROFIT = 14 };
const uint TRADE_RETCODE_REQUOTE = 10004, TRADE_RETCODE_REJECT = 10006, TRADE_RETCODE_PLACED = 10008,
           TRADE_RETCODE_DONE = 10009, TRADE_RETCODE_DONE_PARTIAL = 10010, TRADE_RETCODE_INVALID = 10013,
           TRADE_RETCODE_INVALID_VOLUME = 10014, TRADE_RETCODE_INVALID_PRICE = 10015,
           TRADE_RETCODE_INVALID_STOPS = 10016, TRADE_RETCODE_NO_MONEY = 10019, TRADE_RETCODE_PRICE_OFF = 10021,
           TRADE_RETCODE_NO_CHANGES = 10025, TRADE_RETCODE_CLIENT_DISABLES_AT = 10027,
           TRADE_RETCODE_INVALID_FILL = 10030, TRADE_RETCODE_POSITION_CLOSED = 10036;

struct MqlTradeRequest {
  ENUM_TRADE_REQUEST_ACTIONS action = (ENUM_TRADE_REQUEST_ACTIONS)0;
  ulong magic = 0, order = 0;
  string symbol;
  double volume = 0, price = 0, stoplimit = 0, sl = 0, tp = 0;
  ulong deviation = 0;
  ENUM_ORDER_TYPE type = ORDER_TYPE_BUY;
  ENUM_ORDER_TYPE_FILLING type_filling = ORDER_FILLING_FOK;
  ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC;
  datetime expiration = 0;
  string comment;
  ulong position = 0, position_by = 0;
};

struct MqlTradeResult {
  uint retcode = 0;
  ulong deal = 0, order = 0;
  double volume = 0, price = 0, bid = 0, ask = 0;
  string comment;
  uint request_id = 0;
  int retcode_external = 0;
};
#endif
