//+------------------------------------------------------------------+
//| QtErrors.mqh - texts for the terminals' own error codes          |
//|                                                                  |
//| One job: a short English text for an error code, for the         |
//| "message" of a failed reply. The code itself is always the       |
//| terminal's own: GetLastError() on MT4, MqlTradeResult.retcode    |
//| (or GetLastError() when no retcode was set) on MT5. Texts follow |
//| the MQL4/MQL5 documentation of the codes (docs.mql4.com          |
//| "Trade server return codes" / "Runtime errors", mql5.com "Trade  |
//| Server Return Codes" / "Runtime Errors").                        |
//+------------------------------------------------------------------+
#property strict

//--- Ours, in MQL5's range for user errors: a close refused because its position already holds less
//--- than the position_lots it was asked against (quantumtrader/protocol.py CLOSE_ALREADY_RAN). The paper
//--- terminal refuses so; the MT5 EA answers a retried close from its history instead (docs/mql.md)
#define QT_ERR_CLOSE_ALREADY_RAN 65601
//--- a trade command meant for another account than the one logged in now (quantumtrader/protocol.py WRONG_ACCOUNT)
#define QT_ERR_WRONG_ACCOUNT 65602

//--- MT4: trade server return codes (0-150) and the runtime errors the
//--- trade functions set (4000+)
string QtMt4ErrorText(int code)
  {
   switch(code)
     {
      case 0:    return "no error";
      case 1:    return "no error, but the result is unknown (nothing changed)";
      case 2:    return "common error";
      case 3:    return "invalid trade parameters";
      case 4:    return "trade server is busy";
      case 5:    return "old version of the client terminal";
      case 6:    return "no connection with trade server";
      case 7:    return "not enough rights";
      case 8:    return "too frequent requests";
      case 9:    return "malfunctional trade operation";
      case 64:   return "account disabled";
      case 65:   return "invalid account";
      case 128:  return "trade timeout";
      case 129:  return "invalid price";
      case 130:  return "invalid stops";
      case 131:  return "invalid trade volume";
      case 132:  return "market is closed";
      case 133:  return "trade is disabled";
      case 134:  return "not enough money";
      case 135:  return "price changed";
      case 136:  return "off quotes";
      case 137:  return "broker is busy";
      case 138:  return "requote";
      case 139:  return "order is locked";
      case 140:  return "long positions only allowed";
      case 141:  return "too many requests";
      case 145:  return "modification denied because order is too close to market";
      case 146:  return "trade context is busy";
      case 147:  return "expirations are denied by broker";
      case 148:  return "the amount of open and pending orders has reached the limit set by the broker";
      case 149:  return "an attempt to open an order opposite to the existing one when hedging is disabled";
      case 150:  return "an attempt to close an order contravening the FIFO rule";
      case 4051: return "invalid function parameter value";
      case 4105: return "no order selected";
      case 4106: return "unknown symbol";
      case 4107: return "invalid price parameter for trade function";
      case 4108: return "invalid ticket";
      case 4109: return "trade is not allowed in the expert properties";
      case 4110: return "longs are not allowed in the expert properties";
      case 4111: return "shorts are not allowed in the expert properties";
      case 4112: return "automated trading disabled by trade server";
     }
   return "error " + IntegerToString(code);
  }

//--- MT5: trade server return codes (MqlTradeResult.retcode) and the runtime
//--- errors of the trade functions
string QtMt5RetcodeText(int code)
  {
   switch(code)
     {
      case 10004: return "requote";
      case 10006: return "request rejected";
      case 10007: return "request canceled by trader";
      case 10008: return "order placed";
      case 10009: return "request completed";
      case 10010: return "only part of the request was completed";
      case 10011: return "request processing error";
      case 10012: return "request canceled by timeout";
      case 10013: return "invalid request";
      case 10014: return "invalid volume in the request";
      case 10015: return "invalid price in the request";
      case 10016: return "invalid stops in the request";
      case 10017: return "trade is disabled";
      case 10018: return "market is closed";
      case 10019: return "there is not enough money to complete the request";
      case 10020: return "prices changed";
      case 10021: return "there are no quotes to process the request";
      case 10022: return "invalid order expiration date in the request";
      case 10023: return "order state changed";
      case 10024: return "too frequent requests";
      case 10025: return "no changes in request";
      case 10026: return "autotrading disabled by server";
      case 10027: return "autotrading disabled by client terminal";
      case 10028: return "request locked for processing";
      case 10029: return "order or position frozen";
      case 10030: return "invalid order filling type";
      case 10031: return "no connection with the trade server";
      case 10032: return "operation is allowed only for live accounts";
      case 10033: return "the number of pending orders has reached the limit";
      case 10034: return "the volume of orders and positions for the symbol has reached the limit";
      case 10035: return "incorrect or prohibited order type";
      case 10036: return "position with the specified identifier has already been closed";
      case 10038: return "a close volume exceeds the current position volume";
      case 10039: return "a close order already exists for a specified position";
      case 10040: return "the number of open positions has reached the limit";
      case 10041: return "the pending order activation request is rejected, the order is canceled";
      case 10042: return "only long positions are allowed";
      case 10043: return "only short positions are allowed";
      case 10044: return "only position closing is allowed";
      case 10045: return "position closing is allowed only by FIFO rule";
      case 10046: return "opposite positions on a single symbol are disabled";
      case 4301:  return "unknown symbol";
      case 4753:  return "position not found";
      case QT_ERR_CLOSE_ALREADY_RAN: return "the position is smaller than when the close was asked: an earlier try of this close ran";
      case QT_ERR_WRONG_ACCOUNT: return "the terminal is logged in to another account than the command was meant for: not executed";
      case 4752:  return "trading by Expert Advisors prohibited";
      case 4754:  return "order not found";
      case 4755:  return "deal not found";
      case 4756:  return "trade request sending failed";
     }
   return "error " + IntegerToString(code);
  }
//+------------------------------------------------------------------+
