// Frames the kernel dropped on the AF_PACKET sockets behind net_af_packet ports.
//
// DPDK 22.11's af_packet PMD reports no imissed: when its socket's RX ring is full the
// kernel drops the frame and counts it on the socket only (PACKET_STATISTICS
// tp_drops), where no ethdev counter sees it. An SVM or PVM frame lost there is lost
// VM output, so lockstepd reads those counters itself and reports them as the port's
// dev_imissed (the device's own ring was full: what imissed means for a NIC).
//
// The PMD's sockets are found among this process's descriptors: AF_PACKET sockets
// bound to the ifindex of the port's iface. Reading PACKET_STATISTICS resets it, so
// the reads are summed here; one reader at a time (the owner serialises calls).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"

namespace lockstep::dp {

class PacketSocketDrops {
 public:
  // After the ports started: the sockets of every role whose device string is a
  // net_af_packet vdev with iface=NAME. Returns how many sockets were found.
  unsigned attach(const std::array<std::string, kPortRoleCount>& devices);
  // Adds what the kernel dropped since the last call to each role's total; returns the
  // totals (zero for roles without such a port).
  std::array<uint64_t, kPortRoleCount> read();
  // Forget the sockets (the ports are about to close them; read() them first); totals
  // are kept.
  void detach();

 private:
  struct Sock {
    int fd;
    unsigned role;
  };
  std::mutex mu_;
  std::vector<Sock> socks_;
  std::array<uint64_t, kPortRoleCount> total_{};
};

// The iface=NAME of a net_af_packet device string, or "" for any other device.
std::string af_packet_iface(const std::string& device);

}  // namespace lockstep::dp
