// The `qos:` section of lockstepd's configuration: per egress port role, the scheduler's
// commands in tc vocabulary (dataplane/qos/sched/spec.h), as a list of lines, one text, or a
// file. Checked at load with the scheduler's own parser and configuration value, so a
// bad spec is refused naming the key, the line and the token. No DPDK here.
//
//   qos:
//     link:
//       - qdisc add link rate 10gbit default bulk
//       - class add link heartbeat prio 0 rate 10mbit ceil 100mbit
//     host:
//       file: /etc/lockstep/host-qos.tc
#pragma once

#include <string>
#include <string_view>

#include "dataplane/qos/sched/roles.h"
#include "dataplane/qos/sched/sched_config.h"
#include "dataplane/qos/sched/scheduler.h"

namespace lockstep::dp {

// The fixed capacities of a port scheduler in lockstepd, from the pool size: the
// scheduler may never hold more than a quarter of the pool (rx must not starve).
sched::SchedConfig qos_limits(uint32_t pool_mbufs);

// Builds the configuration value of port `role_name` from `script` (one command per
// line). False + error ("line 3: ...") when a line does not parse, names another device,
// or does not fit the configuration built so far.
bool build_qos_config(std::string_view role_name, std::string_view script,
                      const sched::SchedConfig& limits, sched::QosConfig& out,
                      std::string& error);

// The same for a guest's `guests.GUEST.qos.ROLE`: the error names that key.
bool build_guest_qos_config(std::string_view guest, std::string_view role_name,
                            std::string_view script, const sched::SchedConfig& limits,
                            sched::QosConfig& out, std::string& error);

// Handles the config keys `qos.ROLE` (the commands) and `qos.ROLE.file` (a path to read
// them from). `script` receives the text; error names the key. `role_name` must be a
// port role (checked by the caller, which owns the role table).
bool set_qos_key(std::string_view key, std::string_view role_name, std::string_view value,
                 uint32_t pool_mbufs, std::string& script, std::string& error);

// The role map (`qos.roles`, `qos.roles.file`): rules `[pref N] ROLE MATCH...`, one a
// line, `defaults` for the built-in ones (sched/roles.h). Checked at load: a bad line is
// refused naming the key, the line and the token. `script` receives the text.
bool set_qos_roles_key(std::string_view key, std::string_view value, std::string& script,
                       std::string& error);

// What the default role rules take from lockstepd's configuration: the UDP ports of
// heartbeat.bind and heartbeat.send_to (HOST:PORT, comma-separated), and the TCP port of
// checkpointer.endpoint when the checkpointer is real and the endpoint is tcp:HOST:PORT.
sched::RoleDefaultsInput role_defaults_from(std::string_view heartbeat_bind,
                                            std::string_view heartbeat_send_to,
                                            std::string_view checkpointer_kind,
                                            std::string_view checkpointer_endpoint);

}  // namespace lockstep::dp
