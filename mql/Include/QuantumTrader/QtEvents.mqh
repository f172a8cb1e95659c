//+------------------------------------------------------------------+
//| QtEvents.mqh - the exact JSON of every event and reply            |
//|                                                                  |
//| One job: the wire shapes of PROTOCOL.md ("Events", "Commands")   |
//| and docs/protocol.md, built from plain values. Field order is    |
//| fixed (tests/mql/test_wire.py holds golden copies of these       |
//| strings). Prices carry the symbol's digits, lots the lot step's  |
//| digits, money the account currency's decimals (QtMoneyDigits).   |
//+------------------------------------------------------------------+
#property strict

#include <QuantumTrader/QtJson.mqh>

//--- {"v":1,"type":"<type>","terminal":"<terminal>","seq":<seq>   (left open)
string QtEventHead(string type, string terminal, long seq)
  {
   return "{\"v\":1,\"type\":" + QtJsonString(type) + ",\"terminal\":" + QtJsonString(terminal) +
          ",\"seq\":" + QtJsonInt(seq);
  }

//--- ,"time_msc":<time>}   (closes an event or a reply)
string QtEventTail(long time_msc)
  {
   return ",\"time_msc\":" + QtJsonInt(time_msc) + "}";
  }

//--- the hello fields, repeated in every heartbeat (docs/protocol.md)
string QtHelloFields(string platform, string command_endpoint, string &symbols[], int symbol_count, int heartbeat_s)
  {
   return "\"platform\":" + QtJsonString(platform) +
          ",\"command_endpoint\":" + QtJsonString(command_endpoint) +
          ",\"symbols\":" + QtJsonStringArray(symbols, symbol_count) +
          ",\"heartbeat_s\":" + QtJsonInt(heartbeat_s);
  }

//--- a spec as the daemon accepts it: below zero (never a terminal's) or NaN is 0, "not known",
//--- so one odd symbol cannot cost the whole hello
double QtNotBelowZero(double value)
  {
   return value > 0.0 ? value : 0.0;
  }

//--- "<symbol>":{...} of the hello's "specs" (docs/protocol.md)
string QtSymbolSpec(string symbol, double contract_size, double tick_size, double tick_value,
                    double volume_min, double volume_step, double volume_max)
  {
   return QtJsonString(symbol) + ":{\"contract_size\":" + QtJsonNumber(QtNotBelowZero(contract_size), 8) +
          ",\"tick_size\":" + QtJsonNumber(QtNotBelowZero(tick_size), 8) +
          ",\"tick_value\":" + QtJsonNumber(QtNotBelowZero(tick_value), 8) +
          ",\"volume_min\":" + QtJsonNumber(QtNotBelowZero(volume_min), 8) +
          ",\"volume_step\":" + QtJsonNumber(QtNotBelowZero(volume_step), 8) +
          ",\"volume_max\":" + QtJsonNumber(QtNotBelowZero(volume_max), 8) + "}";
  }

string QtHelloEvent(string terminal, long seq, string hello_fields, long time_msc)
  {
   return QtEventHead("hello", terminal, seq) + "," + hello_fields + QtEventTail(time_msc);
  }

string QtHeartbeatEvent(string terminal, long seq, long dropped, string hello_fields, long time_msc)
  {
   return QtEventHead("heartbeat", terminal, seq) + ",\"dropped\":" + QtJsonInt(dropped) + "," +
          hello_fields + QtEventTail(time_msc);
  }

string QtByeEvent(string terminal, long seq, string reason, long time_msc)
  {
   return QtEventHead("bye", terminal, seq) + ",\"reason\":" + QtJsonString(reason) + QtEventTail(time_msc);
  }

string QtTickEvent(string terminal, long seq, string symbol, double bid, double ask, int digits, long time_msc, long volume)
  {
   return QtEventHead("tick", terminal, seq) + ",\"symbol\":" + QtJsonString(symbol) +
          ",\"bid\":" + QtJsonNumber(bid, digits) + ",\"ask\":" + QtJsonNumber(ask, digits) +
          ",\"time_msc\":" + QtJsonInt(time_msc) + ",\"volume\":" + QtJsonInt(volume) + "}";
  }

//--- the account fields (no braces): the account event and the snapshot reply share them
//--- money_digits: the account currency's decimals (2 for USD, 8 for a BTC account)
string QtAccountFields(long login, string currency, double balance, double equity, double margin,
                       double free_margin, long leverage, string name, string server, int money_digits)
  {
   return "\"login\":" + QtJsonInt(login) + ",\"currency\":" + QtJsonString(currency) +
          ",\"balance\":" + QtJsonNumber(balance, money_digits) + ",\"equity\":" + QtJsonNumber(equity, money_digits) +
          ",\"margin\":" + QtJsonNumber(margin, money_digits) + ",\"free_margin\":" + QtJsonNumber(free_margin, money_digits) +
          ",\"leverage\":" + QtJsonInt(leverage) + ",\"name\":" + QtJsonString(name) +
          ",\"server\":" + QtJsonString(server);
  }

string QtAccountEvent(string terminal, long seq, string account_fields, long time_msc)
  {
   return QtEventHead("account", terminal, seq) + "," + account_fields + QtEventTail(time_msc);
  }

//--- one position object of the positions list
string QtPositionObject(long ticket, string symbol, bool is_buy, double lots, int lot_digits,
                        double open_price, double sl, double tp, int digits, double profit, double swap,
                        double commission, long magic, string comment, long open_time_msc, int money_digits)
  {
   string side = "sell";
   if(is_buy)
      side = "buy";
   return "{\"ticket\":" + QtJsonInt(ticket) + ",\"symbol\":" + QtJsonString(symbol) +
          ",\"side\":" + QtJsonString(side) + ",\"lots\":" + QtJsonNumber(lots, lot_digits) +
          ",\"open_price\":" + QtJsonNumber(open_price, digits) + ",\"sl\":" + QtJsonNumber(sl, digits) +
          ",\"tp\":" + QtJsonNumber(tp, digits) + ",\"profit\":" + QtJsonNumber(profit, money_digits) +
          ",\"swap\":" + QtJsonNumber(swap, money_digits) + ",\"commission\":" + QtJsonNumber(commission, money_digits) +
          ",\"magic\":" + QtJsonInt(magic) + ",\"comment\":" + QtJsonString(comment) +
          ",\"open_time_msc\":" + QtJsonInt(open_time_msc) + "}";
  }

//--- positions_json is a JSON array: "[" + objects joined by "," + "]"
string QtPositionsEvent(string terminal, long seq, string positions_json, long time_msc)
  {
   return QtEventHead("positions", terminal, seq) + ",\"positions\":" + positions_json + QtEventTail(time_msc);
  }

//--- a built object with ,"<name>":<value> before its closing brace (fields added to the protocol)
string QtWithInt(string json, string name, long value)
  {
   int n = StringLen(json);
   if(n == 0 || StringGetCharacter(json, n - 1) != '}')
      return json;
   return StringSubstr(json, 0, n - 1) + "," + QtJsonString(name) + ":" + QtJsonInt(value) + "}";
  }

//--- a reply with ,"event_seq":<n>,"run":<run>: the seq of the last event built before the command ran,
//--- and the run that numbered it, so the daemon knows which positions events were built after it
//--- (PROTOCOL addition; docs/protocol.md). Nothing before the run's first event.
string QtWithEventSeq(string reply, long last_seq, long run)
  {
   if(last_seq < 0)
      return reply;
   return QtWithInt(QtWithInt(reply, "event_seq", last_seq), "run", run);
  }

//--- {"v":1,"type":"reply","id":"<id>","ok":<ok>   (left open)
string QtReplyHead(string id, bool ok)
  {
   string safe_id = id;
   if(safe_id == "")
      safe_id = "0";          // the command's id could not be read
   return "{\"v\":1,\"type\":\"reply\",\"id\":" + QtJsonString(safe_id) + ",\"ok\":" + QtJsonBool(ok);
  }

//--- success of open/close: the position's ticket, the fill price and lots
string QtReplyTrade(string id, long ticket, double price, int digits, double lots, int lot_digits, long time_msc)
  {
   return QtReplyHead(id, true) + ",\"ticket\":" + QtJsonInt(ticket) + ",\"price\":" + QtJsonNumber(price, digits) +
          ",\"lots\":" + QtJsonNumber(lots, lot_digits) + QtEventTail(time_msc);
  }

//--- success of open where the stops could not be set after the fill (MT4):
//--- the position exists, so the reply is ok and says what failed
string QtReplyTradeStopsFailed(string id, long ticket, double price, int digits, double lots, int lot_digits,
                               long time_msc, int code, string message)
  {
   return QtReplyHead(id, true) + ",\"ticket\":" + QtJsonInt(ticket) + ",\"price\":" + QtJsonNumber(price, digits) +
          ",\"lots\":" + QtJsonNumber(lots, lot_digits) + ",\"stops_error\":{\"code\":" + QtJsonInt(code) +
          ",\"message\":" + QtJsonString(message) + "}" + QtEventTail(time_msc);
  }

//--- success of modify: the ticket
string QtReplyModified(string id, long ticket, long time_msc)
  {
   return QtReplyHead(id, true) + ",\"ticket\":" + QtJsonInt(ticket) + QtEventTail(time_msc);
  }

//--- success of ping
string QtReplyPing(string id, long time_msc)
  {
   return QtReplyHead(id, true) + QtEventTail(time_msc);
  }

//--- success of snapshot: the account object and the positions array
string QtReplySnapshot(string id, string account_fields, string positions_json, long time_msc)
  {
   return QtReplyHead(id, true) + ",\"account\":{" + account_fields + "},\"positions\":" + positions_json +
          QtEventTail(time_msc);
  }

//--- failure, with the terminal's own code and text (or a parser code < 0)
string QtReplyError(string id, int code, string message)
  {
   return QtReplyHead(id, false) + ",\"error\":{\"code\":" + QtJsonInt(code) + ",\"message\":" +
          QtJsonString(message) + "}}";
  }
//+------------------------------------------------------------------+
