#include "dataplane/edge/ports.h"

#include <rte_errno.h>
#include <rte_ethdev.h>

#include <algorithm>
#include <cstring>

namespace lockstep::dp {
namespace {

// Toeplitz with the key 0x6d5a repeated is symmetric: (a,b) and (b,a) hash alike, so
// both directions of a connection land on the same queue, on every port.
uint8_t kSymmetricRssKey[40] = {
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};
constexpr uint64_t kRssHf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

int on_event(uint16_t, enum rte_eth_event_type type, void* arg, void*) {
  auto* ev = static_cast<PortEvents*>(arg);
  if (type == RTE_ETH_EVENT_QUEUE_STATE) {
    ev->queue_state.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  // LSC: read the new state without waiting.
  return 0;
}

int on_lsc(uint16_t port, enum rte_eth_event_type, void* arg, void*) {
  auto* ev = static_cast<PortEvents*>(arg);
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(port, &link) != 0) return 0;
  bool up = link.link_status == RTE_ETH_LINK_UP;
  bool was = ev->up.exchange(up);
  if (up && !was) ev->link_up.fetch_add(1, std::memory_order_relaxed);
  if (!up && was) ev->link_down.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

}  // namespace

bool plan_ports(const Config& cfg, PortPlan& plan, std::string& error) {
  plan.port.fill(-1);
  plan.nrx.fill(0);
  plan.units.clear();
  plan.used.clear();
  auto resolve = [&](const std::string& key, const std::string& spec, int& out) {
    std::string name = device_name(spec);
    uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
      error = "config key '" + key + "': no DPDK port named '" + name + "' (device string '" +
              spec + "'); ports:";
      uint16_t pid;
      RTE_ETH_FOREACH_DEV(pid) {
        char n[RTE_ETH_NAME_MAX_LEN];
        if (rte_eth_dev_get_name_by_port(pid, n) == 0) error += std::string(" ") + n;
      }
      return false;
    }
    out = id;
    return true;
  };
  auto use = [&](int port, PortRole role, const std::string& spec) {
    for (auto& u : plan.used)
      if (u.port == port) return void(u.shared = true);
    plan.used.push_back({port, role, spec, false});
  };
  std::vector<GuestSpec> guests;
  if (!resolve_guests(cfg, guests, error)) return false;
  for (unsigned g = 0; g < guests.size(); ++g) {
    for (unsigned n = 0; n < guests[g].nics.size(); ++n) {
      const NicConfig& nic = guests[g].nics[n];
      UnitPlan u;
      u.guest = g;
      u.nic = n;
      u.mac = nic.mac;
      u.has_mac = nic.has_mac;
      u.vlan = nic.vlan;
      for (unsigned r = 0; r < kCompareRoles; ++r) {
        const std::string key = cfg.guests.empty()
                                    ? "ports." + std::string(to_string(static_cast<PortRole>(r)))
                                    : "guests." + guests[g].name + ".nics." + std::to_string(n) +
                                          "." + std::string(to_string(static_cast<PortRole>(r)));
        if (!resolve(key, nic.ports[r], u.port[r])) return false;
        use(u.port[r], static_cast<PortRole>(r), nic.ports[r]);
      }
      plan.units.push_back(u);
    }
  }
  for (unsigned r = 0; r < kCompareRoles; ++r) plan.port[r] = plan.units.front().port[r];
  for (PortRole r : {PortRole::host, PortRole::link}) {
    const unsigned i = static_cast<unsigned>(r);
    if (cfg.ports[i].empty()) continue;
    if (!resolve("ports." + std::string(to_string(r)), cfg.ports[i], plan.port[i])) return false;
    use(plan.port[i], r, cfg.ports[i]);
  }
  // Steering: RSS when asked (or auto) and every compared port can spread the workers'
  // queues with a symmetric hash; otherwise software steering from worker 0.
  plan.rss = false;
  if (cfg.workers > 1 && cfg.steering != Steering::software) {
    bool all = true;
    for (const auto& u : plan.used) {
      if (u.role == PortRole::host || u.role == PortRole::link) continue;
      rte_eth_dev_info info{};
      if (rte_eth_dev_info_get(static_cast<uint16_t>(u.port), &info) != 0 ||
          info.max_rx_queues < cfg.workers || (info.flow_type_rss_offloads & kRssHf) == 0 ||
          info.hash_key_size != sizeof kSymmetricRssKey)
        all = false;
    }
    if (!all && cfg.steering == Steering::rss) {
      error = "config key 'steering': rss asked for, but a port cannot spread " +
              std::to_string(cfg.workers) + " rx queues with a 40-byte RSS key";
      return false;
    }
    plan.rss = all;
  }
  return true;
}

bool start_ports(const Config& cfg, PortPlan& plan, rte_mempool* pool,
                 std::array<PortEvents, kPortRoleCount>& events, std::string& error) {
  for (const auto& used : plan.used)
    if (!start_port(cfg, plan, used, pool, events, error)) return false;
  return true;
}

bool start_port(const Config& cfg, PortPlan& plan, const PortPlan::Used& used, rte_mempool* pool,
                std::array<PortEvents, kPortRoleCount>& events, std::string& error) {
  {
    const unsigned r = static_cast<unsigned>(used.role);
    auto port = static_cast<uint16_t>(used.port);
    std::string role = std::string(to_string(used.role));
    auto fail = [&](const char* what, int rc) {
      error = "port " + role + " (" + used.spec + "): " + what + ": " +
              rte_strerror(rc < 0 ? -rc : rc);
      return false;
    };
    rte_eth_dev_info info{};
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0) return fail("device info", rc);
    uint16_t nrx = static_cast<uint16_t>(plan.rss ? cfg.workers : 1);
    uint16_t ntx = static_cast<uint16_t>(cfg.workers);
    if (info.max_tx_queues < ntx) {
      error = "port " + role + " (" + used.spec + ") has " +
              std::to_string(info.max_tx_queues) + " tx queue(s); workers=" +
              std::to_string(cfg.workers) + " needs one per worker (config key 'workers')";
      return false;
    }
    if (info.max_rx_queues < 1) {
      error = "port " + role + " (" + used.spec + ") has no rx queue";
      return false;
    }
    rte_eth_conf conf{};
    if (plan.rss && r < kCompareRoles) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_key = kSymmetricRssKey;
      conf.rx_adv_conf.rss_conf.rss_key_len = sizeof kSymmetricRssKey;
      conf.rx_adv_conf.rss_conf.rss_hf = kRssHf & info.flow_type_rss_offloads;
    } else {
      nrx = static_cast<uint16_t>(std::max<uint32_t>(1, std::min<uint32_t>(cfg.workers, info.max_rx_queues)));
    }
    plan.nrx[port] = nrx;
    if (info.dev_flags != nullptr && (*info.dev_flags & RTE_ETH_DEV_INTR_LSC)) conf.intr_conf.lsc = 1;
    rc = rte_eth_dev_configure(port, nrx, ntx, &conf);
    if (rc != 0) return fail("configure", rc);
    uint16_t nb_rxd = static_cast<uint16_t>(cfg.rx_desc), nb_txd = static_cast<uint16_t>(cfg.tx_desc);
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
    if (rc != 0) return fail("descriptor counts", rc);
    for (uint16_t q = 0; q < nrx; ++q) {
      rc = rte_eth_rx_queue_setup(port, q, nb_rxd, rte_eth_dev_socket_id(port), nullptr, pool);
      if (rc != 0) return fail("rx queue setup", rc);
    }
    for (uint16_t q = 0; q < ntx; ++q) {
      rc = rte_eth_tx_queue_setup(port, q, nb_txd, rte_eth_dev_socket_id(port), nullptr);
      if (rc != 0) return fail("tx queue setup", rc);
    }
    rte_eth_dev_callback_register(port, RTE_ETH_EVENT_INTR_LSC, on_lsc, &events[r]);
    rte_eth_dev_callback_register(port, RTE_ETH_EVENT_QUEUE_STATE, on_event, &events[r]);
    rc = rte_eth_dev_start(port);
    if (rc != 0) return fail("start", rc);
    rte_eth_promiscuous_enable(port);  // not every PMD supports it; not an error
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) {
      if (!events[r].up.exchange(true)) events[r].link_up.fetch_add(1);
    }
  }
  return true;
}

void stop_ports(const PortPlan& plan, std::array<PortEvents, kPortRoleCount>& events, bool close) {
  for (const auto& used : plan.used) stop_port(used, events, close);
}

void stop_port(const PortPlan::Used& used, std::array<PortEvents, kPortRoleCount>& events, bool close) {
  auto port = static_cast<uint16_t>(used.port);
  auto* ev = &events[static_cast<unsigned>(used.role)];
  rte_eth_dev_callback_unregister(port, RTE_ETH_EVENT_INTR_LSC, on_lsc, ev);
  rte_eth_dev_callback_unregister(port, RTE_ETH_EVENT_QUEUE_STATE, on_event, ev);
  rte_eth_dev_stop(port);
  if (close) rte_eth_dev_close(port);
}

}  // namespace lockstep::dp
