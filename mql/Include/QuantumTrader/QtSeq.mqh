//+------------------------------------------------------------------+
//| QtSeq.mqh - the event sequence counter (QuantumTrader bridge)     |
//|                                                                  |
//| One job: number every event the terminal sends, from 0 (hello)   |
//| up by one. A number is taken when the event is built, so an      |
//| event the bounded queue has to drop leaves a gap that tells the  |
//| daemon how many were lost (PROTOCOL.md, "seq").                  |
//+------------------------------------------------------------------+
#property strict

struct QtSeq
  {
   long              next;
  };

void QtSeqReset(QtSeq &seq)
  {
   seq.next = 0;
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
