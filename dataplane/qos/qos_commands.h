// The `qos` ctrl commands (`lockstepctl qos ...`): the egress schedulers' configuration
// in tc vocabulary, live, and their counters. The commands only carry words; the daemon
// (QosControl) parses, validates against the port's running configuration, publishes
// to the port's worker and answers. Refused commands change nothing.
//
//   qos qdisc  add|change|replace|del [dev] PORT [rate RATE] [burst SIZE] [default CLASS]
//   qos class  add|change|replace|del [dev] PORT NAME [prio N] [rate R] [ceil R] ...
//   qos filter add|replace|del [dev] PORT [pref N] MATCH... class NAME
//   qos show   [-s] [PORT]
//   qos role   add [pref N] ROLE MATCH... | replace pref N ROLE MATCH... | del pref N
//   qos roles  (the role map: which role frames between the hosts get)
#pragma once

#include <string>
#include <vector>

#include "ctrl/command_registry.h"

namespace lockstep::ctrl {

// Implemented by the daemon (dataplane/qos/qos_ctrl.h). Called on the ctrl server thread;
// every method returns promptly (bounded waits on the dataplane).
class QosControl {
 public:
  virtual ~QosControl() = default;
  // Ports that carry a scheduler ("link", "host", ...).
  virtual std::vector<std::string> ports() = 0;
  // One command line ("class add link hb prio 0 rate 10mbit") for `port`. True with a
  // result (generation, whether the port's worker applied it already) or false + error.
  virtual bool apply(const std::string& port, const std::string& command, Json& result,
                     std::string& error) = 0;
  // The port's configuration, and its counters when `stats`; "text" holds tc -s style
  // lines.
  virtual bool show(const std::string& port, bool stats, Json& result, std::string& error) = 0;
  // One role map command ("add pref 5 checkpoint proto tcp port 8888"); like apply.
  virtual bool apply_role(const std::string& command, Json& result, std::string& error) {
    (void)command, (void)result;
    error = "the role map is not available";
    return false;
  }
  // The role map: "rules" (pref, role, match) and "text" (one rule a line).
  virtual bool roles(Json& result, std::string& error) {
    (void)result;
    error = "the role map is not available";
    return false;
  }
};

void register_qos_commands(CommandRegistry& reg, QosControl& qos);

}  // namespace lockstep::ctrl
