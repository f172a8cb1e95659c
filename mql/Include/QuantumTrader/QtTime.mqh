//+------------------------------------------------------------------+
//| QtTime.mqh - broker server time to UTC milliseconds               |
//|                                                                  |
//| One job: every *_msc field on the wire is UTC milliseconds, but  |
//| MetaTrader stamps ticks and orders with the broker's server      |
//| time. The offset server - UTC is estimated as                    |
//|     round((server_now - TimeGMT()) / 15 min) * 15 min            |
//| where server_now is a fresh server time (MT5: TimeTradeServer(); |
//| MT4: TimeCurrent() right after a tick arrived, because MT4's     |
//| TimeCurrent() is the time of the last tick and stands still      |
//| while the market is closed). Rounding to 15 minutes absorbs the  |
//| delay of the last tick; real server offsets are whole quarter    |
//| hours. TimeGMT() is the computer's clock: keep the VPS clock     |
//| synchronised (NTP). An input can fix the offset instead.         |
//+------------------------------------------------------------------+
#property strict

struct QtClock
  {
   long              offset_s;    // server time - UTC, seconds
   bool              fixed;       // true: set by the user, never re-estimated
   bool              known;       // true once estimated or fixed
  };

void QtClockInit(QtClock &clock, bool automatic, int offset_minutes)
  {
   clock.offset_s = (long)offset_minutes * 60;
   clock.fixed = !automatic;
   clock.known = !automatic;
  }

//--- re-estimate the offset from a fresh server time (ignored when fixed)
void QtClockUpdate(QtClock &clock, datetime server_now)
  {
   if(clock.fixed || server_now <= 0)
      return;
   long diff = (long)server_now - (long)TimeGMT();
   long quarter = 900;
   long rounded;
   if(diff >= 0)
      rounded = ((diff + quarter / 2) / quarter) * quarter;
   else
      rounded = -(((-diff) + quarter / 2) / quarter) * quarter;
   clock.offset_s = rounded;
   clock.known = true;
  }

//--- server time in milliseconds -> UTC milliseconds
long QtServerMscToUtc(QtClock &clock, long server_msc)
  {
   return server_msc - clock.offset_s * 1000;
  }

//--- server time in seconds -> UTC milliseconds
long QtServerTimeToUtcMsc(QtClock &clock, datetime server_time)
  {
   return ((long)server_time - clock.offset_s) * 1000;
  }

//--- now, UTC milliseconds (second resolution: TimeGMT() has no milliseconds)
long QtNowUtcMsc()
  {
   return (long)TimeGMT() * 1000;
  }
//+------------------------------------------------------------------+
