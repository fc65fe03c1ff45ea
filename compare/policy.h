// Traffic policies: which flows are compared, passed through uncompared, or dropped.
// Parsed once from the `policy_rules` setting into a small ordered table; looked up once
// per connection (the verdict is cached in the connection), never per frame.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compare/flow_key.h"

namespace lockstep {

enum class PolicyAction : uint8_t { compare, pass, drop };
bool policy_action_from_string(std::string_view s, PolicyAction& out);
std::string_view to_string(PolicyAction a);

struct PolicyRule {
  uint16_t proto = 0;  // 256 = any IP protocol
  uint16_t port_lo = 0, port_hi = 65535;
  bool has_prefix = false;
  IpAddr prefix;
  uint8_t prefix_len = 0;  // in the 128-bit (IPv4-mapped) space
  PolicyAction action = PolicyAction::compare;
};

class PolicyTable {
 public:
  // Parses "PROTO[:PORT[-PORT]][@PREFIX]=ACTION;..." (empty text: no rules). On error
  // returns false and names the rule and the problem.
  bool parse(std::string_view text, PolicyAction default_action, std::string& error);

  // A rule matches when the protocol matches, either port is in the range and either
  // address is in the prefix. First match wins.
  PolicyAction lookup(const FlowKey& k) const;

  const std::vector<PolicyRule>& rules() const { return rules_; }

 private:
  std::vector<PolicyRule> rules_;
  PolicyAction default_ = PolicyAction::compare;
};

}  // namespace lockstep
