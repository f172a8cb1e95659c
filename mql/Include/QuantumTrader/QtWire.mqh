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
//|    report the frame length); ZmqMsg::getData() decodes UTF-8.    |
//+------------------------------------------------------------------+
#property strict

#include <Zmq/Zmq.mqh>

//--- false when the socket would block (the caller keeps the text)
bool QtSendText(Socket &socket, string text)
  {
   uchar bytes[];
   int written = StringToCharArray(text, bytes, 0, -1, CP_UTF8);
   if(written < 1)
      return false;
   if(ArrayResize(bytes, written - 1) != written - 1)
      return false;
   return socket.send(bytes, true);
  }

//--- false when no frame is waiting
bool QtReceiveText(Socket &socket, string &text)
  {
   ZmqMsg message;
   if(!socket.recv(message, true))
      return false;
   text = message.getData();
   return true;
  }
//+------------------------------------------------------------------+
