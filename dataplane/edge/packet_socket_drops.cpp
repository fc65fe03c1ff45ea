#include "dataplane/edge/packet_socket_drops.h"

#include <dirent.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstdlib>

namespace lockstep::dp {

std::string af_packet_iface(const std::string& device) {
  if (device.rfind("net_af_packet", 0) != 0) return "";
  size_t at = device.find(",iface=");
  if (at == std::string::npos) return "";
  at += 7;
  return device.substr(at, device.find(',', at) - at);  // npos - at: to the end
}

unsigned PacketSocketDrops::attach(const std::array<std::string, kPortRoleCount>& devices) {
  std::lock_guard lock(mu_);
  socks_.clear();
  std::array<int, kPortRoleCount> ifindex{};
  bool any = false;
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    const std::string iface = af_packet_iface(devices[r]);
    ifindex[r] = iface.empty() ? 0 : static_cast<int>(if_nametoindex(iface.c_str()));
    any = any || ifindex[r] != 0;
  }
  if (!any) return 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == dirfd(d)) continue;
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_PACKET) continue;
    sockaddr_ll sll{};
    len = sizeof sll;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sll), &len) != 0) continue;
    for (unsigned r = 0; r < kPortRoleCount; ++r) {
      if (ifindex[r] == 0 || sll.sll_ifindex != ifindex[r]) continue;
      tpacket_stats st{};
      len = sizeof st;
      getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);  // start from zero
      socks_.push_back({fd, r});
      break;
    }
  }
  closedir(d);
  return static_cast<unsigned>(socks_.size());
}

std::array<uint64_t, kPortRoleCount> PacketSocketDrops::read() {
  std::lock_guard lock(mu_);
  for (const Sock& s : socks_) {
    tpacket_stats st{};
    socklen_t len = sizeof st;
    if (getsockopt(s.fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) total_[s.role] += st.tp_drops;
  }
  return total_;
}

void PacketSocketDrops::detach() {
  std::lock_guard lock(mu_);
  socks_.clear();
}

}  // namespace lockstep::dp
