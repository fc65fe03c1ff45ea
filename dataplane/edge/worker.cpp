#include "dataplane/edge/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_memcpy.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <new>

#include "compare/flow_key.h"
#include "compare/parse.h"

namespace lockstep::dp {

namespace {
constexpr PortRole kSideRole[] = {PortRole::ext, PortRole::pvm, PortRole::svm};  // by Side
constexpr uint64_t kHousekeepNs = 100'000'000;  // idle and linger expiry, 10 times a second
}

uint64_t Worker::tsc_to_ns(uint64_t cycles, uint64_t hz) {
  return cycles / hz * 1000000000ull + cycles % hz * 1000000000ull / hz;
}

// ---- UnitClassifier ------------------------------------------------------------------

bool UnitClassifier::place(const std::vector<std::pair<uint64_t, unsigned>>& entries, size_t cap) {
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
  bool home = true;
  for (auto [k, v] : entries) {
    uint64_t i = slot(k);
    home = home && slots_[i].key == ~0ull;
    while (slots_[i].key != ~0ull) i = (i + 1) & mask_;
    slots_[i] = Slot{k, static_cast<uint16_t>(v)};
  }
  return home;
}

void UnitClassifier::add(const UnitPlan& u, unsigned unit) {
  all_.emplace_back(u.vlan, unit);
  // Rebuilt at each add (start-up and guest add): at most a quarter full, and larger (up
  // to 16 slots a key) while some key is not at its home slot: then every lookup is one
  // probe, whose branch the CPU predicts.
  std::vector<std::pair<uint64_t, unsigned>> entries;
  for (const Slot& s : slots_)
    if (s.key != ~0ull) entries.emplace_back(s.key, s.unit);
  entries.emplace_back(key(u.has_mac ? u.mac.data() : nullptr, u.vlan), unit);
  size_t cap = 8;
  while (cap < entries.size() * 4) cap <<= 1;
  for (size_t c = cap;; c <<= 1) {
    if (place(entries, c)) return;
    if (c >= entries.size() * 16) break;
  }
  place(entries, cap);  // no size spreads them: the smallest, probing
}

void UnitClassifier::flood(int vid, std::vector<unsigned>& out) const {
  for (auto [vlan, unit] : all_)
    if (vlan < 0 || vlan == vid) out.push_back(unit);
}

// ---- Worker ---------------------------------------------------------------------------

Worker::Worker(const WorkerSetup& s, std::vector<std::unique_ptr<Engine>> engines) : s_(s) {
  units_.resize(engines.size());
  sink_.actions.reserve(8192);
  sink_.requests.reserve(kMaxGuests * 4);
  sink_.wake.assign(engines.size(), 0);
  for (size_t u = 0; u < engines.size(); ++u) {
    units_[u].engine = std::move(engines[u]);
    units_[u].port = s_.units[u].port;
    units_[u].guest = s_.units[u].guest;
    units_[u].engine->attach_sink(&sink_, static_cast<uint16_t>(u));
  }
  // Room for every guest there may be: a live add never reallocates what the stats slot
  // copies.
  st_.guests.reserve(kMaxGuests);
  st_.guests.resize(s_.guests);
  rebuild_ports();
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    tx_[r].init(s_.port[r], s_.txq, s_.cfg->tx_retries, &st_.port[r],
                &st_.drops[static_cast<unsigned>(DpDrop::tx_full)], &g_capture_tap.ring[r]);
  }
  for (unsigned p = 0; p < RTE_MAX_ETHPORTS; ++p) {
    QosEgress* e = s_.qos.egress[p];
    if (e != nullptr) e->attach(static_cast<int>(p), s_.txq, &st_.port[static_cast<unsigned>(e->role())]);
    if (s_.qos.handoff[p] != nullptr) handoff_[p].init(s_.qos.handoff[p], s_.qos.handoff_drops);
    if (e != nullptr || s_.qos.handoff[p] != nullptr) qos_ports_.push_back(static_cast<uint16_t>(p));
  }
  publish_interval_tsc_ = rte_get_tsc_hz() / 20;  // 50 ms
  replay_latency_ns_ = s_.cfg->checkpoint_latency_us * 1000;
}

void Worker::rebuild_ports() {
  port_info_.fill(PortInfo{});
  cls_.clear();
  for (unsigned r = 0; r < kPortRoleCount; ++r)
    if (s_.port[r] >= 0 && r >= kCompareRoles)
      port_info_[static_cast<unsigned>(s_.port[r])].role = static_cast<uint8_t>(r);
  for (unsigned u = 0; u < units_.size(); ++u) {
    if (!units_[u].engine) continue;  // a removed guest's
    for (unsigned r = 0; r < kCompareRoles; ++r) {
      const int p = units_[u].port[r];
      if (p < 0) continue;
      PortInfo& pi = port_info_[static_cast<unsigned>(p)];
      pi.role = static_cast<uint8_t>(r);
      if (pi.unit == -1) {
        pi.unit = static_cast<int16_t>(u);
      } else if (pi.unit >= 0) {  // a second NIC on this port: classified from now on
        cls_.emplace_back();
        cls_.back().add(s_.units[static_cast<unsigned>(pi.unit)], static_cast<unsigned>(pi.unit));
        cls_.back().add(s_.units[u], u);
        pi.cls = static_cast<uint16_t>(cls_.size() - 1);
        pi.unit = kClassified;
      } else {
        cls_[pi.cls].add(s_.units[u], u);
      }
      if (p != s_.port[r] &&
          std::find(other_ports_.begin(), other_ports_.end(), p) == other_ports_.end()) {
        other_ports_.push_back(p);
        tx_port_[static_cast<unsigned>(p)].init(
            p, s_.txq, s_.cfg->tx_retries, &st_.port[r],
            &st_.drops[static_cast<unsigned>(DpDrop::tx_full)], &g_capture_tap.ring[r]);
      }
    }
  }
}

void Worker::add_guest(GuestChange& c, uint64_t) {
  auto& engines = c.engines[s_.id];
  for (size_t n = 0; n < c.units.size() && n < engines.size(); ++n) {
    Unit u;
    u.engine = std::move(engines[n]);
    u.port = c.units[n].port;
    u.guest = c.guest;
    sink_.wake.push_back(0);
    u.engine->attach_sink(&sink_, static_cast<uint16_t>(units_.size()));
    units_.push_back(std::move(u));
    s_.units.push_back(c.units[n]);
  }
  if (st_.guests.size() <= c.guest) st_.guests.resize(c.guest + 1);  // within the reserve
  if (s_.reads_rx) {
    // RSS (every worker reads): queue `id` of each new port; software steering: worker 0
    // reads all of them.
    const bool rss = s_.count > 1 && s_.steer_to.empty() && s_.steer_from == nullptr;
    for (RxPort p : c.rx_add) {
      if (rss) p.rxq_first = static_cast<uint16_t>(s_.id), p.rxq_count = 1;
      s_.rx.push_back(p);
      s_.role_of_port[p.port] = static_cast<uint8_t>(p.role);
    }
  } else {
    for (const RxPort& p : c.rx_add) s_.role_of_port[p.port] = static_cast<uint8_t>(p.role);
  }
  // Its own schedulers: worker 0 owns them (and tells the hub it does), the others hand
  // their frames over.
  for (const QosHub::Added& a : c.qos_add) {
    if (s_.id == 0) {
      a.egress->attach(a.port, s_.txq, &st_.port[static_cast<unsigned>(a.role)]);
      s_.qos.egress[a.port] = a.egress;
      if (s_.qos.hub != nullptr) s_.qos.hub->attach_worker(a.sched, a.egress);
    } else {
      s_.qos.handoff[a.port] = a.handoff;
      handoff_[a.port].init(a.handoff, s_.qos.handoff_drops);
    }
    if (std::find(qos_ports_.begin(), qos_ports_.end(), a.port) == qos_ports_.end()) qos_ports_.push_back(a.port);
  }
  rebuild_ports();
}

void Worker::remove_guest(GuestChange& c, uint64_t now_ns) {
  // Its NICs' held output leaves as at shutdown (PVM output released, the SVM's and the
  // ingress copies dropped, counted) or, with --held drop, the PVM output is dropped too
  // (drops.guest_del_held); then the engines go; the units keep their index.
  GuestStats& gs = st_.guests[c.guest];
  DelFate del{c.held == HeldPolicy::drop, 0, 0};
  apply_actions(now_ns);  // what the engines decided before: as always
  for (auto& u : units_)
    if (u.engine && u.guest == c.guest) u.engine->flush_all(now_ns);
  // Every action in the sink now is the guest's flush.
  for (const Action& a : sink_.actions) route(a, now_ns, &del);
  sink_.actions.clear();
  take_requests();  // its checkpoint requests, as before
  const uint64_t released = del.released, dropped = del.dropped;
  gs.del_released += released;
  gs.del_dropped += dropped;
  c.released[s_.id] = released;
  c.dropped[s_.id] = dropped;
  flush_tx(now_ns);
  // Its own schedulers: what this worker released went in (or over the handoff ring);
  // from now on it does not use them. Worker 0 keeps their queues for the hub to retire.
  for (uint16_t port : c.qos_remove) {
    s_.qos.egress[port] = nullptr;
    s_.qos.handoff[port] = nullptr;
    qos_ports_.erase(std::remove(qos_ports_.begin(), qos_ports_.end(), port), qos_ports_.end());
  }
  publish_stats();  // the guest's final counters stay in its stats
  for (size_t i = 0; i < units_.size(); ++i) {
    if (!units_[i].engine || units_[i].guest != c.guest) continue;
    units_[i].engine.reset();
    sink_.wake[i] = UINT64_MAX;  // nothing of it is ever due (the poll looks no further)
  }
  for (uint16_t port : c.rx_remove) {
    s_.rx.erase(std::remove_if(s_.rx.begin(), s_.rx.end(), [port](const RxPort& p) { return p.port == port; }),
                s_.rx.end());
    s_.role_of_port[port] = kNoRole;
    other_ports_.erase(std::remove(other_ports_.begin(), other_ports_.end(), port), other_ports_.end());
  }
  rebuild_ports();
}

void Worker::service_control(uint64_t now_ns) {
  control_messages(now_ns);
  apply_actions(now_ns);
  flush_tx(now_ns);
}

void Worker::drop(rte_mbuf* m, DpDrop why) {
  ++st_.drops[static_cast<unsigned>(why)];
  rte_pktmbuf_free(m);
}

rte_mbuf* Worker::private_copy(const rte_mbuf* m) {
  uint32_t len = m->pkt_len;
  bool jumbo = len > s_.cfg->mbuf_data_room;
  if (jumbo && s_.jumbo_pool == nullptr) return nullptr;
  rte_mbuf* c = rte_pktmbuf_alloc(jumbo ? s_.jumbo_pool : s_.pool);
  if (c == nullptr) return nullptr;
  if (len > rte_pktmbuf_tailroom(c)) {
    rte_pktmbuf_free(c);
    return nullptr;
  }
  auto* dst = rte_pktmbuf_mtod(c, uint8_t*);
  const void* src = rte_pktmbuf_read(m, 0, len, dst);
  if (src != dst) rte_memcpy(dst, src, len);
  c->data_len = static_cast<uint16_t>(len);
  c->pkt_len = len;
  c->port = m->port;
  return c;
}

rte_mbuf* Worker::contiguous(rte_mbuf* m) {
  if (rte_pktmbuf_is_contiguous(m)) return m;
  if (rte_pktmbuf_linearize(m) == 0) return m;
  rte_mbuf* c = private_copy(m);
  rte_pktmbuf_free(m);
  return c;
}

void Worker::ingress(unsigned unit, rte_mbuf* m, uint64_t now_ns) {
  // The PVM gets the original frame untouched; the SVM gets a private contiguous copy
  // that the engine may rewrite (ack/SACK/TSecr). No bytes are shared between the two.
  rte_mbuf* svm = private_copy(m);
  if (svm == nullptr) {
    bool too_long = m->pkt_len > s_.cfg->mbuf_data_room &&
                    (s_.jumbo_pool == nullptr || m->pkt_len > 65535u - RTE_PKTMBUF_HEADROOM);
    drop(m, too_long ? DpDrop::too_long : DpDrop::mirror_nomem);
    return;
  }
  Unit& u = units_[unit];
  ++st_.guests[u.guest].frames;
  bool send_pvm = u.engine->push(Side::ingress, reinterpret_cast<uint64_t>(svm),
                                 rte_pktmbuf_mtod(svm, uint8_t*), svm->pkt_len, now_ns);
  if (send_pvm)
    out(PortRole::pvm, u.port[1], m, sched::TrafficRole::proxy, now_ns, u.guest);
  else
    drop(m, DpDrop::pvm_not_mirrored);
}

void Worker::from_vm(unsigned unit, Side side, rte_mbuf* m, uint64_t now_ns) {
  rte_mbuf* c = contiguous(m);
  if (c == nullptr) {
    ++st_.drops[static_cast<unsigned>(DpDrop::too_long)];
    return;
  }
  Unit& u = units_[unit];
  ++st_.guests[u.guest].frames;
  u.engine->push(side, reinterpret_cast<uint64_t>(c), rte_pktmbuf_mtod(c, uint8_t*), c->pkt_len,
                 now_ns);
}

// A compared port's RX burst into the units' engines, with the same outcome as
// ingress()/from_vm() per frame: `unit` null, all of it to unit `only` (a port of one
// NIC, Engine::push_burst); else frame i to unit[i] (a port shared by guest NICs, where
// a burst may carry one frame per engine: Engine::push_burst_multi, one call for all).
// The PVM copies of client frames go out after the engines, in order, before the poll's
// TX flush as before.
void Worker::compare_burst(PortRole r, rte_mbuf** bufs, unsigned n, const uint16_t* unit,
                           unsigned only, uint64_t now_ns) {
  // Left uninitialised: slot k is written whole before it is read (value-initialising
  // the array would cost a memset of KiBs per call).
  union Inputs {
    Inputs() {}
    Engine::Input at[kMaxBurst];
  } inputs;
  Engine::Input* in = inputs.at;
  std::array<rte_mbuf*, kMaxBurst> orig;
  std::array<bool, kMaxBurst> to_pvm;
  std::array<Engine*, kMaxBurst> engine;
  std::array<uint16_t, kMaxBurst> unit_of_input;
  const Side side = r == PortRole::ext ? Side::ingress : r == PortRole::pvm ? Side::pvm : Side::svm;
  unsigned k = 0;
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = bufs[i];
    ++st_.frames;
    rte_mbuf* c;
    if (side == Side::ingress) {
      c = private_copy(m);  // see ingress()
      if (c == nullptr) {
        bool too_long = m->pkt_len > s_.cfg->mbuf_data_room &&
                        (s_.jumbo_pool == nullptr || m->pkt_len > 65535u - RTE_PKTMBUF_HEADROOM);
        drop(m, too_long ? DpDrop::too_long : DpDrop::mirror_nomem);
        continue;
      }
      orig[k] = m;
    } else {
      c = contiguous(m);
      if (c == nullptr) {
        ++st_.drops[static_cast<unsigned>(DpDrop::too_long)];
        continue;
      }
    }
    const unsigned u = unit == nullptr ? only : unit[i];
    Unit& un = units_[u];
    ++st_.guests[un.guest].frames;
    engine[k] = un.engine.get();
    __builtin_prefetch(engine[k]);  // Engine::push_burst_multi reads it first
    unit_of_input[k] = static_cast<uint16_t>(u);
    new (&in[k++]) Engine::Input{side, reinterpret_cast<uint64_t>(c),
                                 rte_pktmbuf_mtod(c, uint8_t*), c->pkt_len};
  }
  if (unit == nullptr) {
    if (k > 0) units_[only].engine->push_burst(std::span<const Engine::Input>(in, k), now_ns,
                                               std::span<bool>(to_pvm.data(), k));
  } else {
    Engine::push_burst_multi(std::span<Engine* const>(engine.data(), k),
                             std::span<const Engine::Input>(in, k), now_ns,
                             std::span<bool>(to_pvm.data(), k));
  }
  if (side != Side::ingress) return;
  for (unsigned j = 0; j < k; ++j) {
    const Unit& u = units_[unit_of_input[j]];
    if (to_pvm[j])
      out(PortRole::pvm, u.port[1], orig[j], sched::TrafficRole::proxy, now_ns, u.guest);
    else
      drop(orig[j], DpDrop::pvm_not_mirrored);
  }
}

int Worker::unit_of(uint16_t port, PortRole r, rte_mbuf* m, uint64_t now_ns) {
  if (port >= RTE_MAX_ETHPORTS) return -1;
  const PortInfo& pi = port_info_[port];
  if (pi.unit >= 0) return pi.unit;
  if (pi.unit != kClassified) return -1;
  const auto* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  const UnitClassifier& c = cls_[pi.cls];
  if (r == PortRole::ext && len >= 14 && (f[0] & 1)) {
    // Broadcast or multicast from the clients (ARP, neighbour discovery): every NIC of
    // its VLAN on this port gets it, each a private copy.
    flood_.clear();
    c.flood(UnitClassifier::vlan_of(f, len), flood_);
    if (flood_.empty()) return -1;
    for (size_t i = 1; i < flood_.size(); ++i) {
      rte_mbuf* copy = private_copy(m);
      if (copy == nullptr) {
        ++st_.drops[static_cast<unsigned>(DpDrop::mirror_nomem)];
        continue;
      }
      ingress(flood_[i], copy, now_ns);
    }
    return static_cast<int>(flood_[0]);
  }
  return c.lookup(f, len, r == PortRole::ext);
}

void Worker::port_burst(const RxPort& p, rte_mbuf** bufs, unsigned n, uint64_t now_ns) {
  const bool steering = s_.count > 1 && !s_.steer_to.empty();
  const bool compared = p.role == PortRole::ext || p.role == PortRole::pvm || p.role == PortRole::svm;
  if (steering || !compared) {
    for (unsigned i = 0; i < n; ++i) dispatch_rx(p.role, bufs[i], now_ns);
    return;
  }
  const PortInfo& pi = port_info_[p.port];
  if (pi.unit >= 0) {
    compare_burst(p.role, bufs, n, nullptr, static_cast<unsigned>(pi.unit), now_ns);
    return;
  }
  // A shared port: each frame's unit first (the classifier reads each frame's MACs: their
  // lines are fetched for the whole burst first); unclassified frames are dropped here.
  for (unsigned i = 0; i < n; ++i) rte_prefetch0(rte_pktmbuf_mtod(bufs[i], const void*));
  std::array<rte_mbuf*, kMaxBurst> kept;
  std::array<uint16_t, kMaxBurst> unit;
  unsigned k = 0;
  for (unsigned i = 0; i < n; ++i) {
    const int u = unit_of(p.port, p.role, bufs[i], now_ns);
    if (u < 0) {
      ++st_.frames;
      drop(bufs[i], DpDrop::unclassified);
      continue;
    }
    kept[k] = bufs[i];
    unit[k++] = static_cast<uint16_t>(u);
  }
  if (k > 0) compare_burst(p.role, kept.data(), k, unit.data(), 0, now_ns);
}

void Worker::handle(PortRole r, rte_mbuf* m, uint64_t now_ns) {
  ++st_.frames;
  switch (r) {
    case PortRole::ext:
    case PortRole::pvm:
    case PortRole::svm: {
      const int u = unit_of(m->port, r, m, now_ns);
      if (u < 0) {
        drop(m, DpDrop::unclassified);
        break;
      }
      if (r == PortRole::ext)
        ingress(static_cast<unsigned>(u), m, now_ns);
      else
        from_vm(static_cast<unsigned>(u), r == PortRole::pvm ? Side::pvm : Side::svm, m, now_ns);
      break;
    }
    // Between the hosts the path gives no role: a scheduled port resolves `other` with
    // the role map (heartbeat, checkpoint, block replication, ...; qos_glue.h).
    case PortRole::host: out(PortRole::link, m, sched::TrafficRole::other, now_ns); break;
    case PortRole::link: out(PortRole::host, m, sched::TrafficRole::other, now_ns); break;
    case PortRole::count_: rte_pktmbuf_free(m); break;
  }
}

void Worker::dispatch_rx(PortRole r, rte_mbuf* m, uint64_t now_ns) {
  if (s_.count > 1 && !s_.steer_to.empty() && r != PortRole::host && r != PortRole::link) {
    // Software steering: the owner is flow_hash(canonical key) % workers. Fragments are
    // steered by addresses only (their ports are not in every fragment).
    unsigned owner = 0;
    ParsedFrame f;
    uint32_t len = rte_pktmbuf_data_len(m);
    if (parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), len, f) == ParseStatus::ok || f.is_ip()) {
      FlowKey k = flow_key_of(f);
      if (f.is_fragment) k.port_lo = k.port_hi = 0;
      owner = static_cast<unsigned>(flow_hash(k) % s_.count);
    }
    if (owner != s_.id) {
      if (rte_ring_sp_enqueue(s_.steer_to[owner], m) != 0) {
        drop(m, DpDrop::steer_full);
      } else {
        ++st_.steered_out;
      }
      return;
    }
  }
  handle(r, m, now_ns);
}

unsigned Worker::steer_in(uint64_t now_ns) {
  if (s_.steer_from == nullptr) return 0;
  std::array<rte_mbuf*, kMaxBurst> bufs;
  unsigned n = rte_ring_sc_dequeue_burst(s_.steer_from, reinterpret_cast<void**>(bufs.data()),
                                         s_.cfg->burst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    uint16_t p = bufs[i]->port;  // set by the reading worker (not every PMD sets it)
    uint8_t role = p < RTE_MAX_ETHPORTS ? s_.role_of_port[p] : kNoRole;
    if (role == kNoRole) {  // its guest was removed while it was on its way here
      drop(bufs[i], DpDrop::unclassified);
      continue;
    }
    handle(static_cast<PortRole>(role), bufs[i], now_ns);
  }
  return n;
}

void Worker::route(const Action& a, uint64_t now_ns, DelFate* del) {
  const Unit& u = units_[a.tag];
  auto* m = reinterpret_cast<rte_mbuf*>(a.handle);
  switch (a.kind) {
    case ActionKind::release:  // the SVM's own output only after failover to it
      if (del != nullptr && del->drop_held) {
        drop(m, DpDrop::guest_del_held);
        ++del->dropped;
        break;
      }
      if (del != nullptr) ++del->released;
      out(PortRole::ext, u.port[0], m,
          a.side == Side::svm ? sched::TrafficRole::svm_output : sched::TrafficRole::proxy, now_ns,
          u.guest);
      break;
    case ActionKind::forward_svm:
      out(PortRole::svm, u.port[2], m, sched::TrafficRole::proxy, now_ns, u.guest);
      break;
    case ActionKind::free:
    case ActionKind::drop: rte_pktmbuf_free(m); break;
  }
}

void Worker::take_requests() {
  // clock=replay: run_replay's simulated checkpointer takes the requests.
  if (s_.cfg->clock == ClockKind::replay) {
    sink_.requests.clear();
    return;
  }
  for (uint16_t tag : sink_.requests) {
    Unit& u = units_[tag];
    if (!u.engine) continue;
    while (auto req = u.engine->take_checkpoint_request()) {
      ReqMsg msg;
      msg.req = *req;
      msg.worker = s_.id;
      msg.guest = u.guest;
      if (rte_ring_sp_enqueue_elem(s_.ctrl.from_worker, &msg, sizeof msg) != 0) {
        ++st_.drops[static_cast<unsigned>(DpDrop::ctrl_ring_full)];
      } else {
        ++st_.checkpoint_requests_posted;
        ++st_.guests[u.guest].checkpoint_requests_posted;
      }
    }
  }
  sink_.requests.clear();
}

// What every engine decided since the last call, in the order decided (one queue for all
// the units: Engine::Sink), then their checkpoint requests posted to the control thread.
void Worker::apply_actions(uint64_t now_ns) {
  for (const Action& a : sink_.actions) route(a, now_ns);
  sink_.actions.clear();
  if (!sink_.requests.empty()) take_requests();
}

void Worker::control_messages(uint64_t now_ns) {
  CtrlMsg m;
  while (rte_ring_sc_dequeue_elem(s_.ctrl.to_worker, &m, sizeof m) == 0) {
    switch (m.kind) {
      case CtrlMsg::checkpoint_done: {
        // Every worker applies every checkpoint of the guest, on each of its NICs: it
        // made the SVM a copy of the PVM for all connections, whichever asked for it.
        bool any = false;
        for (auto& u : units_) {
          if (!u.engine || (m.guest != kAllGuests && u.guest != m.guest)) continue;
          u.engine->checkpoint_done(u.engine->epoch(), now_ns);
          any = true;
        }
        if (m.guest < st_.guests.size()) ++st_.guests[m.guest].checkpoints_applied;
        if (any) ++st_.checkpoints_applied;
        break;
      }
      case CtrlMsg::set_mode:
        for (auto& u : units_) {
          if (!u.engine || (m.guest != kAllGuests && u.guest != m.guest)) continue;
          u.engine->set_mode(static_cast<Mode>(m.arg), now_ns);
        }
        break;
      case CtrlMsg::failover:
        for (auto& u : units_) {
          if (!u.engine || (m.guest != kAllGuests && u.guest != m.guest)) continue;
          u.engine->failover(static_cast<Survivor>(m.arg), now_ns);
        }
        break;
      case CtrlMsg::apply_settings: {  // answered: the control side waits for every worker
        auto* snap = static_cast<SettingsSnapshot*>(const_cast<void*>(m.settings));
        auto& answer = snap->answers[s_.id];
        std::string err;
        bool ok = true;
        for (auto& u : units_) {
          if (!u.engine || (m.guest != kAllGuests && u.guest != m.guest)) continue;
          ok = u.engine->apply_settings(snap->settings, err) && ok;
        }
        if (ok) {
          ++st_.settings_applied;
          answer.state.store(SettingsSnapshot::applied, std::memory_order_release);
        } else {
          ++st_.settings_refused;
          answer.error = err;
          answer.state.store(SettingsSnapshot::refused, std::memory_order_release);
        }
        publish_stats();
        break;
      }
      case CtrlMsg::add_guest:
      case CtrlMsg::remove_guest: {
        auto* c = static_cast<GuestChange*>(const_cast<void*>(m.settings));
        if (m.kind == CtrlMsg::add_guest) add_guest(*c, now_ns);
        else remove_guest(*c, now_ns);
        c->done[s_.id].store(true, std::memory_order_release);
        break;
      }
      case CtrlMsg::snapshot_conns: {  // an operator's `conns`: bounded, off the packet path
        auto* snap = static_cast<ConnSnapshot*>(const_cast<void*>(m.settings)) + s_.id;
        for (auto& u : units_) {
          if (!u.engine || (m.guest != kAllGuests && u.guest != m.guest)) continue;
          if (snap->conns.size() >= snap->limit) break;
          std::vector<ConnInfo> part;
          u.engine->list_connections(part, snap->limit - snap->conns.size());
          snap->conns.insert(snap->conns.end(), part.begin(), part.end());
        }
        snap->done.store(true, std::memory_order_release);
        break;
      }
    }
  }
}

void Worker::flush_tx(uint64_t now_ns) {
  for (auto& t : tx_) t.flush();
  for (int p : other_ports_) tx_port_[static_cast<unsigned>(p)].flush();
  for (uint16_t p : qos_ports_) {
    if (s_.qos.handoff[p] != nullptr) handoff_[p].flush();
    if (QosEgress* e = s_.qos.egress[p]; e != nullptr) e->service(now_ns);
  }
}

unsigned Worker::poll_once(uint64_t now_ns) {
  uint64_t t0 = rte_rdtsc();
  control_messages(now_ns);
  if (s_.qos.hub != nullptr) s_.qos.hub->poll_messages(now_ns);
  unsigned handled = 0;
  if (s_.reads_rx) {
    std::array<rte_mbuf*, kMaxBurst> bufs;
    for (const RxPort& p : s_.rx) {
      const unsigned r = static_cast<unsigned>(p.role);
      for (uint16_t q = p.rxq_first; q < p.rxq_first + p.rxq_count; ++q) {
        uint16_t n = rte_eth_rx_burst(p.port, q, bufs.data(), static_cast<uint16_t>(s_.cfg->burst));
        if (n == 0) continue;
        auto& pc = st_.port[r];
        pc.rx += n;
        // `capture start` on this role: copies before the frames go anywhere (one load
        // per burst while no capture runs).
        if (g_capture_tap.ring[r].load(std::memory_order_relaxed) != nullptr)
          capture_burst(r, p.port, bufs.data(), n);
        for (uint16_t i = 0; i < n; ++i) {
          pc.rx_bytes += bufs[i]->pkt_len;
          bufs[i]->port = p.port;
        }
        port_burst(p, bufs.data(), n, now_ns);
        handled += n;
      }
    }
  }
  handled += steer_in(now_ns);
  const bool housekeep = now_ns >= next_housekeep_ns_;
  if (housekeep) next_housekeep_ns_ = now_ns + kHousekeepNs;
  for (size_t i = 0; i < units_.size(); ++i) {
    // The engines keep their wake times in the sink: no visit to a unit or its engine's
    // lines on a poll where nothing of it is due (a removed unit's is never).
    if (!housekeep && now_ns < sink_.wake[i]) continue;
    Unit& u = units_[i];
    if (!u.engine) continue;
    if (housekeep || u.engine->due(now_ns))
      u.engine->advance(now_ns);
    else
      sink_.wake[i] = u.engine->deadline_bound();  // exact now: due() walked
  }
  // Once a poll: every engine fed or advanced is visited once, whatever number of ports
  // and bursts fed it (with many guest NICs, a visit per burst cost more than the frames).
  apply_actions(now_ns);
  flush_tx(now_ns);
  uint64_t t1 = rte_rdtsc();
  ++st_.polls;
  if (handled) {
    st_.busy_cycles += t1 - t0;
  } else {
    st_.idle_cycles += t1 - t0;
  }
  if (t1 - last_publish_tsc_ > publish_interval_tsc_) {
    last_publish_tsc_ = t1;
    publish_stats();
  }
  return handled;
}

void Worker::run_tsc() {
  const uint64_t hz = rte_get_tsc_hz();
  while (!s_.stop->load(std::memory_order_relaxed)) poll_once(tsc_to_ns(rte_rdtsc(), hz));
}

void Worker::finish(uint64_t now_ns) {
  while (steer_in(now_ns) > 0) apply_actions(now_ns);
  control_messages(now_ns);
  for (auto& u : units_) {
    if (!u.engine) continue;
    u.engine->flush_all(now_ns);
  }
  apply_actions(now_ns);
  flush_tx(now_ns);  // scheduled ports: what the shaping allows now; the rest is freed
  publish_stats();   // when the Dataplane finishes the QosHub (after every worker)
}

void Worker::publish_stats() {
  if (units_.size() == 1 && units_[0].engine) {
    st_.engine = units_[0].engine->counters();
    st_.held_frames = units_[0].engine->held_frames();
    st_.guests[0].engine = st_.engine;
    st_.guests[0].held_frames = st_.held_frames;
  } else {
    // Per guest from its live NICs' engines; a removed guest keeps its last counters,
    // which still count in the worker's total.
    for (auto& u : units_)
      if (u.engine) st_.guests[u.guest].engine = Counters{}, st_.guests[u.guest].held_frames = 0;
    for (auto& u : units_) {
      if (!u.engine) continue;
      GuestStats& g = st_.guests[u.guest];
      g.engine += u.engine->counters();
      g.held_frames += u.engine->held_frames();
    }
    st_.engine = Counters{};
    st_.held_frames = 0;
    for (const auto& g : st_.guests) {
      st_.engine += g.engine;
      st_.held_frames += g.held_frames;
    }
  }
  if (s_.slot) s_.slot->publish(st_);
}

// ---- clock=replay --------------------------------------------------------------------

uint64_t Worker::frame_ts_ns(const rte_mbuf* m) const {
  if (s_.timestamp_offset < 0 || !(m->ol_flags & s_.timestamp_flag)) return 0;
  return *RTE_MBUF_DYNFIELD(m, s_.timestamp_offset, const rte_mbuf_timestamp_t*) * 1000ull;
}

void Worker::replay_collect_requests(uint64_t now_ns) {
  while (auto req = units_[0].engine->take_checkpoint_request()) {
    ++st_.checkpoint_requests_posted;
    if (!replay_pending_) {
      replay_pending_ = true;
      replay_due_ns_ = now_ns + replay_latency_ns_;
      ++replay_requested_;
    }
  }
}

void Worker::replay_events_until(uint64_t t_ns) {
  // Discrete events in virtual time up to t: engine deadlines and checkpoint completions,
  // earliest first. Bounded so that an engine that keeps a past deadline cannot hang us.
  Unit& u = units_[0];  // clock=replay: one guest, one NIC
  for (unsigned guard = 0; guard < 1000000; ++guard) {
    uint64_t d = u.engine->next_deadline();
    uint64_t c = replay_pending_ ? replay_due_ns_ : UINT64_MAX;
    uint64_t e = d < c ? d : c;
    if (e > t_ns || e == UINT64_MAX) return;
    if (c <= d) {
      replay_pending_ = false;
      u.engine->checkpoint_done(u.engine->epoch(), c);
      ++replay_done_;
      ++st_.checkpoints_applied;
      ++st_.guests[0].checkpoints_applied;
    } else {
      u.engine->advance(d);
    }
    apply_actions(e);
    replay_collect_requests(e);
  }
}

void Worker::run_replay() {
  struct Head {
    std::array<rte_mbuf*, kMaxBurst> buf{};
    uint16_t pos = 0, n = 0;
    bool eof = false;
  };
  constexpr PortRole kOrder[] = {PortRole::ext, PortRole::pvm, PortRole::svm};
  std::array<Head, 3> heads;
  uint64_t now = 0;
  for (;;) {
    int best = -1;
    uint64_t best_ts = 0;
    for (int i = 0; i < 3; ++i) {
      Head& h = heads[i];
      int port = s_.port[static_cast<unsigned>(kOrder[i])];
      if (h.pos == h.n && !h.eof) {
        h.pos = 0;
        h.n = port < 0 ? 0 : rte_eth_rx_burst(static_cast<uint16_t>(port), 0, h.buf.data(),
                                              static_cast<uint16_t>(s_.cfg->burst));
        if (h.n == 0) h.eof = true;  // net_pcap: an empty read is the end of the file
        auto& pc = st_.port[static_cast<unsigned>(kOrder[i])];
        pc.rx += h.n;
        for (uint16_t k = 0; k < h.n; ++k) {
          pc.rx_bytes += h.buf[k]->pkt_len;
          h.buf[k]->port = static_cast<uint16_t>(port);  // handle() finds the unit by port
        }
      }
      if (h.pos == h.n) continue;
      uint64_t ts = frame_ts_ns(h.buf[h.pos]);
      if (best < 0 || ts < best_ts) best = i, best_ts = ts;
    }
    // host <-> link: forwarded as read, not part of the compare timeline.
    for (PortRole r : {PortRole::host, PortRole::link}) {
      int port = s_.port[static_cast<unsigned>(r)];
      if (port < 0) continue;
      std::array<rte_mbuf*, kMaxBurst> bufs;
      uint16_t n = rte_eth_rx_burst(static_cast<uint16_t>(port), 0, bufs.data(),
                                    static_cast<uint16_t>(s_.cfg->burst));
      st_.port[static_cast<unsigned>(r)].rx += n;
      for (uint16_t k = 0; k < n; ++k) bufs[k]->port = static_cast<uint16_t>(port);
      for (uint16_t k = 0; k < n; ++k) handle(r, bufs[k], now);
    }
    if (best < 0 || s_.stop->load(std::memory_order_relaxed)) break;
    if (best_ts > now) now = best_ts;  // virtual time never goes back
    if (s_.qos.hub != nullptr) s_.qos.hub->poll_messages(now);  // live qos changes
    replay_events_until(now);
    Head& h = heads[static_cast<unsigned>(best)];
    uint64_t t0 = rte_rdtsc();
    handle(kOrder[best], h.buf[h.pos++], now);
    apply_actions(now);
    replay_collect_requests(now);
    flush_tx(now);
    st_.busy_cycles += rte_rdtsc() - t0;
  }
  // Inputs done (or stopped): free what was read but not handled.
  for (auto& h : heads)
    while (h.pos < h.n) rte_pktmbuf_free(h.buf[h.pos++]);
  // Virtual time runs on until nothing is held (or nothing more can happen).
  for (unsigned guard = 0; guard < 1000000; ++guard) {
    if (units_[0].engine->held_frames() == 0 && !replay_pending_) break;
    uint64_t d = units_[0].engine->next_deadline();
    uint64_t c = replay_pending_ ? replay_due_ns_ : UINT64_MAX;
    uint64_t e = d < c ? d : c;
    if (e == UINT64_MAX) break;
    if (e > now) now = e;
    replay_events_until(now);
  }
  flush_tx(now);
  publish_stats();
}

}  // namespace lockstep::dp
