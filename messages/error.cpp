#include "messages/error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace embed {

const char* to_string(ec code) {
  switch (code) {
  case ec::none: return "none";
  case ec::invalid_argument: return "invalid_argument";
  case ec::too_many_inputs: return "too_many_inputs";
  case ec::input_too_long: return "input_too_long";
  case ec::empty_input: return "empty_input";
  case ec::invalid_utf8: return "invalid_utf8";
  case ec::unknown_model: return "unknown_model";
  case ec::overloaded: return "overloaded";
  case ec::worker_unavailable: return "worker_unavailable";
  case ec::circuit_open: return "circuit_open";
  case ec::deadline_exceeded: return "deadline_exceeded";
  case ec::cancelled: return "cancelled";
  case ec::turned_off: return "turned_off";
  case ec::internal: return "internal";
  }
  return "unknown";
}

caf::error make_error(ec code, std::string message) {
  return caf::make_error(code, std::move(message));
}

ec code_of(const caf::error& err) {
  if (!err)
    return ec::none;
  if (err.category() == caf::atom("embed"))
    return static_cast<ec>(err.code());
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
    case caf::sec::request_timeout: return ec::deadline_exceeded;
    case caf::sec::request_receiver_down: return ec::worker_unavailable;
    default: break;
    }
  }
  return ec::internal;
}

std::string message_of(const caf::error& err) {
  if (!err)
    return {};
  const auto& ctx = err.context();
  if (err.category() == caf::atom("embed") && ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  if (err.category() == caf::atom("embed"))
    return to_string(static_cast<ec>(err.code()));
  return caf::to_string(err);
}

} // namespace embed
