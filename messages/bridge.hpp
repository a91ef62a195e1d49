#pragma once
// A closure a gRPC handler hands to one of the gateway's bridge actors (actors/gateway/bridge.hpp):
// the bridge runs it, the closure makes a typed request from the bridge and turns the answer into
// a gRPC response. Local only: a closure cannot be serialized, so `inspect` shows the name alone.

#include <caf/event_based_actor.hpp>
#include <caf/meta/type_name.hpp>

#include <functional>

namespace embed {

struct bridge_job {
  std::function<void(caf::event_based_actor*)> run;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bridge_job&) {
  return f(caf::meta::type_name("bridge_job"));
}

} // namespace embed
