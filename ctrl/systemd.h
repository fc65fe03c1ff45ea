// systemd notification (Type=notify) over the plain NOTIFY_SOCKET datagram protocol, no
// libsystemd needed: READY=1 once ports are up and the ctrl socket listens, STATUS=,
// STOPPING=1, WATCHDOG=1. Without NOTIFY_SOCKET every call is a no-op that succeeds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::ctrl {

// Sends `state` (newline-separated assignments) to $NOTIFY_SOCKET (a path, or
// "@name" for the abstract namespace). Returns false with `error` when the socket is set
// but the datagram could not be sent.
bool sd_notify_send(std::string_view state, std::string& error);
bool sd_notify_ready(std::string_view status = {});
bool sd_notify_status(std::string_view status);
bool sd_notify_stopping();
bool sd_notify_watchdog();
// WATCHDOG_USEC if set for this process (WATCHDOG_PID matches or is absent), else 0.
uint64_t sd_watchdog_interval_us();

}  // namespace lockstep::ctrl
