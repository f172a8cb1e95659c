//+------------------------------------------------------------------+
//| QuantumTraderBridge.mq5 - MetaTrader 5 side of the QuantumTrader  |
//| wire contract (../shared/PROTOCOL.md, docs/protocol.md).          |
//|                                                                  |
//| Streams ticks of a symbol list, the account and the open         |
//| positions to the daemon (PUSH, connects to EventsEndpoint) and   |
//| executes the daemon's commands (REP, binds CommandBindEndpoint). |
//| Never blocks the terminal thread: every socket call is           |
//| non-blocking and unsent events wait in a bounded queue.          |
//| Install: docs/mql.md. Needs dingmaotu's mql-zmq and DLL imports. |
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
input int    TimerMilliseconds        = 20;                     // Timer period: commands, ticks, state, milliseconds
input int    MagicNumber              = 20240115;               // Magic for orders whose command carries magic 0
input int    CloseDeviationPoints     = 10;                     // Allowed slippage of close orders, points
input int    QueueCapacity            = 1024;                   // Events kept while the daemon is slow or down
input int    AccountMinIntervalMs     = 1000;                   // Account events at most this often (plus every heartbeat)
input bool   UtcOffsetAuto            = true;                   // Estimate broker server time - UTC automatically
input int    UtcOffsetMinutes         = 0;                      // Server time - UTC in minutes when not automatic
input int    ByeLingerMs              = 100;                    // On removal, wait at most this long for "bye" to leave
input int    MaxTicksPerCopy          = 1000;                   // CopyTicks batch per symbol and timer event

#include <QuantumTrader/QtBridge.mqh>

MqlTick g_ticks[];

//+------------------------------------------------------------------+
//| positions (the platform half QtBridge.mqh declares)              |
//+------------------------------------------------------------------+
//--- commission of a position: the sum of its deals' commissions (MT5 keeps
//--- commission on deals, not on the position)
double QtPositionCommission(long position_id)
  {
   double total = 0.0;
   if(!HistorySelectByPosition(position_id))
      return 0.0;
   int deals = HistoryDealsTotal();
   for(int i = 0; i < deals; i++)
     {
      ulong deal = HistoryDealGetTicket(i);
      if(deal > 0)
         total += HistoryDealGetDouble(deal, DEAL_COMMISSION);
     }
   return total;
  }

//--- "ticket:lots:sl:tp;" of the selected position: what counts as a change
string QtSelectedPositionKey(ulong ticket, int digits, int lot_digits)
  {
   return IntegerToString((long)ticket) + ":" + DoubleToString(PositionGetDouble(POSITION_VOLUME), lot_digits) + ":" +
          DoubleToString(PositionGetDouble(POSITION_SL), digits) + ":" +
          DoubleToString(PositionGetDouble(POSITION_TP), digits) + ";";
  }

string QtPositionsJson(string &key)
  {
   string out = "[";
   key = "";
   int total = PositionsTotal();
   int written = 0;
   int money_digits = QtMoneyDigits();  // once, not per position
   for(int i = 0; i < total; i++)
     {
      ulong ticket = PositionGetTicket(i);  // also selects it; 0 = failed
      if(ticket == 0)
         continue;
      string symbol = PositionGetString(POSITION_SYMBOL);
      if(!QtValidSymbol(symbol))
         continue;
      int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
      key = key + QtSelectedPositionKey(ticket, digits, lot_digits);
      bool is_buy = (PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY);
      double lots = PositionGetDouble(POSITION_VOLUME);
      double sl = PositionGetDouble(POSITION_SL);
      double tp = PositionGetDouble(POSITION_TP);
      long open_msc = QtServerMscToUtc(g_clock, PositionGetInteger(POSITION_TIME_MSC));
      string comment = PositionGetString(POSITION_COMMENT);
      long magic = PositionGetInteger(POSITION_MAGIC);
      double price_open = PositionGetDouble(POSITION_PRICE_OPEN);
      double profit = PositionGetDouble(POSITION_PROFIT);
      double swap = PositionGetDouble(POSITION_SWAP);
      long identifier = PositionGetInteger(POSITION_IDENTIFIER);
      // read every field first: the history lookup below does not change the
      // selected position, but nothing after it needs the selection
      double commission = QtPositionCommission(identifier);
      if(written > 0)
         out = out + ",";
      out = out + QtPositionObject((long)ticket, symbol, is_buy, lots, lot_digits, price_open, sl, tp, digits,
                                   profit, swap, commission, magic, comment, open_msc, money_digits);
      written++;
     }
   return out + "]";
  }

//--- the account currency's decimals: 2 for USD, 8 for a BTC account (money fields were always 2)
int QtMoneyDigits()
  {
   int digits = (int)AccountInfoInteger(ACCOUNT_CURRENCY_DIGITS);
   if(digits < 0 || digits > 8)
      return 2;
   return digits;
  }

string QtPositionsKey()
  {
   string key = "";
   int total = PositionsTotal();
   for(int i = 0; i < total; i++)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0)
         continue;
      string symbol = PositionGetString(POSITION_SYMBOL);
      if(!QtValidSymbol(symbol))
         continue;
      key = key + QtSelectedPositionKey(ticket, (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS),
                                        QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP)));
     }
   return key;
  }

//+------------------------------------------------------------------+
//| ticks: CopyTicks from the last sent tick, so none is skipped     |
//+------------------------------------------------------------------+
void QtEmitTick(int index, MqlTick &tick)
  {
   QtEmitQuote(index, tick.bid, tick.ask, tick.time_msc, (long)tick.volume);
  }

//--- first call per symbol: the current quote, then remember what is already sent
void QtStartSymbol(int index)
  {
   MqlTick tick;
   string symbol = g_symbols[index];
   if(!SymbolInfoTick(symbol, tick) || tick.time_msc <= 0)
      return;                            // no quote yet: retried on the next timer event
   QtEmitTick(index, tick);
   g_last_msc[index] = tick.time_msc;
   g_sent_at_last[index] = 0;
   int copied = CopyTicks(symbol, g_ticks, COPY_TICKS_INFO, (ulong)tick.time_msc, (uint)MaxTicksPerCopy);
   for(int i = 0; i < copied; i++)
      if(g_ticks[i].time_msc == tick.time_msc)
         g_sent_at_last[index]++;
   if(g_sent_at_last[index] < 1)
      g_sent_at_last[index] = 1;
  }

void QtStreamSymbol(int index)
  {
   if(g_last_msc[index] <= 0)
     {
      QtStartSymbol(index);
      return;
     }
   string symbol = g_symbols[index];
   int copied = CopyTicks(symbol, g_ticks, COPY_TICKS_INFO, (ulong)g_last_msc[index], (uint)MaxTicksPerCopy);
   if(copied <= 0)
      return;                            // none new, or history not synchronised yet (-1)
   int skipped = 0;
   for(int i = 0; i < copied; i++)
     {
      long t = g_ticks[i].time_msc;
      if(t < g_last_msc[index])
         continue;
      if(t == g_last_msc[index])
        {
         if(skipped < g_sent_at_last[index])
           {
            skipped++;                   // sent by an earlier call
            continue;
           }
         g_sent_at_last[index]++;
        }
      else
        {
         g_last_msc[index] = t;
         g_sent_at_last[index] = 1;
        }
      QtEmitTick(index, g_ticks[i]);
     }
  }

//+------------------------------------------------------------------+
//| trading                                                          |
//+------------------------------------------------------------------+
ENUM_ORDER_TYPE_FILLING QtFillingFor(string symbol)
  {
   long modes = SymbolInfoInteger(symbol, SYMBOL_FILLING_MODE);
   if((modes & SYMBOL_FILLING_FOK) != 0)
      return ORDER_FILLING_FOK;
   if((modes & SYMBOL_FILLING_IOC) != 0)
      return ORDER_FILLING_IOC;
   return ORDER_FILLING_RETURN;
  }

//--- a deal or SL/TP change that was carried out. TRADE_RETCODE_PLACED is not:
//--- the order waits (exchange execution) and may fill later, so it goes back
//--- as a failure with its code and the daemon settles it from the positions.
bool QtRetcodeOk(uint retcode)
  {
   return retcode == TRADE_RETCODE_DONE || retcode == TRADE_RETCODE_DONE_PARTIAL;
  }

//--- the ticket of the position an open went into: on a hedging account the
//--- position's ticket is its opening order's; on netting and exchange
//--- accounts the deal joins the symbol's one position, which has its own
long QtOpenedPositionTicket(string symbol, MqlTradeResult &result)
  {
   if(AccountInfoInteger(ACCOUNT_MARGIN_MODE) != ACCOUNT_MARGIN_MODE_RETAIL_HEDGING && PositionSelect(symbol))
      return PositionGetInteger(POSITION_TICKET);
   return (long)result.order;
  }

//--- the failure reply of a trade request: retcode, or GetLastError() when the
//--- request never reached the server
string QtTradeFailure(string id, bool sent, MqlTradeResult &result, int last_error)
  {
   int code = (int)result.retcode;
   if(code == 0)
      code = last_error;
   string message = QtMt5RetcodeText(code);
   if(result.comment != "")
      message = message + " (" + result.comment + ")";
   if(!sent && result.retcode == 0)
      message = "OrderSend failed: " + message;
   return QtReplyError(id, code, message);
  }

string QtReplyIfOpened(QtCommand &cmd)
  {
   string id = cmd.id;
   string comment = "QT-" + id;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);  // also selects it; 0 = failed
      if(ticket == 0 || PositionGetString(POSITION_COMMENT) != comment)
         continue;
      string symbol = PositionGetString(POSITION_SYMBOL);
      return QtReplyTrade(id, (long)ticket, PositionGetDouble(POSITION_PRICE_OPEN), (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS),
                          PositionGetDouble(POSITION_VOLUME), QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP)),
                          QtServerMscToUtc(g_clock, PositionGetInteger(POSITION_TIME_MSC)));
     }
   return "";
  }

string QtExecuteOpen(QtCommand &cmd)
  {
   string symbol = cmd.symbol;
   ResetLastError();
   if(!SymbolSelect(symbol, true))
     {
      int err = GetLastError();
      if(err == 0)
         err = 4301;                     // ERR_MARKET_UNKNOWN_SYMBOL
      return QtReplyError(cmd.id, err, QtMt5RetcodeText(err) + ": " + symbol);
     }
   MqlTick tick;
   if(!SymbolInfoTick(symbol, tick) || tick.bid <= 0.0 || tick.ask <= 0.0)
      return QtReplyError(cmd.id, TRADE_RETCODE_PRICE_OFF, QtMt5RetcodeText(TRADE_RETCODE_PRICE_OFF));
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
   bool is_buy = (cmd.side == "buy");
   long magic = cmd.magic;
   if(magic <= 0)
      magic = MagicNumber;

   MqlTradeRequest request;
   MqlTradeResult result;
   ZeroMemory(request);
   ZeroMemory(result);
   request.action = TRADE_ACTION_DEAL;
   request.symbol = symbol;
   double lots = 0.0;
   if(!QtLotsForSymbol(symbol, cmd.lots, lots))
      return QtReplyError(cmd.id, TRADE_RETCODE_INVALID_VOLUME,
                          QtMt5RetcodeText(TRADE_RETCODE_INVALID_VOLUME) + ": " + QtLotsText(symbol, cmd.lots));
   request.volume = lots;
   if(is_buy)
     {
      request.type = ORDER_TYPE_BUY;
      request.price = tick.ask;
     }
   else
     {
      request.type = ORDER_TYPE_SELL;
      request.price = tick.bid;
     }
   request.sl = QtStopPrice(symbol, cmd.sl);
   request.tp = QtStopPrice(symbol, cmd.tp);
   request.deviation = (ulong)cmd.deviation_points;
   request.magic = (ulong)magic;
   request.comment = "QT-" + cmd.id;
   request.type_filling = QtFillingFor(symbol);
   request.type_time = ORDER_TIME_GTC;

   ResetLastError();
   bool sent = OrderSend(request, result);
   int last_error = GetLastError();
   if(!sent || !QtRetcodeOk(result.retcode))
      return QtTradeFailure(cmd.id, sent, result, last_error);

   long ticket = QtOpenedPositionTicket(symbol, result);
   double price = result.price;
   long time_msc = QtNowUtcMsc();
   if(result.deal > 0 && HistoryDealSelect(result.deal))
     {
      if(price <= 0.0)
         price = HistoryDealGetDouble(result.deal, DEAL_PRICE);
      long deal_msc = HistoryDealGetInteger(result.deal, DEAL_TIME_MSC);
      if(deal_msc > 0)
         time_msc = QtServerMscToUtc(g_clock, deal_msc);
     }
   if(price <= 0.0)
      price = request.price;
   return QtReplyTrade(cmd.id, ticket, price, digits, result.volume, lot_digits, time_msc);
  }

//--- what an earlier try of close `id` did to a position: its deals are those whose comment, or whose
//--- order's comment, is "QT-<id>" (a broker may rewrite a deal's comment; the order keeps the request's).
//--- 1 = it ran (volume, volume-weighted price, the last deal's server time and the symbol set), 0 = no
//--- such deal, -1 = the position's history could not be selected.
int QtEarlierClose(long position_id, string id, double &volume, double &price, long &deal_msc, string &symbol)
  {
   string comment = "QT-" + id;
   double value = 0.0;
   volume = 0.0;
   price = 0.0;
   deal_msc = 0;
   symbol = "";
   if(!HistorySelectByPosition(position_id))
      return -1;
   int deals = HistoryDealsTotal();
   for(int i = 0; i < deals; i++)
     {
      ulong deal = HistoryDealGetTicket(i);
      if(deal == 0)
         continue;
      ulong order = (ulong)HistoryDealGetInteger(deal, DEAL_ORDER);
      if(HistoryDealGetString(deal, DEAL_COMMENT) != comment && (order == 0 || HistoryOrderGetString(order, ORDER_COMMENT) != comment))
         continue;
      double lots = HistoryDealGetDouble(deal, DEAL_VOLUME);
      volume += lots;
      value += lots * HistoryDealGetDouble(deal, DEAL_PRICE);
      symbol = HistoryDealGetString(deal, DEAL_SYMBOL);
      long msc = HistoryDealGetInteger(deal, DEAL_TIME_MSC);
      if(msc > deal_msc)
         deal_msc = msc;
     }
   if(volume <= 0.0)
      return 0;
   price = value / volume;
   return 1;
  }

//--- the reply to a close that an earlier try carried out, from that try's deals; "" when there was
//--- none, or when the history could not be read (history_error says why, else 0)
string QtReplyIfClosed(QtCommand &cmd, long position_id, int &history_error)
  {
   double volume = 0.0;
   double price = 0.0;
   long deal_msc = 0;
   string symbol = "";
   history_error = 0;
   ResetLastError();
   int found = QtEarlierClose(position_id, cmd.id, volume, price, deal_msc, symbol);
   if(found < 0)
     {
      history_error = GetLastError();
      if(history_error == 0)
         history_error = 4755;              // ERR_TRADE_DEAL_NOT_FOUND
      return "";
     }
   if(found == 0)
      return "";
   long time_msc = QtNowUtcMsc();
   if(deal_msc > 0)
      time_msc = QtServerMscToUtc(g_clock, deal_msc);
   return QtReplyTrade(cmd.id, cmd.ticket, price, (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS), volume,
                       QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP)), time_msc);
  }

string QtExecuteClose(QtCommand &cmd)
  {
   int history_error = 0;
   ResetLastError();
   if(!PositionSelectByTicket((ulong)cmd.ticket))
     {
      int err = GetLastError();
      if(err == 0)
         err = 4753;                        // ERR_TRADE_POSITION_NOT_FOUND
      // Closed in full by an earlier try of this id, whose reply went with an earlier run's cache: that
      // try's deal is the answer. A position's identifier is the ticket of the order that opened it, the
      // ticket the daemon holds. Found nothing: 4753, which the daemon settles from the positions.
      string closed = QtReplyIfClosed(cmd, cmd.ticket, history_error);
      if(closed != "")
         return closed;
      return QtReplyError(cmd.id, err, QtMt5RetcodeText(err) + ": ticket " + IntegerToString(cmd.ticket));
     }
   string symbol = PositionGetString(POSITION_SYMBOL);
   double volume = PositionGetDouble(POSITION_VOLUME);
   bool is_buy = (PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY);
   long magic = PositionGetInteger(POSITION_MAGIC);
   long position_id = PositionGetInteger(POSITION_IDENTIFIER);
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   int lot_digits = QtStepDigits(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP));
   // A retried close whose first try ran in an earlier run of this EA (re-attached, recompiled, the
   // terminal restarted: the reply cache went with it). MT5 keeps the ticket on a partial close, so the
   // position is still there and closing "lots" again would take what the trader kept. That try's deal
   // (comment QT-<id>) is the record that survives. The position's size is not one: a manual partial
   // close, another EA or a netting deal shrinks it too, and refusing then (65601) had the daemon settle
   // as filled a close that never ran. With no such deal the close runs, capped at what the position holds.
   string earlier = QtReplyIfClosed(cmd, position_id, history_error);
   if(earlier != "")
      return earlier;
   if(history_error != 0)                   // whether an earlier try ran is not known: nothing sent, a plain failure
      return QtReplyError(cmd.id, history_error, QtMt5RetcodeText(history_error) + ": the history of ticket " +
                          IntegerToString(cmd.ticket) + " could not be read; the close was not sent");
   double lots = volume;
   if(cmd.lots > 0.0 && cmd.lots < volume && !QtLotsForSymbol(symbol, cmd.lots, lots))
      return QtReplyError(cmd.id, TRADE_RETCODE_INVALID_VOLUME,
                          QtMt5RetcodeText(TRADE_RETCODE_INVALID_VOLUME) + ": " + QtLotsText(symbol, cmd.lots));
   MqlTick tick;
   if(!SymbolInfoTick(symbol, tick) || tick.bid <= 0.0 || tick.ask <= 0.0)
      return QtReplyError(cmd.id, TRADE_RETCODE_PRICE_OFF, QtMt5RetcodeText(TRADE_RETCODE_PRICE_OFF));

   MqlTradeRequest request;
   MqlTradeResult result;
   ZeroMemory(request);
   ZeroMemory(result);
   request.action = TRADE_ACTION_DEAL;
   request.position = (ulong)cmd.ticket;
   request.symbol = symbol;
   request.volume = lots;
   if(is_buy)
     {
      request.type = ORDER_TYPE_SELL;       // the opposite deal closes
      request.price = tick.bid;
     }
   else
     {
      request.type = ORDER_TYPE_BUY;
      request.price = tick.ask;
     }
   request.deviation = (ulong)CloseDeviationPoints;
   request.magic = (ulong)magic;
   request.comment = "QT-" + cmd.id;
   request.type_filling = QtFillingFor(symbol);
   request.type_time = ORDER_TIME_GTC;

   ResetLastError();
   bool sent = OrderSend(request, result);
   int last_error = GetLastError();
   if(!sent || !QtRetcodeOk(result.retcode))
      return QtTradeFailure(cmd.id, sent, result, last_error);
   double price = result.price;
   long time_msc = QtNowUtcMsc();
   if(result.deal > 0 && HistoryDealSelect(result.deal))
     {
      if(price <= 0.0)
         price = HistoryDealGetDouble(result.deal, DEAL_PRICE);
      long deal_msc = HistoryDealGetInteger(result.deal, DEAL_TIME_MSC);
      if(deal_msc > 0)
         time_msc = QtServerMscToUtc(g_clock, deal_msc);
     }
   if(price <= 0.0)
      price = request.price;
   return QtReplyTrade(cmd.id, cmd.ticket, price, digits, result.volume, lot_digits, time_msc);
  }

string QtExecuteModify(QtCommand &cmd)
  {
   ResetLastError();
   if(!PositionSelectByTicket((ulong)cmd.ticket))
     {
      int err = GetLastError();
      if(err == 0)
         err = 4753;
      return QtReplyError(cmd.id, err, QtMt5RetcodeText(err) + ": ticket " + IntegerToString(cmd.ticket));
     }
   string symbol = PositionGetString(POSITION_SYMBOL);
   long magic = PositionGetInteger(POSITION_MAGIC);

   MqlTradeRequest request;
   MqlTradeResult result;
   ZeroMemory(request);
   ZeroMemory(result);
   request.action = TRADE_ACTION_SLTP;
   request.position = (ulong)cmd.ticket;
   request.symbol = symbol;
   request.sl = QtStopPrice(symbol, cmd.sl);
   request.tp = QtStopPrice(symbol, cmd.tp);
   request.magic = (ulong)magic;

   ResetLastError();
   bool sent = OrderSend(request, result);
   int last_error = GetLastError();
   if(result.retcode == TRADE_RETCODE_NO_CHANGES)
      return QtReplyModified(cmd.id, cmd.ticket, QtNowUtcMsc());  // already as asked
   if(!sent || !QtRetcodeOk(result.retcode))
      return QtTradeFailure(cmd.id, sent, result, last_error);
   return QtReplyModified(cmd.id, cmd.ticket, QtNowUtcMsc());
  }

string QtExecuteTrade(QtCommand &cmd)
  {
   if(!TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) || !MQLInfoInteger(MQL_TRADE_ALLOWED))
      return QtReplyError(cmd.id, TRADE_RETCODE_CLIENT_DISABLES_AT, QtMt5RetcodeText(TRADE_RETCODE_CLIENT_DISABLES_AT));
   if(cmd.type == "open")
      return QtExecuteOpen(cmd);
   if(cmd.type == "close")
      return QtExecuteClose(cmd);
   return QtExecuteModify(cmd);
  }

//+------------------------------------------------------------------+
//| event handlers                                                   |
//+------------------------------------------------------------------+
int OnInit()
  {
   if(MaxTicksPerCopy < 1)
     {
      Print("QuantumTrader: MaxTicksPerCopy must be >= 1");
      return INIT_PARAMETERS_INCORRECT;
     }
   int result = QtBridgeStart("MT5", TimeTradeServer());
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
   QtFlush();
   QtServeCommands();
   if(UtcOffsetAuto)
      QtClockUpdate(g_clock, TimeTradeServer());
   for(int i = 0; i < g_symbol_count; i++)
      QtStreamSymbol(i);
   QtCheckState();
   QtFlush();
  }

//--- the chart symbol's ticks at once (the others on the timer)
void OnTick()
  {
   int index = QtSymbolIndex(Symbol());
   if(index >= 0)
      QtStreamSymbol(index);
  }
//+------------------------------------------------------------------+
