//+------------------------------------------------------------------+
//| QtReplyCache.mqh - replies to recent command ids                  |
//|                                                                  |
//| One job: remember the reply sent for each of the last 256 ids so |
//| that a command the daemon repeats (Lazy Pirate retry after a     |
//| timeout) is answered with the stored reply and never executed    |
//| twice. A fixed ring: the oldest entry is overwritten. A global   |
//| starts empty (MQL zero-initialises it) and is never reset: a     |
//| retry across an in-place re-initialisation finds its reply.      |
//+------------------------------------------------------------------+
#property strict

struct QtReplyCache
  {
   string            ids[256];
   string            replies[256];
   int               next;        // slot the next reply goes to
   int               count;       // slots in use (<= 256)
  };

int QtReplyCacheCapacity()
  {
   return 256;
  }

string QtReplyCacheFind(QtReplyCache &cache, string id)
  {
   if(id == "")
      return "";
   for(int i = 0; i < cache.count; i++)
      if(cache.ids[i] == id)
         return cache.replies[i];
   return "";
  }

//--- remember the reply sent for id (an empty id is not stored)
void QtReplyCachePut(QtReplyCache &cache, string id, string reply)
  {
   if(id == "")
      return;
   cache.ids[cache.next] = id;
   cache.replies[cache.next] = reply;
   cache.next = (cache.next + 1) % QtReplyCacheCapacity();
   if(cache.count < QtReplyCacheCapacity())
      cache.count++;
  }
//+------------------------------------------------------------------+
