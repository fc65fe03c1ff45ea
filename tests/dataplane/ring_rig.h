// A rig of net_ring ports for in-process dataplane tests and the bench: for each role a
// port whose rx ring the test fills (what the peer sends) and whose tx ring(s) the test
// drains (what lockstep sent), made with rte_eth_from_rings. The EAL must be up.
#pragma once

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/daemon/lockstepd_config.h"

namespace lockstep::dptest {

using dp::PortRole;
using dp::kPortRoleCount;

class RingRig {
 public:
  // Creates ports for the roles in `roles` with `txq` tx queues each; names are unique
  // per rig (`tag`). Fills cfg.ports.
  RingRig(const std::string& tag, std::initializer_list<PortRole> roles, unsigned txq,
          dp::Config& cfg, unsigned ring_size = 65536) {
    for (PortRole r : roles) {
      unsigned i = static_cast<unsigned>(r);
      std::string base = tag + "_" + std::string(dp::to_string(r));
      in_[i] = rte_ring_create((base + "_in").c_str(), ring_size, SOCKET_ID_ANY,
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
      for (unsigned q = 0; q < txq; ++q)
        out_[i].push_back(rte_ring_create((base + "_out" + std::to_string(q)).c_str(), ring_size,
                                          SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ));
      // rte_eth_from_rings names the port "net_ring_<name>".
      std::string port = "net_ring_" + base;
      int id = rte_eth_from_rings(base.c_str(), &in_[i], 1, out_[i].data(),
                                  static_cast<unsigned>(out_[i].size()), SOCKET_ID_ANY);
      ok_ = ok_ && id >= 0 && in_[i] != nullptr;
      cfg.ports[i] = port;
    }
  }
  ~RingRig() {
    for (unsigned i = 0; i < kPortRoleCount; ++i) {
      drain(static_cast<PortRole>(i));
      rte_ring_free(in_[i]);
      for (auto* r : out_[i]) rte_ring_free(r);
    }
  }
  RingRig(const RingRig&) = delete;
  RingRig& operator=(const RingRig&) = delete;

  bool ok() const { return ok_; }
  rte_ring* in(PortRole r) const { return in_[static_cast<unsigned>(r)]; }
  const std::vector<rte_ring*>& out(PortRole r) const { return out_[static_cast<unsigned>(r)]; }

  // The peer of `r` sends one frame (an mbuf from `pool`).
  bool inject(PortRole r, rte_mempool* pool, const uint8_t* data, size_t len) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return false;
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(len));
    if (p == nullptr) {
      rte_pktmbuf_free(m);
      return false;
    }
    std::memcpy(p, data, len);
    if (rte_ring_sp_enqueue(in(r), m) != 0) {
      rte_pktmbuf_free(m);
      return false;
    }
    return true;
  }
  bool inject(PortRole r, rte_mempool* pool, const std::vector<uint8_t>& f) {
    return inject(r, pool, f.data(), f.size());
  }

  // Frames lockstep sent on `r` (every tx queue, queue 0 first), freed.
  std::vector<std::vector<uint8_t>> collect(PortRole r) {
    std::vector<std::vector<uint8_t>> out;
    for (auto* ring : out_[static_cast<unsigned>(r)]) {
      void* obj;
      while (rte_ring_sc_dequeue(ring, &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        std::vector<uint8_t> b(m->pkt_len);
        const auto* src = rte_pktmbuf_read(m, 0, m->pkt_len, b.data());
        if (src != b.data()) std::memcpy(b.data(), src, m->pkt_len);
        out.push_back(std::move(b));
        rte_pktmbuf_free(m);
      }
    }
    return out;
  }
  // Frees what lockstep sent on `r`; returns how many.
  size_t drain(PortRole r) {
    size_t n = 0;
    for (auto* ring : out_[static_cast<unsigned>(r)]) {
      void* objs[64];
      unsigned k;
      while ((k = rte_ring_sc_dequeue_burst(ring, objs, 64, nullptr)) > 0) {
        for (unsigned j = 0; j < k; ++j) rte_pktmbuf_free(static_cast<rte_mbuf*>(objs[j]));
        n += k;
      }
    }
    if (in_[static_cast<unsigned>(r)]) {
      void* obj;
      while (rte_ring_sc_dequeue(in_[static_cast<unsigned>(r)], &obj) == 0)
        rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    }
    return n;
  }

 private:
  std::array<rte_ring*, kPortRoleCount> in_{};
  std::array<std::vector<rte_ring*>, kPortRoleCount> out_{};
  bool ok_ = true;
};

}  // namespace lockstep::dptest
