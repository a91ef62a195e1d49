#pragma once
// A throw-away test network of Linux network namespaces, for tests that need real hosts with their
// own addresses and links that can be cut.
//
// Every host is a network namespace (unique name: it carries this process' pid) whose `eth0` is
// one end of a veth pair; the other end is a port of a bridge in the ROOT namespace. The bridge
// carries an address too, so that the test process itself (root namespace) reaches every host.
// Addresses come from a private /24 picked at run time (10.X.Y.0/24, derived from the pid, skipping
// any prefix already routed here). `cut(host)` sets the host's bridge-side veth down: packets to
// and from it are silently dropped (a real partition: no RST, no ICMP), until `restore(host)`.
//
// The destructor kills the processes started with `spawn` (and any other process left in the
// namespaces), then deletes the namespaces, the veths, the bridge and the /etc/netns/<ns> folders
// it created, also when the test failed. Needs root and `ip netns`: `ok()` / `error()` say whether
// the network could be built (tests GTEST_SKIP with `error()` otherwise).

#include "tests/integration/process.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace embed::testing {

class test_network {
public:
  struct host {
    std::string name;    // the test's name for it ("gw", "w1")
    std::string ns;      // the network namespace
    std::string address; // its IPv4 address on the test network
    std::string veth;    // the bridge-side (root namespace) end of its link
  };

  test_network();
  ~test_network();
  test_network(const test_network&) = delete;
  test_network& operator=(const test_network&) = delete;

  /// Whether the network could be built; `error()` says why not (not root, no `ip netns`...).
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  /// Adds a host: a namespace with `lo` up and `eth0` linked to the bridge. Empty `error()` on
  /// success; on failure `ok()` turns false.
  const host& add_host(const std::string& name);
  const host& at(const std::string& name) const;
  /// The root namespace's address on the test network (the bridge's).
  const std::string& bridge_address() const { return bridge_address_; }
  const std::string& subnet() const { return subnet_; }

  /// Partition: the host's bridge-side veth down (packets silently dropped both ways).
  void cut(const std::string& name);
  /// Heals the partition.
  void restore(const std::string& name);

  /// Starts `argv` inside the host's namespace (`ip netns exec NS argv...`). Owned by the
  /// network: killed before the namespaces go.
  process& spawn(const std::string& host_name, const std::string& proc_name,
                 std::vector<std::string> argv);

  /// Writes /etc/netns/<ns>/<file> (bind-mounted over /etc/<file> by `ip netns exec`): e.g.
  /// resolv.conf. The folder is removed by the destructor.
  void write_etc(const std::string& host_name, const std::string& file,
                 const std::string& content);

private:
  void teardown();

  std::string error_;
  std::string prefix_; // "10.X.Y."
  std::string subnet_;
  std::string bridge_;
  std::string bridge_address_;
  std::string tag_; // unique per network in this process: "<pid>x<n>"
  std::vector<std::unique_ptr<host>> hosts_;
  std::vector<std::string> etc_dirs_;
  std::vector<std::unique_ptr<process>> procs_;
  bool bridge_made_ = false;
};

/// Runs a command (through /bin/sh), returns its exit status; output appended to `out`.
int run_command(const std::string& command, std::string* out = nullptr);

/// Sum of the samples of a metric family whose label text contains every one of `labels`
/// (e.g. {"method=\"Embed\""}).
double metric_sum_where(const std::string& text, const std::string& name,
                        const std::vector<std::string>& labels);

} // namespace embed::testing
