// The role map: which role in lockstep (sched_types.h: heartbeat, checkpoint, block
// replication, SVM output, proxy, other) a frame has when its path does not say it.
//
// The path says it for the compare engine's frames (the worker tags the ingress copies
// and released PVM output `proxy`, SVM output released after a failover `svm_output`).
// Frames forwarded between the hosts (`host` <-> `link`) all take the same path, so
// their role comes from this map: an ordered list of rules `ROLE MATCH...` (the filter
// MATCH vocabulary of spec.h, without `role`), first match by pref wins, else `other`.
//
//   rule:    [pref N] ROLE MATCH...          (config lines; `defaults` inserts the defaults)
//   command: add [pref N] ROLE MATCH... | replace pref N ROLE MATCH... | del pref N
//
// The defaults follow QEMU's documented COLO setup (docs/COLO-FT.txt) and lockstepd's own
// configuration: see default_role_rules().
//
// Ownership: the control side validates commands on its copy; the port owner's thread
// reads its own copy between bursts. resolve() allocates nothing. Pure C++.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/qos/sched/classifier.h"

namespace lockstep::sched {

struct RoleRule {
  uint32_t pref = 0;
  TrafficRole role = TrafficRole::other;
  Match match;
};

class RoleMap {
 public:
  static constexpr uint32_t kMaxRules = 64;

  // ---- control path
  // Adds a rule (sorted by pref). Error when the table is full or pref is in use.
  std::string add(const RoleRule& r);
  // Replaces the rule with r.pref. Error when there is none.
  std::string replace(const RoleRule& r);
  bool remove(uint32_t pref);
  void clear() { n_ = 0; }
  std::span<const RoleRule> rules() const { return {rules_.data(), n_}; }
  // The pref an added rule without one gets: 10 above the highest, 10 when empty.
  uint32_t next_pref() const { return n_ == 0 ? 10 : rules_[n_ - 1].pref + 10; }

  // ---- dataplane
  TrafficRole resolve(const FlowFields& f) const {
    for (uint32_t i = 0; i < n_; ++i)
      if (rules_[i].match.matches(f)) return rules_[i].role;
    return TrafficRole::other;
  }

 private:
  std::array<RoleRule, kMaxRules> rules_{};
  uint32_t n_ = 0;
};

// What the defaults are made of, from lockstepd's configuration.
struct RoleDefaultsInput {
  std::vector<uint16_t> heartbeat_udp_ports;  // heartbeat.bind and heartbeat.send_to ports
  std::vector<uint16_t> control_tcp_ports;    // checkpointer.endpoint when tcp:HOST:PORT
};

// The default rules (prefs unset; build_role_map numbers them): heartbeat for lockstep's
// heartbeat UDP ports and its checkpointer link's TCP port; then QEMU's COLO-FT.txt
// ports: svm_output tcp 9004 (the secondary's filter-redirector stream of SVM output to
// the primary's compare), proxy tcp 9003 (filter-mirror: the ingress copy to the SVM),
// checkpoint tcp 9998 (the migration/checkpoint stream), block_replication tcp 10809
// (NBD's port) and tcp 9999 (COLO-FT.txt's nbd-server-start).
std::vector<RoleRule> default_role_rules(const RoleDefaultsInput& in);

struct RoleCommand {
  enum class Verb : uint8_t { add, replace, del } verb = Verb::add;
  std::optional<uint32_t> pref;
  TrafficRole role = TrafficRole::other;
  Match match;
};

struct RoleParse {
  bool ok = false;
  bool defaults = false;  // the line was `defaults` (rule lines only)
  std::string error;      // names the offending word and token
  RoleCommand cmd;
};

// "add [pref N] ROLE MATCH...", "replace pref N ROLE MATCH...", "del pref N". A leading
// "qos role" / "role" is accepted.
RoleParse parse_role_command(std::string_view line);
// A config line: "[pref N] ROLE MATCH..." (a leading "add" is accepted) or "defaults".
RoleParse parse_role_line(std::string_view line);

// Applies a parsed command to `map` (nothing changes on error).
std::string apply_role_command(RoleMap& map, const RoleCommand& cmd);

// The map from config lines, one rule a line ('#' comments, blank lines skipped);
// `defaults` inserts `defaults` at that place. An empty script gives the defaults.
// False + "line N: ..." on the first bad line.
bool build_role_map(std::string_view script, std::span<const RoleRule> defaults, RoleMap& out,
                    std::string& error);

// "pref 10 heartbeat proto udp port 9099" (readable back by parse_role_line).
std::string format_role_rule(const RoleRule& r);

}  // namespace lockstep::sched
