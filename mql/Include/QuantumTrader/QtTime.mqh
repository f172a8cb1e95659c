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
//| hours; an estimate more than 2 minutes off a quarter hour is     |
//| stale and ignored. TimeGMT() is the computer's clock: keep the   |
//| VPS clock synchronised (NTP). An input can fix the offset.       |
//+------------------------------------------------------------------+
#property strict

struct QtClock
  {
   long              offset_s;    // server time - UTC, seconds
   bool              fixed;       // true: set by the user, never re-estimated
  };

void QtClockInit(QtClock &clock, bool automatic, int offset_minutes)
  {
   clock.offset_s = (long)offset_minutes * 60;
   clock.fixed = !automatic;
  }

//--- re-estimate the offset from a server time (ignored when fixed). Taken
//--- only when it looks fresh: within 2 minutes of a whole quarter hour off
//--- UTC and inside the world's offsets (-12 h..+14 h). A stale time (MT4's
//--- TimeCurrent() with the market closed) less than ~12 h old passes about
//--- 4 times in 15 with an offset off by its age, until the next tick
//--- re-estimates it; a stale time refused leaves the previous offset (or
//--- UtcOffsetMinutes before the first estimate). Set the offset by input
//--- (UtcOffsetAuto = false) to be sure when starting with the market closed.
void QtClockUpdate(QtClock &clock, datetime server_now)
  {
   if(clock.fixed || server_now <= 0)
      return;
   long diff = (long)server_now - (long)TimeGMT();
   long quarter = 900;
   long rounded = 0;
   if(diff >= 0)
      rounded = ((diff + quarter / 2) / quarter) * quarter;
   else
      rounded = -(((-diff) + quarter / 2) / quarter) * quarter;
   long residual = diff - rounded;
   if(residual > 120 || residual < -120 || rounded > 14 * 3600 || rounded < -12 * 3600)
      return;
   clock.offset_s = rounded;
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
