//+------------------------------------------------------------------+
//| QtWire.mqh - one text frame over an mql-zmq socket, non-blocking  |
//|                                                                  |
//| One job: move one UTF-8 JSON text in or out of a socket without  |
//| ever waiting (ZMQ_DONTWAIT). Needs dingmaotu's mql-zmq           |
//| (#include <Zmq/Zmq.mqh>, see docs/mql.md).                       |
//|  - send: the string is converted to UTF-8 bytes with             |
//|    StringToCharArray(..., CP_UTF8), which also writes the        |
//|    terminating 0; the array is shrunk by one so the frame holds  |
//|    exactly the JSON bytes.                                       |
//|  - receive: into a ZmqMsg (the library's uchar-array recv cannot |
//|    report the frame length), copied out as exactly size() bytes  |
//|    and decoded with CharArrayToString(..., CP_UTF8) and that     |
//|    count (ZmqMsg::getData() as a string sizes its buffer with an |
//|    extra character, and its length is the DLL's business).      |
//|    A request of several frames, or with a NUL byte, is read to   |
//|    its end (REP must, before it may reply) and reported          |
//|    malformed: a stuck REP socket would stall every command.      |
//+------------------------------------------------------------------+
#property strict

#include <Zmq/Zmq.mqh>

//--- 1: sent; 0: the socket would block (the caller keeps the text and
//--- tries again); -1: the socket refused it for another reason (give up)
int QtSendText(Socket &socket, string text)
  {
   uchar bytes[];
   int written = StringToCharArray(text, bytes, 0, -1, CP_UTF8);
   if(written < 1)
      return -1;
   if(ArrayResize(bytes, written - 1) != written - 1)
      return -1;
   if(socket.send(bytes, true))
      return 1;
   return Zmq::errorNumber() == EAGAIN ? 0 : -1;
  }

//--- false when no request is waiting. A request that is not one frame of
//--- text without NUL bytes is read to its end and comes back with
//--- malformed set (text empty).
bool QtReceiveText(Socket &socket, string &text, bool &malformed)
  {
   ZmqMsg message;
   if(!socket.recv(message, true))
      return false;
   malformed = false;
   text = "";
   uchar bytes[];
   message.getData(bytes);
   int size = (int)message.size();
   bool more = message.more();
   while(more)                           // the rest of a multipart request arrived with it
     {
      malformed = true;
      ZmqMsg part;
      if(!socket.recv(part, true))
         break;
      more = part.more();
     }
   if(malformed)
      return true;
   for(int i = 0; i < size; i++)
      if(bytes[i] == 0)
        {
         malformed = true;
         return true;
        }
   if(size > 0)
      text = CharArrayToString(bytes, 0, size, CP_UTF8);
   return true;
  }
//+------------------------------------------------------------------+
