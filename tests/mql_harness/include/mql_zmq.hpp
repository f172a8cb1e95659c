// The mql-zmq classes the EAs use (dingmaotu/mql-zmq, Include/Zmq/), with the
// same method signatures as its headers, implemented over libzmq's C API.
// Only what the EAs call and its near neighbours: Context, Socket (with the
// SocketOptions setters), ZmqMsg, PollItem, and Zmq's static errorNumber().
#pragma once
#include <zmq.h>

#include <cerrno>  // EAGAIN (mql-zmq's Errno.mqh defines the same names)
#include <cstring>

#include "mql_types.hpp"


// Zmq.mqh: the library's global utilities
class Zmq {
 public:
  static int errorNumber() { return zmq_errno(); }
};

struct PollItem {
  void* socket = nullptr;
  int fd = 0;
  short events = 0;
  short revents = 0;
  bool hasInput() const { return (revents & ZMQ_POLLIN) != 0; }
  bool hasOutput() const { return (revents & ZMQ_POLLOUT) != 0; }
};

// One context per process; mql-zmq shares it between the EAs of a terminal by name.
class Context {
 public:
  void* m_ref;
  Context(string shared = NULL) : m_ref(zmq_ctx_new()) {}
  ~Context() { zmq_ctx_term(m_ref); }
  void* ref() const { return m_ref; }
  bool shutdown() { return zmq_ctx_shutdown(m_ref) == 0; }
};

class ZmqMsg {
 public:
  zmq_msg_t msg;
  ZmqMsg() { zmq_msg_init(&msg); }
  ZmqMsg(int size) { zmq_msg_init_size(&msg, (size_t)size); }
  ZmqMsg(string data, bool nullterminated = false) {
    std::string bytes = data.utf8();
    if (nullterminated) bytes.push_back('\0');
    zmq_msg_init_size(&msg, bytes.size());
    std::memcpy(zmq_msg_data(&msg), bytes.data(), bytes.size());
  }
  ~ZmqMsg() { zmq_msg_close(&msg); }
  ZmqMsg(const ZmqMsg&) = delete;
  ZmqMsg& operator=(const ZmqMsg&) = delete;
  size_t size() { return zmq_msg_size(&msg); }
  bool more() { return zmq_msg_more(&msg) == 1; }
  void getData(MqlArray<uchar>& data) {
    size_t n = size();
    if (data.items.size() < n) data.items.resize(n);
    std::memcpy(data.items.data(), zmq_msg_data(&msg), n);
  }
  string getData() {  // UTF-8 bytes -> string, as StringFromUtf8Pointer
    std::string bytes(static_cast<const char*>(zmq_msg_data(&msg)), size());
    return string(bytes.c_str());
  }
};

class SocketOptions {
 protected:
  void* m_ref;
  explicit SocketOptions(void* ref) : m_ref(ref) {}
  bool setOption(int option, int value) { return zmq_setsockopt(m_ref, option, &value, sizeof value) == 0; }

 public:
  bool setLinger(int value) { return setOption(ZMQ_LINGER, value); }
  bool setSendHighWaterMark(int value) { return setOption(ZMQ_SNDHWM, value); }
  bool setReceiveHighWaterMark(int value) { return setOption(ZMQ_RCVHWM, value); }
  bool setImmediate(bool value) { return setOption(ZMQ_IMMEDIATE, value ? 1 : 0); }
  bool setReconnectInterval(int value) { return setOption(ZMQ_RECONNECT_IVL, value); }
  bool setMaxMessageSize(long value) {
    int64_t v = value;
    return zmq_setsockopt(m_ref, ZMQ_MAXMSGSIZE, &v, sizeof v) == 0;
  }
  bool getLastEndpoint(string& value) {  // SOCKOPT_GET_NTSTR(LastEndpoint, ZMQ_LAST_ENDPOINT)
    char buf[256];
    size_t len = sizeof buf;
    if (zmq_getsockopt(m_ref, ZMQ_LAST_ENDPOINT, buf, &len) != 0) return false;
    value = string(buf);
    return true;
  }
};

class Socket : public SocketOptions {
 public:
  Socket(const Context& ctx, int type) : SocketOptions(zmq_socket(ctx.ref(), type)) {}
  virtual ~Socket() { zmq_close(m_ref); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  void* ref() const { return m_ref; }
  bool valid() const { return m_ref != nullptr; }
  bool bind(string addr) { return zmq_bind(m_ref, addr.utf8().c_str()) == 0; }
  bool unbind(string addr) { return zmq_unbind(m_ref, addr.utf8().c_str()) == 0; }
  bool connect(string addr) { return zmq_connect(m_ref, addr.utf8().c_str()) == 0; }
  bool disconnect(string addr) { return zmq_disconnect(m_ref, addr.utf8().c_str()) == 0; }
  bool recv(MqlArray<uchar>& buf, bool nowait = false) {
    return zmq_recv(m_ref, buf.items.data(), buf.items.size(), nowait ? ZMQ_DONTWAIT : 0) != -1;
  }
  bool send(const MqlArray<uchar>& buf, bool nowait = false, bool more = false) {
    return zmq_send(m_ref, buf.items.data(), buf.items.size(), (nowait ? ZMQ_DONTWAIT : 0) | (more ? ZMQ_SNDMORE : 0)) != -1;
  }
  bool send(ZmqMsg& msg, bool nowait = false, bool more = false) {
    return zmq_msg_send(&msg.msg, m_ref, (nowait ? ZMQ_DONTWAIT : 0) | (more ? ZMQ_SNDMORE : 0)) != -1;
  }
  bool recv(ZmqMsg& msg, bool nowait = false) { return zmq_msg_recv(&msg.msg, m_ref, nowait ? ZMQ_DONTWAIT : 0) != -1; }
  void fillPollItem(PollItem& item, short events) {
    item.socket = m_ref;
    item.fd = 0;
    item.events = events;
    item.revents = 0;
  }
  static int poll(MqlArray<PollItem>& items, long timeout) {
    std::vector<zmq_pollitem_t> raw(items.items.size());
    for (size_t i = 0; i < raw.size(); i++) raw[i] = {items.items[i].socket, 0, items.items[i].events, 0};
    int n = zmq_poll(raw.data(), (int)raw.size(), timeout);
    for (size_t i = 0; i < raw.size(); i++) items.items[i].revents = raw[i].revents;
    return n;
  }
};
