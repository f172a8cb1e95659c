// Definitions of the template built-ins, after prelude.hpp declared them with
// their documented defaults (C++ takes defaults from the first declaration).
#pragma once
#include <sstream>
#include "mql_types.hpp"

template <class T>
int ArrayResize(MqlArray<T>& array, int new_size, int reserve_size) {
  if (new_size < 0) return -1;
  array.items.reserve((size_t)new_size + (size_t)(reserve_size > 0 ? reserve_size : 0));
  array.items.resize((size_t)new_size);
  return new_size;
}

template <class T>
void ZeroMemory(T& variable) {
  variable = T();
}

std::string mql_format(const string& format, const std::vector<std::string>& args);
void mql_print_line(const std::string& line);

inline std::string mql_text(const string& v) { return v.utf8(); }
inline std::string mql_text(const char* v) { return v ? v : ""; }
inline std::string mql_text(bool v) { return v ? "true" : "false"; }
inline std::string mql_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}
template <class V>
std::string mql_text(const V& v) {
  std::ostringstream out;
  out << +v;
  return out.str();
}

template <class... A>
void Print(const A&... args) {
  std::string line;
  ((line += mql_text(args)), ...);
  mql_print_line(line);
}

template <class... A>
void PrintFormat(string format_string, const A&... args) {
  mql_print_line(mql_format(format_string, {mql_text(args)...}));
}

// The runtime sets an input from MQL_INPUT_<name> (the transform registers every input).
bool mql_input_set(const char* name, string& value);
bool mql_input_set(const char* name, int& value);
bool mql_input_set(const char* name, bool& value);
bool mql_input_set(const char* name, double& value);
