//+------------------------------------------------------------------+
//| QtSeq.mqh - the event sequence counter (QuantumTrader bridge)     |
//|                                                                  |
//| One job: number every event the terminal sends, from 0 (hello)   |
//| up by one. A number is taken when the event is built, so an      |
//| event the bounded queue has to drop leaves a gap that tells the  |
//| daemon how many were lost (PROTOCOL.md, "seq").                  |
//| Each numbering from 0 is a run, named by a number that grows     |
//| from run to run (docs/protocol.md, "run"): (run, seq) orders the |
//| events across re-initialisations, which seq alone cannot.        |
//+------------------------------------------------------------------+
#property strict

struct QtSeq
  {
   long              next;
   long              run;                // 0 before the first run
  };

//--- a new run numbered from 0: named by now_msc (UTC ms), or one above the last run's if the clock
//--- is not past it (globals, the last run's among them, survive a re-initialisation in place)
void QtSeqReset(QtSeq &seq, long now_msc)
  {
   seq.next = 0;
   seq.run = now_msc > seq.run ? now_msc : seq.run + 1;
  }

//--- the number of the last event built (-1 before the first)
long QtSeqLast(QtSeq &seq)
  {
   return seq.next - 1;
  }

//--- the number for the next event; advances the counter
long QtSeqTake(QtSeq &seq)
  {
   long value = seq.next;
   seq.next++;
   return value;
  }
//+------------------------------------------------------------------+
