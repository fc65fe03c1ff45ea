// Normalization rules as text: the `normalize_rules` setting, parsed into a list of
// rules (name, traffic selector, Hyperscan pattern). Pure: no Hyperscan here, so a
// syntax error is reported the same way with or without Hyperscan in the build.
//
// Syntax (docs/normalization.md): rules are separated by newlines or by ';' (write
// '\;' for a literal ';' inside a pattern; it stays '\;', which PCRE reads as ';').
//
//   NAME SELECTOR PATTERN     a rule; PATTERN is the rest of the item, trimmed
//   @SET [SELECTOR]           every rule of a shipped set (compare/rules/SET.rules),
//                             with SELECTOR replacing the set's selectors when given
//   # ...                     a comment (a whole item)
//
//   NAME      [A-Za-z0-9_]{1,31}, unique (it names the rule's counters)
//   SELECTOR  PROTO[:PORTS][@PREFIX], PROTO tcp or udp, PORTS a comma list of ports
//             and ranges (a flow matches when either of its ports is in the list),
//             PREFIX an IPv4 or IPv6 prefix either address must be in
//
// Only the VMs' output is compared, so only the VMs' output is matched: the direction
// is implied.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compare/counters.h"
#include "compare/flow_key.h"
#include "compare/policy.h"

namespace lockstep {

struct NormRule {
  std::string name;
  std::string selector;  // as written (or as the set gave it)
  std::string pattern;
  uint8_t proto = 0;     // kProtoTcp or kProtoUdp
  PolicyTable match;     // the selector: lookup() == compare when it applies
  bool applies(const FlowKey& k) const {
    return k.proto == proto && match.lookup(k) == PolicyAction::compare;
  }
};

// Parses the setting's text. Empty text (or only comments): no rules. On error returns
// false and names the item and the problem.
bool parse_norm_rules(std::string_view text, std::vector<NormRule>& out, std::string& error);

// The shipped sets compiled into the library: (name, text), from compare/rules/*.rules.
struct NormRuleSet {
  std::string_view name;
  std::string_view text;
};
const std::vector<NormRuleSet>& shipped_norm_sets();

}  // namespace lockstep
