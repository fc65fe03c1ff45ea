// lockstepd and lockstep-colo under systemd, through libsystemd: notification
// (Type=notify: READY=1 once ports are up and the ctrl socket listens, STATUS=,
// STOPPING=1, WATCHDOG=1) and socket activation (lockstepd.socket hands over the ctrl and
// metrics sockets, told apart by FileDescriptorName=). Without systemd every notification
// is a no-op that succeeds and no socket is handed over.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace lockstep::ctrl {

// Sends `state` (newline-separated assignments) to $NOTIFY_SOCKET. False with `error`
// when the variable is set but the datagram could not be sent (or the variable is not an
// absolute path or @abstract name).
bool sd_notify_send(std::string_view state, std::string& error);
bool sd_notify_ready(std::string_view status = {});
bool sd_notify_status(std::string_view status);
bool sd_notify_stopping();
bool sd_notify_watchdog();
// WATCHDOG_USEC if the watchdog is on for this process (WATCHDOG_PID matches or is
// absent), else 0.
uint64_t sd_watchdog_interval_us();

// The names lockstepd gives the sockets of lockstepd.socket (FileDescriptorName=).
inline constexpr std::string_view kSocketNameCtrl = "ctrl";
inline constexpr std::string_view kSocketNameCtrlRo = "ctrl-ro";
inline constexpr std::string_view kSocketNameMetrics = "metrics";

// The listening sockets systemd passed (LISTEN_FDS, LISTEN_FDNAMES, for this process),
// by name, each made non-blocking and close-on-exec; the variables are unset so children
// do not see them. Empty without socket activation. False with `error` when the
// variables are malformed or a passed descriptor is not a listening stream socket.
bool sd_listen_sockets(std::map<std::string, int>& out, std::string& error);

}  // namespace lockstep::ctrl
