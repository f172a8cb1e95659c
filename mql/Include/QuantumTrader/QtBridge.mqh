//+------------------------------------------------------------------+
//| QtBridge.mqh - what the MT4 and the MT5 bridge do the same way    |
//|                                                                  |
//| One job: the platform-independent half of an EA: the sockets,    |
//| the symbol list, the outgoing queue, hello/heartbeat/account/bye,|
//| and serving commands from the REP socket (parse, answer a        |
//| repeated id from the cache, execute once). The EA supplies the   |
//| platform half through the four functions declared below, and    |
//| declares these inputs before including this file:                |
//|   EventsEndpoint, CommandBindEndpoint, CommandEndpointAnnounced, |
//|   TerminalId, SymbolList, HeartbeatSeconds, TimerMilliseconds,   |
//|   QueueCapacity, AccountMinIntervalMs, UtcOffsetAuto,            |
//|   UtcOffsetMinutes, ByeLingerMs.                                 |
//| Needs dingmaotu's mql-zmq (docs/mql.md).                         |
//+------------------------------------------------------------------+
#property strict

#include <Zmq/Zmq.mqh>
#include <QuantumTrader/QtJson.mqh>
#include <QuantumTrader/QtCommand.mqh>
#include <QuantumTrader/QtSeq.mqh>
#include <QuantumTrader/QtReplyCache.mqh>
#include <QuantumTrader/QtTime.mqh>
#include <QuantumTrader/QtErrors.mqh>
#include <QuantumTrader/QtQueue.mqh>
#include <QuantumTrader/QtEvents.mqh>
#include <QuantumTrader/QtWire.mqh>

//--- the platform half, implemented by each EA
string QtPositionsJson(string &key);     // the positions array; key: what counts as a change
string QtPositionsKey();                 // the key alone, cheaply
string QtExecuteTrade(QtCommand &cmd);   // open, close or modify -> the reply text
int    QtMoneyDigits();                  // decimals of the account currency (balance, profit...)
string QtReplyIfOpened(QtCommand &cmd);  // the reply for an open whose position exists already, else ""

//--- below, used before its definition
bool   QtSayHello();                     // the hello once the terminal's id is known

//--- event kinds of the queue (QtQueue.mqh)
#define QT_KIND_TICK      1
#define QT_KIND_ACCOUNT   2
#define QT_KIND_POSITIONS 3
#define QT_KIND_OTHER     4

//--- sockets: objects by value, closed by their destructors after OnDeinit;
//--- the context is shared by every EA of the terminal (mql-zmq's named handle)
Context g_context("QuantumTraderBridge");
Socket  g_push(g_context, ZMQ_PUSH);
Socket  g_rep(g_context, ZMQ_REP);

QtSeq        g_seq;
QtReplyCache g_cache;
QtClock      g_clock;
QtQueue      g_queue;
string       g_terminal = "";
string       g_hello_fields = "";
string       g_pending_reply = "";       // a reply the REP socket did not take yet
bool         g_connected = false;       // the hello went out, so OnDeinit says bye (false after it, or after a failed start)
bool         g_hello_due = false;       // started, but no hello yet: the account has not logged in (QtSayHello)
bool         g_bound = false;           // the REP socket is bound (kept across a re-initialisation)
string       g_push_endpoint = "";      // what g_push is connected to
string       g_rep_endpoint = "";       // the input g_rep was bound with
string       g_rep_bound_at = "";       // ... and the address it resolved to (unbind needs it)
bool         g_send_error_logged = false;
string       g_positions_key = "";
string       g_account_body = "";
ulong        g_last_account_us = 0;
ulong        g_last_heartbeat_us = 0;

//--- the streamed symbols and what was last sent for each
string       g_symbols[];
int          g_symbol_digits[];
long         g_last_msc[];               // server time (ms) of the last tick sent
int          g_sent_at_last[];           // MT5: ticks already sent that carry exactly g_last_msc
double       g_last_bid[];               // MT4: the last quote sent (only changes are sent)
double       g_last_ask[];
int          g_symbol_count = 0;

//+------------------------------------------------------------------+
//| text and symbols                                                 |
//+------------------------------------------------------------------+
string QtTrim(string text)
  {
   int start = 0;
   int stop = StringLen(text);
   while(start < stop && StringGetCharacter(text, start) <= ' ')
      start++;
   while(stop > start && StringGetCharacter(text, stop - 1) <= ' ')
      stop--;
   return StringSubstr(text, start, stop - start);
  }

void QtAddSymbol(string name)
  {
   if(!QtValidSymbol(name))
     {
      PrintFormat("QuantumTrader: symbol '%s' skipped: the wire allows 1-32 characters of [A-Za-z0-9._#+-]", name);
      return;
     }
   for(int i = 0; i < g_symbol_count; i++)
      if(g_symbols[i] == name)
         return;
   if(!SymbolSelect(name, true))
     {
      PrintFormat("QuantumTrader: symbol '%s' skipped: SymbolSelect failed, error %d", name, GetLastError());
      return;
     }
   int n = g_symbol_count + 1;
   if(ArrayResize(g_symbols, n) != n || ArrayResize(g_symbol_digits, n) != n || ArrayResize(g_last_msc, n) != n ||
      ArrayResize(g_sent_at_last, n) != n || ArrayResize(g_last_bid, n) != n || ArrayResize(g_last_ask, n) != n)
     {
      Print("QuantumTrader: out of memory for the symbol list");
      return;
     }
   g_symbols[g_symbol_count] = name;
   g_symbol_digits[g_symbol_count] = (int)SymbolInfoInteger(name, SYMBOL_DIGITS);
   g_last_msc[g_symbol_count] = 0;
   g_sent_at_last[g_symbol_count] = 0;
   g_last_bid[g_symbol_count] = 0.0;
   g_last_ask[g_symbol_count] = 0.0;
   g_symbol_count = n;
  }

//--- SymbolList (comma separated), or every Market Watch symbol when empty
void QtLoadSymbolList()
  {
   string list = QtTrim(SymbolList);
   if(list == "")
     {
      int total = SymbolsTotal(true);
      for(int i = 0; i < total; i++)
         QtAddSymbol(SymbolName(i, true));
      return;
     }
   string parts[];
   int count = StringSplit(list, ',', parts);
   for(int i = 0; i < count; i++)
     {
      string name = QtTrim(parts[i]);
      if(name != "")
         QtAddSymbol(name);
     }
  }

//--- the symbol list, each symbol keeping what was last sent for it. The terminal re-initialises an EA in
//--- place (a chart's symbol or period, new inputs) with its globals kept, as the reply cache is: a symbol
//--- streamed before goes on from its last sent tick (MT5 copies the ticks that arrived meanwhile, none
//--- lost and none sent twice; MT4 sends its quote only when changed). Only a symbol new to the list
//--- starts afresh with its current quote.
void QtLoadSymbols()
  {
   int kept = g_symbol_count;
   string kept_symbols[];
   long kept_msc[];
   int kept_sent[];
   double kept_bid[];
   double kept_ask[];
   if(ArrayResize(kept_symbols, kept) != kept || ArrayResize(kept_msc, kept) != kept || ArrayResize(kept_sent, kept) != kept ||
      ArrayResize(kept_bid, kept) != kept || ArrayResize(kept_ask, kept) != kept)
      kept = 0;                          // out of memory: every symbol starts afresh, as on a first start
   for(int i = 0; i < kept; i++)
     {
      kept_symbols[i] = g_symbols[i];
      kept_msc[i] = g_last_msc[i];
      kept_sent[i] = g_sent_at_last[i];
      kept_bid[i] = g_last_bid[i];
      kept_ask[i] = g_last_ask[i];
     }
   g_symbol_count = 0;
   QtLoadSymbolList();
   for(int i = 0; i < g_symbol_count; i++)
      for(int j = 0; j < kept; j++)
         if(kept_symbols[j] == g_symbols[i])
           {
            g_last_msc[i] = kept_msc[j];
            g_sent_at_last[i] = kept_sent[j];
            g_last_bid[i] = kept_bid[j];
            g_last_ask[i] = kept_ask[j];
            break;
           }
  }

int QtSymbolIndex(string name)
  {
   for(int i = 0; i < g_symbol_count; i++)
      if(g_symbols[i] == name)
         return i;
   return -1;
  }

//--- lots rounded down to the symbol's volume step (never up: the daemon sized
//--- them as a maximum); false when the result is not inside min..max
bool QtLotsForSymbol(string symbol, double requested, double &lots)
  {
   double step = SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP);
   double min_lots = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN);
   double max_lots = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX);
   lots = requested;
   if(step > 0.0)
      lots = MathFloor(requested / step + 1e-9) * step;   // 1e-9: 0.3 / 0.1 is 2.9999999999999996
   lots = NormalizeDouble(lots, QtStepDigits(step));
   if(lots <= 0.0)
      return false;
   if(min_lots > 0.0 && lots < min_lots - 1e-12)
      return false;
   if(max_lots > 0.0 && lots > max_lots + 1e-12)
      return false;
   return true;
  }

//--- a stop or take-profit as the broker takes it: on the symbol's tick grid, then to its digits. Some
//--- indices and futures move in ticks of several points (US30 in 1.0, a future in 0.25), and a stop off
//--- the grid is refused as invalid (MT4 130, MT5 10016) though it has the right digits. 0 (none) stays 0.
double QtStopPrice(string symbol, double price)
  {
   if(price <= 0.0)
      return 0.0;
   double tick = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_SIZE);
   if(tick > 0.0)
      price = MathRound(price / tick) * tick;
   return NormalizeDouble(price, (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS));
  }

//--- ,"specs":{...}: every streamed symbol's specs as the terminal has them now, for the hello and
//--- each heartbeat (a cross's tick value moves with its rate); the daemon sizes positions by them
string QtSpecsField()
  {
   string out = "";
   for(int i = 0; i < g_symbol_count; i++)
     {
      string s = g_symbols[i];
      if(i > 0)
         out = out + ",";
      out = out + QtSymbolSpec(s, SymbolInfoDouble(s, SYMBOL_TRADE_CONTRACT_SIZE), SymbolInfoDouble(s, SYMBOL_TRADE_TICK_SIZE),
                               SymbolInfoDouble(s, SYMBOL_TRADE_TICK_VALUE), SymbolInfoDouble(s, SYMBOL_VOLUME_MIN),
                               SymbolInfoDouble(s, SYMBOL_VOLUME_STEP), SymbolInfoDouble(s, SYMBOL_VOLUME_MAX));
     }
   return ",\"specs\":{" + out + "}";
  }

//--- the hello fields as a hello or heartbeat carries them: the fixed ones, the specs of now and the run
string QtHelloFieldsNow()
  {
   return g_hello_fields + QtSpecsField() + ",\"run\":" + QtJsonInt(g_seq.run);
  }

string QtLotsText(string symbol, double requested)
  {
   return "lots " + DoubleToString(requested, 8) + " for " + symbol + " (min " +
          DoubleToString(SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN), 8) + ", max " +
          DoubleToString(SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX), 8) + ", step " +
          DoubleToString(SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP), 8) + ")";
  }

//+------------------------------------------------------------------+
//| events out                                                       |
//+------------------------------------------------------------------+
void QtFlush()
  {
   while(!QtQueueEmpty(g_queue))
     {
      int sent = QtSendText(g_push, QtQueuePeek(g_queue));
      if(sent == 0)
         return;                         // would block: retried on the next timer event
      QtQueuePopHead(g_queue, sent < 0); // refused for good: dropped and counted, never retried forever
     }
  }

void QtEmit(int kind, string key, string text)
  {
   QtQueuePush(g_queue, kind, key, text);
   QtFlush();
  }

//--- a tick of symbol index; crossed or empty quotes are never sent (the wire refuses them)
void QtEmitQuote(int index, double bid, double ask, long server_msc, long volume)
  {
   if(bid <= 0.0 || ask <= 0.0 || ask < bid)
      return;
   if(g_hello_due && !QtSayHello())
      return;                            // no terminal id yet: the daemon would refuse it
   string symbol = g_symbols[index];
   QtEmit(QT_KIND_TICK, symbol, QtTickEvent(g_terminal, QtSeqTake(g_seq), symbol, bid, ask, g_symbol_digits[index],
                                             QtServerMscToUtc(g_clock, server_msc), volume));
  }

string QtAccountFieldsNow()
  {
   return QtAccountFields(AccountInfoInteger(ACCOUNT_LOGIN), AccountInfoString(ACCOUNT_CURRENCY),
                          AccountInfoDouble(ACCOUNT_BALANCE), AccountInfoDouble(ACCOUNT_EQUITY),
                          AccountInfoDouble(ACCOUNT_MARGIN), AccountInfoDouble(ACCOUNT_MARGIN_FREE),
                          AccountInfoInteger(ACCOUNT_LEVERAGE), AccountInfoString(ACCOUNT_NAME),
                          AccountInfoString(ACCOUNT_SERVER), QtMoneyDigits());
  }

//--- the account event of body (QtAccountFieldsNow), which becomes what later checks compare with
//--- a terminal not logged in has no account: its zeros would be the day's starting equity, its empty
//--- positions would settle the daemon's unknown orders, and a trade it served would fail and be cached
bool QtLoggedIn()
  {
   return AccountInfoInteger(ACCOUNT_LOGIN) != 0;
  }

void QtSendAccountBody(string body)
  {
   if(!QtLoggedIn())
      return;
   g_account_body = body;
   g_last_account_us = GetMicrosecondCount();
   QtEmit(QT_KIND_ACCOUNT, "", QtAccountEvent(g_terminal, QtSeqTake(g_seq), g_account_body, QtNowUtcMsc()));
  }

void QtSendAccount()
  {
   QtSendAccountBody(QtAccountFieldsNow());
  }

void QtSendPositions()
  {
   if(!QtLoggedIn())
      return;
   string key = "";
   string positions = QtPositionsJson(key);
   g_positions_key = key;
   QtEmit(QT_KIND_POSITIONS, "", QtWithInt(QtPositionsEvent(g_terminal, QtSeqTake(g_seq), positions, QtNowUtcMsc()), "run", g_seq.run));
  }

//--- heartbeat (with the hello fields, docs/protocol.md), then account and positions
void QtSendHeartbeat()
  {
   g_last_heartbeat_us = GetMicrosecondCount();
   QtEmit(QT_KIND_OTHER, "", QtHeartbeatEvent(g_terminal, QtSeqTake(g_seq), g_queue.dropped, QtHelloFieldsNow(),
                                                QtNowUtcMsc()));
   QtSendAccount();
   QtSendPositions();
  }

//--- positions on any change, account on change (at most every AccountMinIntervalMs), heartbeats
void QtCheckState()
  {
   if(g_hello_due && !QtSayHello())
      return;
   if(QtPositionsKey() != g_positions_key)
      QtSendPositions();
   ulong now_us = GetMicrosecondCount();
   if(now_us - g_last_account_us >= (ulong)AccountMinIntervalMs * 1000)
     {
      string body = QtAccountFieldsNow();  // built once: the comparison's text is the event's
      if(body != g_account_body)
         QtSendAccountBody(body);
     }
   if(now_us - g_last_heartbeat_us >= (ulong)HeartbeatSeconds * 1000000)
      QtSendHeartbeat();
  }

//+------------------------------------------------------------------+
//| commands in                                                      |
//+------------------------------------------------------------------+
string QtExecute(QtCommand &cmd)
  {
   if(cmd.type == "ping")
      return QtReplyPing(cmd.id, QtNowUtcMsc());
   if(cmd.type == "snapshot")
     {
      string key = "";
      string positions = QtPositionsJson(key);
      return QtReplySnapshot(cmd.id, QtAccountFieldsNow(), positions, QtNowUtcMsc());
     }
   // A trade meant for another account: the trader switched this terminal's account (demo to live, say)
   // while the daemon was still retrying it. Checked before anything, the open's look-up included.
   long login = AccountInfoInteger(ACCOUNT_LOGIN);
   if(cmd.has_login && cmd.login != login)
      return QtReplyError(cmd.id, QT_ERR_WRONG_ACCOUNT, "the command was meant for account " + IntegerToString(cmd.login) +
                          ", the terminal is logged in to " + IntegerToString(login) + ": not executed");
   if(cmd.type == "open")
     {
      // An id the terminal holds a position for was executed by an earlier run of this EA whose
      // reply went with its reply cache (the EA re-attached, the terminal restarted): the daemon's
      // retry must not open a second position. The broker keeps the comment QT-<id>, so the
      // position itself is the durable record the cache is not.
      string earlier = QtReplyIfOpened(cmd);
      if(earlier != "")
         return earlier;
     }
   string reply = QtExecuteTrade(cmd);
   // a trade changes positions and account: tell the daemon now, not at the next check
   QtSendPositions();
   QtSendAccount();
   return reply;
  }

//--- the reply to one command text: from the cache when its id was seen before
string QtHandleCommand(string text)
  {
   QtCommand cmd;
   int code = 0;
   string err = "";
   if(!QtParseCommand(text, cmd, code, err))
     {
      string earlier = QtReplyCacheFind(g_cache, cmd.id);
      if(earlier != "")
         return earlier;
      return QtReplyError(cmd.id, code, "invalid command: " + err);
     }
   string cached = QtReplyCacheFind(g_cache, cmd.id);
   if(cached != "")
      return cached;                     // a retry (Lazy Pirate): never execute twice
   long before = QtSeqLast(g_seq);       // the last event built before the command runs (cached with the reply)
   string reply = QtWithEventSeq(QtExecute(cmd), before, g_seq.run);
   if(cmd.type != "ping" && cmd.type != "snapshot")
      QtReplyCachePut(g_cache, cmd.id, reply);  // only trades must never run twice; reads keep the slots free
   return reply;
  }

//--- drain every waiting command. REP alternates recv and send, so a reply
//--- the socket did not take is sent before the next recv.
void QtServeCommands()
  {
   // Not before the login (with or without the hello): a daemon still retrying a command to this
   // endpoint (the terminal restarted) gets it served after the login, when the positions an earlier
   // run opened are there for QtReplyIfOpened; served now, the open would fail and be cached.
   if(!g_bound || !QtLoggedIn())
      return;
   while(true)
     {
      if(g_pending_reply != "")
        {
         int sent = QtSendText(g_rep, g_pending_reply);
         if(sent == 0)
            return;                      // would block: the same reply goes first next time
         if(sent < 0 && !g_send_error_logged)
           {
            PrintFormat("QuantumTrader: a reply could not be sent (zmq error %d); the daemon will retry",
                        Zmq::errorNumber());
            g_send_error_logged = true;
           }
         g_pending_reply = "";
        }
      string text = "";
      bool malformed = false;
      if(!QtReceiveText(g_rep, text, malformed))
         return;
      if(malformed)
         g_pending_reply = QtReplyError("0", -1, "invalid command: a command must be one frame of UTF-8 text without NUL bytes");
      else
         g_pending_reply = QtHandleCommand(text);
     }
  }

//+------------------------------------------------------------------+
//| start and stop                                                   |
//+------------------------------------------------------------------+
//--- inputs, state, sockets, timer and hello; INIT_SUCCEEDED or why not
int QtBridgeStart(string platform, datetime server_now)
  {
   if(HeartbeatSeconds < 1 || HeartbeatSeconds > 3600 || TimerMilliseconds < 1 || QueueCapacity < 16 || AccountMinIntervalMs < 0 ||
      ByeLingerMs < 0)
     {
      Print("QuantumTrader: HeartbeatSeconds must be 1..3600 (the daemon refuses a hello outside), TimerMilliseconds >= 1, QueueCapacity >= 16, " +
            "AccountMinIntervalMs and ByeLingerMs >= 0");
      return INIT_PARAMETERS_INCORRECT;
     }
   // The terminal re-initialises an EA in place (OnDeinit then OnInit, global
   // variables kept) when the chart's symbol or period or the inputs change.
   // So the reply cache is never reset here (a retry arriving across a
   // re-initialisation must still find its reply; globals start empty), the
   // queue is kept unless its size changed (events still waiting, a bye
   // among them, go out before the new hello), and the sockets below are
   // kept when their endpoints did not change.
   QtClockInit(g_clock, UtcOffsetAuto, UtcOffsetMinutes);
   QtClockUpdate(g_clock, server_now);
   if(g_queue.capacity != QueueCapacity)
      QtQueueInit(g_queue, QueueCapacity);

   QtLoadSymbols();
   g_hello_fields = QtHelloFields(platform, CommandEndpointAnnounced, g_symbols, g_symbol_count, HeartbeatSeconds);

   g_push.setLinger(0);
   g_rep.setLinger(0);
   // ZMQ_IMMEDIATE stays off: the pipe exists from connect() on, so the events
   // of the first milliseconds (before TCP is up) wait in it instead of being
   // coalesced in our queue. With the daemon down, ZeroMQ holds QueueCapacity
   // events, then sends would block and our queue coalesces the rest.
   g_push.setSendHighWaterMark(QueueCapacity);
   g_rep.setMaxMessageSize(65536);     // commands are a few hundred bytes; anything huge is not ours
   if(g_push_endpoint != EventsEndpoint)
     {
      if(g_push_endpoint != "")
         g_push.disconnect(g_push_endpoint);
      g_push_endpoint = "";
      if(!g_push.connect(EventsEndpoint))
        {
         PrintFormat("QuantumTrader: cannot connect the events socket to %s", EventsEndpoint);
         return INIT_FAILED;
        }
      g_push_endpoint = EventsEndpoint;
     }
   if(!g_bound || g_rep_endpoint != CommandBindEndpoint)
     {
      if(g_bound)
         g_rep.unbind(g_rep_bound_at);  // a wildcard bind is unbound by the address it resolved to
      g_bound = g_rep.bind(CommandBindEndpoint);
      if(!g_bound)
        {
         g_rep_endpoint = "";
         PrintFormat("QuantumTrader: cannot bind the command socket to %s (port in use by another terminal?)",
                     CommandBindEndpoint);
         return INIT_FAILED;
        }
      g_rep_endpoint = CommandBindEndpoint;
      g_rep_bound_at = CommandBindEndpoint;
      string resolved = "";
      if(g_rep.getLastEndpoint(resolved) && resolved != "")
         g_rep_bound_at = resolved;
     }
   if(!EventSetMillisecondTimer(TimerMilliseconds))
     {
      PrintFormat("QuantumTrader: EventSetMillisecondTimer failed, error %d", GetLastError());
      return INIT_FAILED;
     }
   g_hello_due = true;  // only now: a start that failed above says nothing (QtSayHello)
   if(!QtSayHello())
      Print("QuantumTrader: no account has logged in yet; the hello (and every event) waits for the login. " +
            "Set TerminalId to name this terminal now.");
   return INIT_SUCCEEDED;
  }

//--- the terminal's id on the wire: the TerminalId input, else <login>@<server>; "" while no
//--- account has logged in. A terminal started before its login reads login 0, and "0@" would
//--- be every such terminal's id, kept after the login until the EA restarted.
string QtTerminalIdNow()
  {
   string id = QtTrim(TerminalId);
   if(id == "")
     {
      long login = AccountInfoInteger(ACCOUNT_LOGIN);
      if(login == 0)
         return "";
      id = IntegerToString(login) + "@" + AccountInfoString(ACCOUNT_SERVER);
     }
   if(StringLen(id) > 64)
      id = StringSubstr(id, 0, 64);
   return id;
  }

//--- the hello that QtBridgeStart owes, with account and positions, once the id is known; false
//--- while it is not (tried again on every tick and timer event, so no restart is needed)
bool QtSayHello()
  {
   if(!g_hello_due)
      return true;
   string id = QtTerminalIdNow();
   if(id == "")
      return false;
   g_terminal = id;
   g_hello_due = false;
   // Only now may OnDeinit say bye: a start that failed (a second copy of the EA whose command port
   // is taken, under the same default terminal id) must not say it for the copy that works, which
   // the daemon would take as gone and stop trading with.
   g_connected = true;
   QtSeqReset(g_seq, QtNowUtcMsc());  // here, not earlier: a bye from a failed re-initialisation keeps the old count
   QtEmit(QT_KIND_OTHER, "", QtHelloEvent(g_terminal, QtSeqTake(g_seq), QtHelloFieldsNow(), QtNowUtcMsc()));
   QtSendAccount();
   QtSendPositions();
   g_last_heartbeat_us = GetMicrosecondCount();
   PrintFormat("QuantumTrader: terminal %s, %d symbols, events -> %s, commands on %s",
               g_terminal, g_symbol_count, EventsEndpoint, CommandBindEndpoint);
   return true;
  }

string QtReasonText(int reason)
  {
   switch(reason)
     {
      case REASON_PROGRAM:     return "expert removed by ExpertRemove";
      case REASON_REMOVE:      return "expert removed from chart";
      case REASON_RECOMPILE:   return "expert recompiled";
      case REASON_CHARTCHANGE: return "chart symbol or period changed";
      case REASON_CHARTCLOSE:  return "chart closed";
      case REASON_PARAMETERS:  return "inputs changed";
      case REASON_ACCOUNT:     return "account changed";
      case REASON_TEMPLATE:    return "template applied";
      case REASON_INITFAILED:  return "initialization failed";
      case REASON_CLOSE:       return "terminal closed";
     }
   return "deinit reason " + IntegerToString(reason);
  }

//--- bye. The sockets stay open: when the EA is unloaded their destructors
//--- close them after OnDeinit; when it is re-initialised in place, the next
//--- OnInit reuses them (unbinding here and binding again raced with the
//--- port's release and failed). Linger is 0 while running; for the bye alone
//--- it is ByeLingerMs, so the close waits at most that long for the bye (and
//--- anything still queued) to leave, even when the daemon is absent.
void QtBridgeStop(int reason)
  {
   EventKillTimer();
   // A chart's symbol or period change re-initialises the EA in place with the same inputs: the
   // same terminal, the same symbols, a hello in milliseconds. A bye would release its symbols
   // meanwhile, and another terminal's tick would take their feature/signal series over for good.
   // Should the new OnInit fail, its OnDeinit says the bye (g_connected stays true until then).
   if(reason == REASON_CHARTCHANGE)
      return;
   // A re-initialisation (new inputs) that failed after its OnInit set linger 0 has no bye of its
   // own to say, but the previous OnDeinit's bye (and anything before it) still gets ByeLingerMs.
   if(!g_connected && reason != REASON_INITFAILED)
      return;
   g_push.setLinger(ByeLingerMs);
   if(g_connected)
     {
      QtEmit(QT_KIND_OTHER, "", QtByeEvent(g_terminal, QtSeqTake(g_seq), QtReasonText(reason), QtNowUtcMsc()));
      g_connected = false;
     }
   else
      QtFlush();
  }
//+------------------------------------------------------------------+
