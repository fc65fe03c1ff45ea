// A blocking, one-command QMP client: connect, greeting, qmp_capabilities, one command,
// its answer, close. For one-off actions away from the link's own connection (telling
// the SVM's QEMU x-colo-lost-heartbeat at failover) and for tests and tools. Every step
// is bounded by the timeout; events arriving in between are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ctrl/json_limits.h"
#include "ctrl/net.h"

namespace lockstep::ctrl {

// True with `reply` set to the command's "return"; false with `error` (connect failure,
// timeout, junk, or QEMU's error class and description).
bool qmp_execute(const Endpoint& ep, std::string_view command, const Json& args,
                 uint64_t timeout_ns, Json& reply, std::string& error);

}  // namespace lockstep::ctrl
