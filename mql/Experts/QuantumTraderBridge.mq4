//+------------------------------------------------------------------+
//| QuantumTraderBridge.mq4 - MetaTrader 4 side of the QuantumTrader  |
//| wire contract (../shared/PROTOCOL.md, docs/protocol.md).          |
//|                                                                  |
//| Streams ticks of a symbol list, the account and the open         |
//| positions to the daemon (PUSH, connects to EventsEndpoint) and   |
//| executes the daemon's commands (REP, binds CommandBindEndpoint). |
//| MT4 has no CopyTicks: the chart symbol is sent on OnTick, every  |
//| symbol is polled with SymbolInfoTick on the millisecond timer,   |
//| and only changed quotes are sent. MT4 tick times have second     |
//| resolution. Install: docs/mql.md (mql-zmq, DLL imports).         |
//+------------------------------------------------------------------+
#property copyright "QuantumTrader"
#property version   "1.00"
#property strict

//--- inputs (QtBridge.mqh reads the shared ones)
input string EventsEndpoint           = "tcp://127.0.0.1:5555"; // Daemon events endpoint (PUSH connects here)
input string CommandBindEndpoint      = "tcp://127.0.0.1:5560"; // Command socket this EA binds (REP); one port per terminal; loopback: no order entry from the network
input string CommandEndpointAnnounced = "tcp://127.0.0.1:5560"; // Command endpoint announced to the daemon in hello/heartbeat
input string TerminalId               = "";                     // Terminal id; empty = "<login>@<server>"
input string SymbolList               = "";                     // Symbols to stream, comma separated; empty = Market Watch
input int    HeartbeatSeconds         = 5;                      // Heartbeat period, seconds
input int    TimerMilliseconds        = 20;                     // Timer period: commands, quotes, state, milliseconds
input int    MagicNumber              = 20240115;               // Magic for orders whose command carries magic 0
input int    CloseDeviationPoints     = 10;                     // Allowed slippage of close orders, points
input int    QueueCapacity            = 1024;                   // Events kept while the daemon is slow or down
input int    AccountMinIntervalMs     = 1000;                   // Account events at most this often (plus every heartbeat)
input bool   UtcOffsetAuto            = true;                   // Estimate broker server time - UTC automatically
input int    UtcOffsetMinutes         = 0;                      // Server time - UTC in minutes when not automatic
input int    ByeLingerMs              = 100;                    // On removal, wait at most this long for "bye" to leave
input bool   StopsAfterFill           = false;                  // Market-execution brokers: open without stops, then set them

#include <QuantumTrader/QtBridge.mqh>

//+------------------------------------------------------------------+
//| quotes: every symbol polled, only changes sent                   |
//+------------------------------------------------------------------+
void QtStreamSymbol(int index)
  {
   MqlTick tick;
   if(!SymbolInfoTick(g_symbols[index], tick) || tick.time <= 0)
      return;                            // no quote yet
   long server_msc = (long)tick.time * 1000;
   if(tick.bid == g_last_bid[index] && tick.ask == g_last_ask[index] && server_msc == g_last_msc[index])
      return;                            // unchanged since the last one sent
   g_last_bid[index] = tick.bid;
   g_last_ask[index] = tick.ask;
   g_last_msc[index] = server_msc;
   QtEmitQuote(index, tick.bid, tick.ask, server_msc, (long)tick.volume);
  }

//+------------------------------------------------------------------+
//| positions (the platform half QtBridge.mqh declares)              |
//+------------------------------------------------------------------+
//--- true when the selected order is an open market position (not pending, not closed)
bool QtSelectedIsPosition()
  {
   return OrderCloseTime() == 0 && (OrderType() == OP_BUY || OrderType() == OP_SELL);
  }

//--- "ticket:lots:sl:tp;" of the selected order: what counts as a change
string QtSelectedOrderKey(int digits, int lot_digits)
  {
   return IntegerToString(OrderTicket()) + ":" + DoubleToString(OrderLots(), lot_digits) + ":" +
          DoubleToString(OrderStopLoss(), digits) + ":" + DoubleToString(OrderTakeProfit(), digits) + ";";
  }

string QtPositionsJson(string &key)
  {
   string out = "[";
   key = "";
   int written = 0;
   int money_digits = QtMoneyDigits();  // once, not per position
   int total = OrdersTotal();
   for(int i = 0; i < total; i++)
     {
      if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES) || !QtSelectedIsPosition())
         continue;
      string symbol = OrderSymbol();
      if(!QtValidSymbol(symbol))
         continue;
      int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
      key = key + QtSelectedOrderKey(digits, lot_digits);
      if(written > 0)
         out = out + ",";
      out = out + QtPositionObject(OrderTicket(), symbol, OrderType() == OP_BUY, OrderLots(), lot_digits,
                                   OrderOpenPrice(), OrderStopLoss(), OrderTakeProfit(), digits, OrderProfit(),
                                   OrderSwap(), OrderCommission(), OrderMagicNumber(), OrderComment(),
                                   QtServerTimeToUtcMsc(g_clock, OrderOpenTime()), money_digits);
      written++;
     }
   return out + "]";
  }

//--- MQL4 has no ACCOUNT_CURRENCY_DIGITS: 8, the most any currency has, so a BTC account keeps its
//--- satoshis (2 rounded 0.12345678 to 0.12). A USD account's 1234.56 goes out as 1234.56000000,
//--- the same number; a large one may print as 987654321.00999999, which reads back as the very
//--- double the terminal holds (17 significant digits or more always do).
int QtMoneyDigits()
  {
   return 8;
  }

string QtPositionsKey()
  {
   string key = "";
   int total = OrdersTotal();
   for(int i = 0; i < total; i++)
     {
      if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES) || !QtSelectedIsPosition())
         continue;
      string symbol = OrderSymbol();
      if(!QtValidSymbol(symbol))
         continue;
      key = key + QtSelectedOrderKey((int)SymbolInfoInteger(symbol, SYMBOL_DIGITS),
                                     QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP)));
     }
   return key;
  }

//+------------------------------------------------------------------+
//| trading                                                          |
//+------------------------------------------------------------------+
//--- the failure reply for the error GetLastError() just returned
string QtFailure(string id, int code, string context)
  {
   string message = QtMt4ErrorText(code);
   if(context != "")
      message = message + ": " + context;
   return QtReplyError(id, code, message);
  }

//--- MT4 errors after which the order may still have been executed: trade
//--- timeout, queued, accepted by the dealer
bool QtOutcomeUnknown(int code)
  {
   return code == 128 || code == 142 || code == 143;
  }

//--- the ticket of the open position whose comment is `comment`, or -1
int QtFindPositionByComment(string comment)
  {
   int total = OrdersTotal();
   for(int i = 0; i < total; i++)
      if(OrderSelect(i, SELECT_BY_POS, MODE_TRADES) && QtSelectedIsPosition() && OrderComment() == comment)
         return OrderTicket();
   return -1;
  }

//--- the reply to an open that filled: the fill as the terminal holds it (else the values given); with
//--- StopsAfterFill the stops asked for and not on the position are set now, and a refusal is said in the
//--- reply (the position exists, so it is ok and says what failed). A fresh fill holds none; a retried
//--- open's position may hold them already, or not (the earlier run stopped between fill and stops).
string QtReplyFilled(QtCommand &cmd, int ticket, int digits, int lot_digits, double price, double lots)
  {
   long time_msc = QtNowUtcMsc();
   double sl = QtStopPrice(cmd.symbol, cmd.sl);
   double tp = QtStopPrice(cmd.symbol, cmd.tp);
   bool stops_due = StopsAfterFill && (sl > 0.0 || tp > 0.0);
   if(OrderSelect(ticket, SELECT_BY_TICKET, MODE_TRADES))
     {
      price = OrderOpenPrice();
      lots = OrderLots();
      time_msc = QtServerTimeToUtcMsc(g_clock, OrderOpenTime());
      double half_point = 0.5 * MarketInfo(OrderSymbol(), MODE_POINT);
      stops_due = stops_due && (MathAbs(OrderStopLoss() - sl) > half_point || MathAbs(OrderTakeProfit() - tp) > half_point);
     }
   if(stops_due)
     {
      ResetLastError();
      if(!OrderModify(ticket, price, sl, tp, 0, clrNONE))
        {
         int err = GetLastError();
         return QtReplyTradeStopsFailed(cmd.id, ticket, price, digits, lots, lot_digits, time_msc, err, QtMt4ErrorText(err));
        }
     }
   return QtReplyTrade(cmd.id, ticket, price, digits, lots, lot_digits, time_msc);
  }

string QtReplyIfOpened(QtCommand &cmd)
  {
   int ticket = QtFindPositionByComment("QT-" + cmd.id);
   if(ticket < 0 || !OrderSelect(ticket, SELECT_BY_TICKET, MODE_TRADES))
      return "";
   string symbol = OrderSymbol();
   return QtReplyFilled(cmd, ticket, (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS),
                        QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP)), OrderOpenPrice(), OrderLots());
  }

//--- select an open market position by ticket; false with the error code set
bool QtSelectPosition(long ticket, int &code)
  {
   code = 0;
   if(ticket < 1 || ticket > 2147483647)
     {
      code = 4108;                       // ERR_INVALID_TICKET: MT4 tickets are int
      return false;
     }
   ResetLastError();
   if(!OrderSelect((int)ticket, SELECT_BY_TICKET, MODE_TRADES))
     {
      code = GetLastError();
      if(code == 0)
         code = 4108;
      return false;
     }
   if(!QtSelectedIsPosition())
     {
      code = 4108;                       // closed, or a pending order: not a position
      return false;
     }
   return true;
  }

string QtExecuteOpen(QtCommand &cmd)
  {
   string symbol = cmd.symbol;
   ResetLastError();
   if(!SymbolSelect(symbol, true))
     {
      int err = GetLastError();
      if(err == 0)
         err = 4106;                     // ERR_UNKNOWN_SYMBOL
      return QtFailure(cmd.id, err, symbol);
     }
   long magic = cmd.magic;
   if(magic <= 0)
      magic = MagicNumber;
   if(magic > 2147483647 || cmd.deviation_points > 2147483647)
      return QtFailure(cmd.id, 4051, "magic and deviation_points must fit MT4's int");
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
   bool is_buy = (cmd.side == "buy");
   RefreshRates();
   double price = MarketInfo(symbol, MODE_BID);
   int type = OP_SELL;
   if(is_buy)
     {
      price = MarketInfo(symbol, MODE_ASK);
      type = OP_BUY;
     }
   if(price <= 0.0)
      return QtFailure(cmd.id, 136, symbol);   // ERR_OFF_QUOTES
   double lots = 0.0;
   if(!QtLotsForSymbol(symbol, cmd.lots, lots))
      return QtFailure(cmd.id, 131, QtLotsText(symbol, cmd.lots));   // ERR_INVALID_TRADE_VOLUME
   double sl = QtStopPrice(symbol, cmd.sl);
   double tp = QtStopPrice(symbol, cmd.tp);
   string comment = "QT-" + cmd.id;

   ResetLastError();
   int ticket = -1;
   if(StopsAfterFill)
      ticket = OrderSend(symbol, type, lots, price, (int)cmd.deviation_points, 0.0, 0.0, comment, (int)magic, 0, clrNONE);
   else
      ticket = OrderSend(symbol, type, lots, price, (int)cmd.deviation_points, sl, tp, comment, (int)magic, 0, clrNONE);
   if(ticket < 0)
     {
      int err = GetLastError();
      if(QtOutcomeUnknown(err))
         ticket = QtFindPositionByComment(comment);   // executed after all? then it is ours
      if(ticket < 0)
         return QtFailure(cmd.id, err, symbol);  // the daemon settles 128/142/143 from positions later
     }

   return QtReplyFilled(cmd, ticket, digits, lot_digits, price, lots);
  }

string QtExecuteClose(QtCommand &cmd)
  {
   int code = 0;
   if(!QtSelectPosition(cmd.ticket, code))
      return QtFailure(cmd.id, code, "ticket " + IntegerToString(cmd.ticket));
   int ticket = OrderTicket();
   string symbol = OrderSymbol();
   bool is_buy = (OrderType() == OP_BUY);
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
   double lots = OrderLots();
   if(cmd.lots > 0.0 && cmd.lots < lots && !QtLotsForSymbol(symbol, cmd.lots, lots))
      return QtFailure(cmd.id, 131, QtLotsText(symbol, cmd.lots));
   RefreshRates();
   double price = MarketInfo(symbol, MODE_ASK);   // a sell position closes at the ask
   if(is_buy)
      price = MarketInfo(symbol, MODE_BID);
   if(price <= 0.0)
      return QtFailure(cmd.id, 136, symbol);

   ResetLastError();
   if(!OrderClose(ticket, lots, price, CloseDeviationPoints, clrNONE))
     {
      int err = GetLastError();
      bool closed = QtOutcomeUnknown(err) && OrderSelect(ticket, SELECT_BY_TICKET) && OrderCloseTime() > 0;
      if(!closed)
         return QtFailure(cmd.id, err, "ticket " + IntegerToString(ticket));
     }
   double close_price = price;
   long time_msc = QtNowUtcMsc();
   if(OrderSelect(ticket, SELECT_BY_TICKET, MODE_HISTORY))
     {
      close_price = OrderClosePrice();
      if(OrderCloseTime() > 0)
         time_msc = QtServerTimeToUtcMsc(g_clock, OrderCloseTime());
     }
   return QtReplyTrade(cmd.id, ticket, close_price, digits, lots, lot_digits, time_msc);
  }

string QtExecuteModify(QtCommand &cmd)
  {
   int code = 0;
   if(!QtSelectPosition(cmd.ticket, code))
      return QtFailure(cmd.id, code, "ticket " + IntegerToString(cmd.ticket));
   int ticket = OrderTicket();
   ResetLastError();
   if(!OrderModify(ticket, OrderOpenPrice(), QtStopPrice(OrderSymbol(), cmd.sl), QtStopPrice(OrderSymbol(), cmd.tp), 0,
                   clrNONE))
     {
      int err = GetLastError();
      if(err != 1)                       // ERR_NO_RESULT: the stops were already as asked
         return QtFailure(cmd.id, err, "ticket " + IntegerToString(ticket));
     }
   return QtReplyModified(cmd.id, ticket, QtNowUtcMsc());
  }

string QtExecuteTrade(QtCommand &cmd)
  {
   if(!TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) || !MQLInfoInteger(MQL_TRADE_ALLOWED))
      return QtFailure(cmd.id, 4109, "enable AutoTrading and \"Allow live trading\"");   // ERR_TRADE_NOT_ALLOWED
   if(cmd.type == "open")
      return QtExecuteOpen(cmd);
   if(cmd.type == "close")
      return QtExecuteClose(cmd);
   return QtExecuteModify(cmd);
  }

//+------------------------------------------------------------------+
//| event handlers                                                   |
//+------------------------------------------------------------------+
datetime g_last_server_time = 0;        // TimeCurrent() when the offset was last estimated

int OnInit()
  {
   g_last_server_time = TimeCurrent();
   int result = QtBridgeStart("MT4", g_last_server_time);
   if(result != INIT_SUCCEEDED)
      return result;
   // the quotes the terminal has now go out at once, not at the first change (after a re-initialisation
   // in place, what arrived since the last one sent: QtLoadSymbols keeps it)
   for(int i = 0; i < g_symbol_count; i++)
      QtStreamSymbol(i);
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   QtBridgeStop(reason);
  }

void OnTimer()
  {
   // TimeCurrent() moves only when a tick arrives (any Market Watch symbol):
   // a fresh server time, so the offset is estimated before that tick is sent
   datetime server_now = TimeCurrent();
   if(UtcOffsetAuto && server_now != g_last_server_time)
     {
      g_last_server_time = server_now;
      QtClockUpdate(g_clock, server_now);
     }
   QtFlush();
   QtServeCommands();
   for(int i = 0; i < g_symbol_count; i++)
      QtStreamSymbol(i);
   QtCheckState();
   QtFlush();
  }

//--- the chart symbol at once; MT4's TimeCurrent() is fresh right after a tick,
//--- which is when the server - UTC offset can be estimated
void OnTick()
  {
   if(UtcOffsetAuto)
     {
      g_last_server_time = TimeCurrent();
      QtClockUpdate(g_clock, g_last_server_time);
     }
   int index = QtSymbolIndex(Symbol());
   if(index >= 0)
      QtStreamSymbol(index);
  }
//+------------------------------------------------------------------+
