//+------------------------------------------------------------------+
//| QtQueue.mqh - the bounded outgoing event queue                    |
//|                                                                  |
//| One job: hold events the PUSH socket could not take yet, without |
//| ever blocking the terminal's thread. Every event is queued, then |
//| the queue is flushed with non-blocking sends (ZMQ_DONTWAIT); a   |
//| send that would block stops the flush and the rest waits for the |
//| next timer event. While events wait:                             |
//|   - a newer tick of a symbol replaces the queued one;            |
//|   - a newer account / positions event replaces the queued one;   |
//|   - when the ring is full the oldest event is dropped.           |
//| Each replaced or dropped event adds 1 to `dropped` (reported in  |
//| heartbeats); its seq number is never sent, so the daemon sees    |
//| the gap too. Replaced entries become holes (kind 0) that the     |
//| flush skips, so the order of seq numbers on the wire is kept.    |
//| Kinds: 0 hole, 1 tick, 2 account, 3 positions, 4 other.          |
//+------------------------------------------------------------------+
#property strict

struct QtQueue
  {
   string            text[];
   string            key[];
   int               kind[];
   int               capacity;
   int               head;        // slot of the oldest entry
   int               count;       // entries, holes included
   long              dropped;     // events replaced or dropped since start
  };

void QtQueueInit(QtQueue &queue, int capacity)
  {
   if(capacity < 16)
      capacity = 16;
   ArrayResize(queue.text, capacity);
   ArrayResize(queue.key, capacity);
   ArrayResize(queue.kind, capacity);
   for(int i = 0; i < capacity; i++)
     {
      queue.text[i] = "";
      queue.key[i] = "";
      queue.kind[i] = 0;
     }
   queue.capacity = capacity;
   queue.head = 0;
   queue.count = 0;
   queue.dropped = 0;
  }

//--- drop the oldest entry (a hole costs nothing, an event counts as dropped)
void QtQueuePopHead(QtQueue &queue, bool count_as_dropped)
  {
   if(queue.count <= 0)
      return;
   if(count_as_dropped && queue.kind[queue.head] != 0)
      queue.dropped++;
   queue.text[queue.head] = "";
   queue.key[queue.head] = "";
   queue.kind[queue.head] = 0;
   queue.head = (queue.head + 1) % queue.capacity;
   queue.count--;
  }

//--- queue one event. kind 1 (tick, key = symbol), 2 (account), 3 (positions)
//--- replace a queued event of the same kind and key; 4 (other) never does.
void QtQueuePush(QtQueue &queue, int kind, string key, string text)
  {
   if(kind >= 1 && kind <= 3)
     {
      for(int k = 0; k < queue.count; k++)
        {
         int slot = (queue.head + k) % queue.capacity;
         if(queue.kind[slot] == kind && queue.key[slot] == key)
           {
            queue.kind[slot] = 0;        // a hole: the newer event replaces it
            queue.text[slot] = "";
            queue.key[slot] = "";
            queue.dropped++;
           }
        }
     }
   while(queue.count > 0 && queue.kind[queue.head] == 0)
      QtQueuePopHead(queue, false);      // holes at the head are free
   if(queue.count >= queue.capacity)
      QtQueuePopHead(queue, true);
   int tail = (queue.head + queue.count) % queue.capacity;
   queue.text[tail] = text;
   queue.key[tail] = key;
   queue.kind[tail] = kind;
   queue.count++;
  }

//--- true when no event waits
bool QtQueueEmpty(QtQueue &queue)
  {
   while(queue.count > 0 && queue.kind[queue.head] == 0)
      QtQueuePopHead(queue, false);
   return queue.count == 0;
  }

//--- the oldest waiting event (call only when QtQueueEmpty() is false)
string QtQueuePeek(QtQueue &queue)
  {
   return queue.text[queue.head];
  }
//+------------------------------------------------------------------+
