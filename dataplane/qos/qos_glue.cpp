#include "dataplane/qos/qos_glue.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/hash_mix.h"
#include "dataplane/qos/qos_config.h"

namespace lockstep::dp {
namespace {

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The scheduler's per-connection value: the 5-tuple in the direction sent (each
// direction of a connection is its own flow on an egress port). Non-IP frames share 0.
uint64_t conn_of(const sched::FlowFields& f) {
  if (!f.is_ip) return 0;
  uint64_t h = mix64(load64(f.src.b.data()) ^ 0x9e3779b97f4a7c15ull);
  h = mix64(h ^ load64(f.src.b.data() + 8));
  h = mix64(h ^ load64(f.dst.b.data()));
  h = mix64(h ^ load64(f.dst.b.data() + 8));
  h = mix64(h ^ (uint64_t{f.sport} << 24 | uint64_t{f.dport} << 8 | f.proto));
  return h | 1;  // never 0: that one is non-IP
}

void sleep_a_little() { std::this_thread::sleep_for(std::chrono::microseconds(50)); }

uint64_t mono_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

// ---- QosEgress ------------------------------------------------------------------------

QosEgress::QosEgress(PortRole port_role, const sched::SchedConfig& limits,
                     const sched::QosConfig& initial)
    : role_(port_role), qos_(std::string(to_string(port_role)), limits) {
  if (auto e = qos_.reconcile(initial, 0); !e.empty()) ++ctr_.reconcile_errors;
}

void QosEgress::attach(int port_id, uint16_t txq, PortCounters* counters) {
  port_id_ = port_id;
  txq_ = txq;
  port_ctr_ = counters;
}

void QosEgress::enqueue_staged(uint64_t now_ns) {
  const uint32_t n = n_in_;
  if (n == 0) return;
  const sched::Classifier& cl = qos_.classifier();
  for (uint32_t i = 0; i < n; ++i) {
    rte_mbuf* m = in_[i];
    sched::FlowFields f = sched::Classifier::fields_of(
        rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
        static_cast<sched::TrafficRole>(in_role_[i]), in_guest_[i]);
    // Between the hosts the path gives no role: the role map does (same parse).
    if (f.role == sched::TrafficRole::other && roles_ != nullptr) f.role = roles_->resolve(f);
    ++ctr_.role_frames[static_cast<unsigned>(f.role)];
    pkts_[i] = sched::Packet{reinterpret_cast<uint64_t>(m), conn_of(f), m->pkt_len, cl.classify(f)};
  }
  const uint32_t refused = qos_.scheduler().enqueue_burst(
      std::span<const sched::Packet>(pkts_.data(), n), now_ns, std::span<uint64_t>(handles_));
  for (uint32_t i = 0; i < refused; ++i) rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(handles_[i]));
  ctr_.frames_in += n;
  ctr_.sched_refused += refused;
  n_in_ = 0;
}

unsigned QosEgress::transmit(uint64_t now_ns) {
  unsigned sent_total = 0;
  // Frames the device refused last time go first, in order.
  if (pend_n_ > 0) {
    const uint16_t sent = rte_eth_tx_burst(static_cast<uint16_t>(port_id_), txq_,
                                           pend_.data() + pend_first_, static_cast<uint16_t>(pend_n_));
    for (uint16_t i = 0; i < sent; ++i) ctr_.tx_bytes += pend_[pend_first_ + i]->pkt_len;
    pend_first_ += sent;
    pend_n_ -= sent;
    sent_total += sent;
    if (pend_n_ > 0) return sent_total;  // the device is still full
    pend_first_ = 0;
  }
  // A bounded number of bursts per poll, so that the worker's other ports get a turn.
  for (unsigned round = 0; round < 8; ++round) {
    const uint32_t n = qos_.scheduler().dequeue_burst(now_ns, std::span<uint64_t>(handles_));
    if (n == 0) break;
    for (uint32_t i = 0; i < n; ++i) pend_[i] = reinterpret_cast<rte_mbuf*>(handles_[i]);
    const uint16_t sent =
        rte_eth_tx_burst(static_cast<uint16_t>(port_id_), txq_, pend_.data(), static_cast<uint16_t>(n));
    for (uint16_t i = 0; i < sent; ++i) ctr_.tx_bytes += pend_[i]->pkt_len;
    sent_total += sent;
    if (sent < n) {
      pend_first_ = sent;
      pend_n_ = n - sent;
      ctr_.tx_deferred += pend_n_;
      break;
    }
    if (n < kQosBurst) break;
  }
  return sent_total;
}

unsigned QosEgress::service(uint64_t now_ns) {
  if (handoff_ != nullptr) {
    std::array<QosHandoffElem, kQosBurst> got;
    unsigned k;
    while ((k = rte_ring_sc_dequeue_burst_elem(handoff_, got.data(), sizeof(QosHandoffElem),
                                               kQosBurst, nullptr)) > 0) {
      ctr_.handed_off += k;
      for (unsigned i = 0; i < k; ++i) add(got[i].m, got[i].traffic(), now_ns, got[i].guest());
    }
  }
  enqueue_staged(now_ns);
  if (port_id_ < 0) return 0;
  const uint64_t before = ctr_.tx_bytes;
  const unsigned sent = transmit(now_ns);
  ctr_.tx_sent += sent;
  if (port_ctr_ != nullptr) {
    port_ctr_->tx += sent;
    port_ctr_->tx_bytes += ctr_.tx_bytes - before;
  }
  return sent;
}

void QosEgress::reconcile(const sched::QosConfig& target, uint64_t now_ns) {
  enqueue_staged(now_ns);  // staged frames are classified under the rules they came under
  if (auto e = qos_.reconcile(target, now_ns); !e.empty())
    ++ctr_.reconcile_errors;
  else
    ++ctr_.reconciles;
}

void QosEgress::drain_and_free(uint64_t now_ns) {
  if (handoff_ != nullptr) {
    QosHandoffElem e;
    while (rte_ring_sc_dequeue_elem(handoff_, &e, sizeof e) == 0) add(e.m, e.traffic(), now_ns, e.guest());
  }
  enqueue_staged(now_ns);
  for (uint32_t i = 0; i < pend_n_; ++i) rte_pktmbuf_free(pend_[pend_first_ + i]);
  ctr_.freed_at_stop += pend_n_;
  pend_n_ = pend_first_ = 0;
  qos_.scheduler().drain_all([this](uint64_t h) {
    rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(h));
    ++ctr_.freed_at_stop;
  });
}

void QosEgress::retire(bool drop, uint64_t now_ns) {
  if (handoff_ != nullptr) {
    QosHandoffElem e;
    while (rte_ring_sc_dequeue_elem(handoff_, &e, sizeof e) == 0) add(e.m, e.traffic(), now_ns, e.guest());
  }
  enqueue_staged(now_ns);
  // In order: what the device refused last, then the scheduler's queues.
  std::vector<rte_mbuf*> all(pend_.begin() + pend_first_, pend_.begin() + pend_first_ + pend_n_);
  pend_n_ = pend_first_ = 0;
  qos_.scheduler().drain_all([&all](uint64_t h) { all.push_back(reinterpret_cast<rte_mbuf*>(h)); });
  size_t done = 0;
  if (!drop && port_id_ >= 0) {
    for (unsigned idle = 0; done < all.size() && idle < 100; ++idle) {
      const auto n = static_cast<uint16_t>(std::min<size_t>(all.size() - done, kQosBurst));
      const uint16_t sent = rte_eth_tx_burst(static_cast<uint16_t>(port_id_), txq_, all.data() + done, n);
      for (uint16_t i = 0; i < sent; ++i) ctr_.tx_bytes += all[done + i]->pkt_len;
      if (port_ctr_ != nullptr) port_ctr_->tx += sent;
      ctr_.tx_sent += sent;
      ctr_.del_sent += sent;
      done += sent;
      if (sent > 0) idle = 0;
    }
  }
  for (size_t i = done; i < all.size(); ++i) rte_pktmbuf_free(all[i]);
  ctr_.del_dropped += all.size() - done;
}

// ---- QosHandoff -----------------------------------------------------------------------

void QosHandoff::flush() {
  if (n_ == 0) return;
  const unsigned k = rte_ring_mp_enqueue_burst_elem(ring_, buf_.data(), sizeof(QosHandoffElem), n_, nullptr);
  for (uint32_t i = k; i < n_; ++i) rte_pktmbuf_free(buf_[i].m);
  if (k < n_ && drops_ != nullptr)
    std::atomic_ref<uint64_t>(drops_->handoff_full).fetch_add(n_ - k, std::memory_order_relaxed);
  n_ = 0;
}

// ---- QosHub ---------------------------------------------------------------------------

void QosHub::set_guests(std::vector<std::string> names) {
  std::lock_guard lk(mu_);
  guest_names_ = std::move(names);
}

bool QosHub::add_scheduler(PortRole role, int port, int guest, const sched::QosConfig& qc,
                           unsigned workers, std::string& error, bool live_now, unsigned* index) {
  const std::string name(to_string(role));
  // A slot whose scheduler was retired and freed (its guest deleted, or an add undone)
  // is taken again: worker 0 reaches a slot only through its view (`live`), which it
  // cleared itself and sets again at attach_worker, so guests with schedulers may come
  // and go for the daemon's life; at most kMaxSched at once.
  unsigned reuse = kMaxSched;
  for (unsigned i = 0; i < sched_.size() && reuse == kMaxSched; ++i)
    if (sched_[i].removed) reuse = i;
  if (reuse == kMaxSched && sched_.size() >= kMaxSched) {
    error = "qos: at most " + std::to_string(kMaxSched) + " schedulers at once";
    return false;
  }
  Sched sc;
  sc.role = role;
  sc.port = port;
  sc.guest = guest;
  sc.control_cfg = qc;
  sc.egress = std::make_unique<QosEgress>(role, limits_, qc);
  sc.egress->set_roles(&roles_worker_);
  if (workers > 1) {
    // The role's first port's keeps its name; the others are named by their port id.
    const bool first = sched_.empty() || std::none_of(sched_.begin(), sched_.end(), [&](const Sched& o) {
                                            return o.role == role;
                                          });
    const std::string rn = first && guest == kTopLevel ? "ls_qos_ho_" + name : "ls_qos_ho_p" + std::to_string(port);
    sc.handoff = rte_ring_create_elem(rn.c_str(), sizeof(QosHandoffElem), 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (sc.handoff == nullptr) {
      error = "qos: cannot create the handoff ring of " + name + " (port " + std::to_string(port) +
              "): " + rte_strerror(rte_errno);
      return false;
    }
    sc.egress->set_handoff(sc.handoff);
  }
  if (reuse < sched_.size()) {
    // Member by member: `live` is worker 0's (null since the retirement).
    Sched& old = sched_[reuse];
    old.role = sc.role;
    old.port = sc.port;
    old.guest = sc.guest;
    old.first = false;
    old.del_sent = old.del_dropped = 0;
    old.egress = std::move(sc.egress);
    old.handoff = sc.handoff;
    old.control_cfg = std::move(sc.control_cfg);
    old.removed = false;
    if (index != nullptr) *index = reuse;
    return true;
  }
  if (live_now) sc.live = sc.egress.get();
  sched_.push_back(std::move(sc));  // reserved: the slots never move
  n_worker_.store(static_cast<unsigned>(sched_.size()), std::memory_order_release);
  if (index != nullptr) *index = static_cast<unsigned>(sched_.size() - 1);
  return true;
}

bool QosHub::add_guest(int guest, const GuestConfig& gc, const std::vector<QosGuestPort>& ports,
                       const std::vector<std::string>& names, unsigned workers, std::vector<Added>& out,
                       std::string& error) {
  std::lock_guard lk(mu_);
  out.clear();
  error.clear();
  guest_names_ = names;
  const sched::GuestNamesScope scope(guest_names_);
  std::vector<unsigned> made;
  for (unsigned r = 0; r < kCompareRoles; ++r) {
    if (gc.qos[r].empty()) continue;
    const std::string name(to_string(static_cast<PortRole>(r)));
    const std::string key = "config key 'guests." + gc.name + ".qos." + name + "'";
    sched::QosConfig qc;
    if (!build_guest_qos_config(gc.name, name, gc.qos[r], limits_, qc, error)) break;
    std::vector<int> mine;
    for (const QosGuestPort& gp : ports)
      if (static_cast<unsigned>(gp.role) == r && gp.port >= 0 &&
          std::find(mine.begin(), mine.end(), gp.port) == mine.end())
        mine.push_back(gp.port);
    for (int p : mine) {
      for (unsigned i = 0; i < sched_.size(); ++i)
        if (!sched_[i].removed && sched_[i].port == p) error = key + ": port " + std::to_string(p) + " already has a scheduler";
      if (!error.empty()) break;
      unsigned ix = 0;
      if (!add_scheduler(static_cast<PortRole>(r), p, guest, qc, workers, error, false, &ix)) break;
      made.push_back(ix);
      Sched& sc = sched_[ix];
      out.push_back(Added{ix, static_cast<uint16_t>(p), sc.role, sc.egress.get(), sc.handoff});
    }
    if (!error.empty()) break;
  }
  if (error.empty()) return true;
  // Nothing used them: marked removed and freed at once.
  for (unsigned i : made) {
    sched_[i].removed = true;
    rte_ring_free(sched_[i].handoff);
    sched_[i].handoff = nullptr;
    sched_[i].egress.reset();
  }
  out.clear();
  return false;
}

void QosHub::undo_add(int guest) {
  std::lock_guard lk(mu_);
  for (auto& sc : sched_) {
    if (sc.guest != guest || guest == kTopLevel || sc.removed || sc.live != nullptr) continue;
    sc.removed = true;
    rte_ring_free(sc.handoff);
    sc.handoff = nullptr;
    sc.egress.reset();
  }
}

std::unique_ptr<QosHub> QosHub::create(const Config& cfg, const std::array<int, kPortRoleCount>& port,
                                       const std::vector<QosGuestPort>& guest_ports, unsigned workers,
                                       std::string& error) {
  bool any = false;
  for (unsigned r = 0; r < kPortRoleCount; ++r) any = any || !cfg.qos[r].empty();
  for (const auto& g : cfg.guests) any = any || g.has_qos();
  // Many guests (or a daemon that may become so): a hub even without schedulers, so that
  // `guest add` can bring some.
  if (!any && cfg.guests.empty() && !cfg.qos_hub) return nullptr;
  std::unique_ptr<QosHub> hub(new QosHub());
  hub->sched_.reserve(kMaxSched);
  hub->limits_ = qos_limits(cfg.pool_mbufs);
  hub->guest_names_ = qos_guest_names(cfg);
  {
    const auto defaults = sched::default_role_rules(role_defaults_from(
        cfg.heartbeat.bind, cfg.heartbeat.send_to, cfg.checkpointer, cfg.link.endpoint));
    std::string e;
    if (!sched::build_role_map(cfg.qos_roles, defaults, hub->roles_control_, e)) {
      error = "config key 'qos.roles': " + e;
      return nullptr;
    }
    hub->roles_worker_ = hub->roles_control_;
  }
  const sched::GuestNamesScope scope(hub->guest_names_);
  // The top level's: the role's first port, every frame sent on it.
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (cfg.qos[r].empty()) continue;
    const std::string name(to_string(static_cast<PortRole>(r)));
    if (port[r] < 0) {
      error = "config key 'qos." + name + "': no port has this role (ports." + name + ")";
      return nullptr;
    }
    sched::QosConfig qc;
    std::string e;
    if (!build_qos_config(name, cfg.qos[r], hub->limits_, qc, e)) {
      error = "config key 'qos." + name + "': " + e;
      return nullptr;
    }
    unsigned ix = 0;
    if (!hub->add_scheduler(static_cast<PortRole>(r), port[r], kTopLevel, qc, workers, error,
                            true, &ix))
      return nullptr;
    hub->sched_[ix].first = true;
    // And every other port of the role that several guests' NICs share: their `guest
    // NAME` filters see the frames there too.
    if (r >= kCompareRoles) continue;
    std::vector<int> shared;
    for (const QosGuestPort& a : guest_ports) {
      if (static_cast<unsigned>(a.role) != r || a.port < 0 || a.port == port[r]) continue;
      if (std::find(shared.begin(), shared.end(), a.port) != shared.end()) continue;
      const bool several = std::any_of(guest_ports.begin(), guest_ports.end(), [&](const QosGuestPort& b) {
        return b.port == a.port && b.guest != a.guest;
      });
      if (several) shared.push_back(a.port);
    }
    for (int p : shared)
      if (!hub->add_scheduler(static_cast<PortRole>(r), p, kTopLevel, qc, workers, error)) return nullptr;
  }
  // The guests' own: each port of the role only the guest's NICs use.
  for (size_t g = 0; g < cfg.guests.size(); ++g) {
    const GuestConfig& gc = cfg.guests[g];
    for (unsigned r = 0; r < kCompareRoles; ++r) {
      if (gc.qos[r].empty()) continue;
      const std::string name(to_string(static_cast<PortRole>(r)));
      const std::string key = "config key 'guests." + gc.name + ".qos." + name + "'";
      sched::QosConfig qc;
      if (!build_guest_qos_config(gc.name, name, gc.qos[r], hub->limits_, qc, error)) return nullptr;
      std::vector<int> mine;
      for (const QosGuestPort& gp : guest_ports) {
        if (gp.guest != g || static_cast<unsigned>(gp.role) != r || gp.port < 0) continue;
        if (std::find(mine.begin(), mine.end(), gp.port) == mine.end()) mine.push_back(gp.port);
      }
      for (int p : mine) {
        for (const QosGuestPort& gp : guest_ports) {
          if (gp.port != p || gp.guest == g) continue;
          error = key + ": port " + std::to_string(p) + " is shared with guest '" +
                  (gp.guest < cfg.guests.size() ? cfg.guests[gp.guest].name : std::string("?")) +
                  "': a guest's own scheduler needs ports only its NICs use";
          return nullptr;
        }
        for (const Sched& sc : hub->sched_) {
          if (sc.port != p) continue;
          error = key + ": port " + std::to_string(p) + " already has a scheduler (qos." + name + ")";
          return nullptr;
        }
        if (!hub->add_scheduler(static_cast<PortRole>(r), p, static_cast<int>(g), qc, workers, error))
          return nullptr;
      }
    }
  }
  hub->msgs_ = rte_ring_create_elem("ls_qos_msgs", sizeof(QosMsg), 256, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (hub->msgs_ == nullptr) {
    error = std::string("qos: cannot create the control ring: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  return hub;
}

QosHub::~QosHub() {
  for (auto& sc : sched_) rte_ring_free(sc.handoff);
  rte_ring_free(msgs_);
}

QosWorkerLinks QosHub::links(unsigned worker) {
  QosWorkerLinks l;
  for (auto& sc : sched_) {
    if (sc.port < 0 || sc.port >= RTE_MAX_ETHPORTS || sc.removed) continue;
    const auto p = static_cast<unsigned>(sc.port);
    if (worker == 0) l.egress[p] = sc.egress.get();
    else l.handoff[p] = sc.handoff;
  }
  l.handoff_drops = &handoff_drops_;
  l.hub = worker == 0 ? this : nullptr;
  return l;
}

std::vector<unsigned> QosHub::find(int guest, const std::string& port) const {
  std::vector<unsigned> out;
  PortRole r;
  if (!port_role_from_string(port, r)) return out;
  for (unsigned i = 0; i < sched_.size(); ++i)
    if (sched_[i].guest == guest && sched_[i].role == r && !sched_[i].removed) out.push_back(i);
  return out;
}

std::string QosHub::guest_name(int guest) const {
  std::lock_guard lk(mu_);
  return guest_name_locked(guest);
}

std::string QosHub::guest_name_locked(int guest) const {
  if (guest < 0) return "";
  return static_cast<size_t>(guest) < guest_names_.size() ? guest_names_[static_cast<size_t>(guest)]
                                                          : "#" + std::to_string(guest);
}

std::string QosHub::no_scheduler(int guest, const std::string& port) const {
  std::string known;
  for (const auto& p : ports_locked(guest)) known += (known.empty() ? "" : ", ") + p;
  const bool none = std::all_of(sched_.begin(), sched_.end(), [](const Sched& sc) { return sc.removed; });
  if (guest == kTopLevel && none) return "no port carries a scheduler (add a qos: section to the configuration)";
  if (guest == kTopLevel)
    return "port '" + port + "' carries no scheduler (scheduled ports: " +
           (known.empty() ? std::string("none") : known) + "; add a qos: section for it)";
  const std::string g = guest_name_locked(guest);
  return "guest '" + g + "' has no scheduler of its own on '" + port + "' (its scheduled ports: " +
         (known.empty() ? std::string("none") : known) + "; guests." + g + ".qos." + port +
         " configures one; without -g the top level's qos." + port + ")";
}

std::vector<std::string> QosHub::ports(int guest) const {
  std::lock_guard lk(mu_);
  return ports_locked(guest);
}

std::vector<std::string> QosHub::ports_locked(int guest) const {
  std::vector<std::string> out;
  for (const auto& sc : sched_) {
    if (sc.guest != guest || sc.removed) continue;
    std::string n(to_string(sc.role));
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

std::vector<std::pair<int, std::string>> QosHub::schedulers() const {
  std::vector<std::pair<int, std::string>> out;
  std::lock_guard lk(mu_);
  for (const auto& sc : sched_) {
    if (sc.removed) continue;
    std::pair<int, std::string> k{sc.guest, std::string(to_string(sc.role))};
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(std::move(k));
  }
  return out;
}

bool QosHub::config(int guest, const std::string& port, sched::QosConfig& out) const {
  std::lock_guard lk(mu_);
  const auto ix = find(guest, port);
  if (ix.empty()) return false;
  out = sched_[ix.front()].control_cfg;
  return true;
}

uint64_t QosHub::apply(int guest, const std::string& port, const std::string& command, std::string& error) {
  std::lock_guard lk(mu_);
  const auto ix = find(guest, port);
  if (ix.empty()) {
    error = no_scheduler(guest, port);
    return 0;
  }
  sched::ParseResult pr;
  {
    const sched::GuestNamesScope scope(guest_names_);  // the guests served now
    pr = sched::parse_command(command);
  }
  if (!pr.ok) {
    error = pr.error;
    return 0;
  }
  if (pr.cmd.dev != port) {
    error = "device '" + pr.cmd.dev + "' is not port '" + port + "'";
    return 0;
  }
  // A guest's schedulers of one role are configured alike: checked on the first.
  sched::QosConfig next = sched_[ix.front()].control_cfg;
  if (auto e = next.apply(pr.cmd, limits_); !e.empty()) {
    error = e;
    return 0;
  }
  // Snapshots worker 0 has acknowledged are no longer referenced.
  const uint64_t acked = applied_.load(std::memory_order_acquire);
  std::erase_if(published_, [&](const Published& p) { return p.generation <= acked; });
  if (rte_ring_free_count(msgs_) < ix.size()) {
    error = "the port's worker is not taking configuration changes (control ring full); retry";
    return 0;
  }
  Published pub{next_generation_, std::make_unique<sched::QosConfig>(next), nullptr};
  for (unsigned i : ix) {
    QosMsg m;
    m.kind = QosMsg::reconcile;
    m.sched = i;
    m.generation = pub.generation;
    m.cfg = pub.cfg.get();
    m.last = i == ix.back() ? 1 : 0;
    rte_ring_sp_enqueue_elem(msgs_, &m, sizeof m);  // room checked above (one producer)
    sched_[i].control_cfg = next;
  }
  published_.push_back(std::move(pub));
  return next_generation_++;
}

uint64_t QosHub::apply_role(const std::string& command, std::string& error) {
  std::lock_guard lk(mu_);
  const sched::RoleParse p = sched::parse_role_command(command);
  if (!p.ok) {
    error = p.error;
    return 0;
  }
  sched::RoleMap next = roles_control_;
  if (auto e = sched::apply_role_command(next, p.cmd); !e.empty()) {
    error = e;
    return 0;
  }
  const uint64_t acked = applied_.load(std::memory_order_acquire);
  std::erase_if(published_, [&](const Published& pb) { return pb.generation <= acked; });
  Published pub{next_generation_, nullptr, std::make_unique<sched::RoleMap>(next)};
  QosMsg m;
  m.kind = QosMsg::role_map;
  m.generation = pub.generation;
  m.roles = pub.roles.get();
  if (rte_ring_sp_enqueue_elem(msgs_, &m, sizeof m) != 0) {
    error = "the ports' worker is not taking configuration changes (control ring full); retry";
    return 0;
  }
  published_.push_back(std::move(pub));
  roles_control_ = next;
  return next_generation_++;
}

sched::RoleMap QosHub::roles() const {
  std::lock_guard lk(mu_);
  return roles_control_;
}

bool QosHub::wait_applied(uint64_t generation, uint64_t timeout_ns) const {
  const uint64_t end = mono_ns() + timeout_ns;
  for (;;) {
    if (applied_.load(std::memory_order_acquire) >= generation) return true;
    if (mono_ns() >= end) return false;
    sleep_a_little();
  }
}

bool QosHub::show(const std::string& port, bool stats, uint64_t timeout_ns, QosShowResult& out,
                  std::string& error) {
  std::vector<QosShowResult> all;
  if (!show(kTopLevel, port, stats, timeout_ns, all, error)) return false;
  out = std::move(all.front());
  return true;
}

bool QosHub::show(int guest, const std::string& port, bool stats, uint64_t timeout_ns,
                  std::vector<QosShowResult>& out, std::string& error) {
  std::lock_guard lk(mu_);
  const auto ix = find(guest, port);
  if (ix.empty()) {
    error = no_scheduler(guest, port);
    return false;
  }
  out.clear();
  for (unsigned i : ix) {
    QosShowResult r;
    if (!show_one(i, stats, timeout_ns, r, error)) return false;
    out.push_back(std::move(r));
  }
  return true;
}

bool QosHub::show_one(unsigned i, bool stats, uint64_t timeout_ns, QosShowResult& out, std::string& error) {
  const uint64_t asked = show_asked_.load(std::memory_order_relaxed);
  if (show_done_.load(std::memory_order_acquire) != asked) {
    error = "the previous show is still unanswered by the port's worker; retry";
    return false;
  }
  show_stats_ = stats;
  QosMsg m;
  m.kind = QosMsg::show;
  m.sched = i;
  m.generation = asked + 1;
  show_asked_.store(asked + 1, std::memory_order_relaxed);
  if (rte_ring_sp_enqueue_elem(msgs_, &m, sizeof m) != 0) {
    show_asked_.store(asked, std::memory_order_relaxed);
    error = "the port's worker is not taking requests (control ring full); retry";
    return false;
  }
  const uint64_t end = mono_ns() + timeout_ns;
  while (show_done_.load(std::memory_order_acquire) != asked + 1) {
    if (mono_ns() >= end) {
      error = "the port's worker did not answer in time (is the dataplane running?)";
      return false;
    }
    sleep_a_little();
  }
  out = show_;
  out.guest = guest_name_locked(sched_[i].guest);
  out.port_id = sched_[i].port;
  out.role_first = sched_[i].first;
  return true;
}

std::vector<uint16_t> QosHub::own_ports(int guest) const {
  std::lock_guard lk(mu_);
  std::vector<uint16_t> out;
  for (const auto& sc : sched_)
    if (sc.guest == guest && guest != kTopLevel && !sc.removed && sc.port >= 0)
      out.push_back(static_cast<uint16_t>(sc.port));
  return out;
}

uint64_t QosHub::retire_guest(int guest, bool drop) {
  std::lock_guard lk(mu_);
  std::vector<unsigned> ix;
  for (unsigned i = 0; i < sched_.size(); ++i)
    if (sched_[i].guest == guest && guest != kTopLevel && !sched_[i].removed) ix.push_back(i);
  if (ix.empty()) return 0;
  const uint64_t gen = next_generation_++;
  for (unsigned i : ix) {
    QosMsg m;
    m.kind = drop ? QosMsg::retire_drop : QosMsg::retire_release;
    m.sched = i;
    m.last = i == ix.back() ? 1 : 0;
    m.generation = gen;
    // The ring has room for 256; a guest has at most 3 roles x 8 NICs of schedulers and
    // the control side waits for each change: retried until taken.
    while (rte_ring_sp_enqueue_elem(msgs_, &m, sizeof m) != 0) sleep_a_little();
  }
  return gen;
}

void QosHub::free_retired(int guest, uint64_t& sent, uint64_t& dropped) {
  std::lock_guard lk(mu_);
  sent = dropped = 0;
  for (auto& sc : sched_) {
    if (sc.guest != guest || guest == kTopLevel || sc.removed) continue;
    sent += sc.del_sent;
    dropped += sc.del_dropped;
    sc.removed = true;
    rte_ring_free(sc.handoff);
    sc.handoff = nullptr;
    sc.egress.reset();  // worker 0 dropped its view (live) before acknowledging
  }
}

void QosHub::poll_messages(uint64_t now_ns) {
  QosMsg m;
  while (rte_ring_sc_dequeue_elem(msgs_, &m, sizeof m) == 0) {
    if (m.kind == QosMsg::role_map) {
      // Frames staged so far were tagged under the old map: enqueue them first.
      const unsigned n = n_worker_.load(std::memory_order_acquire);
      for (unsigned i = 0; i < n; ++i)
        if (sched_[i].live != nullptr) sched_[i].live->flush_staged(now_ns);
      roles_worker_ = *m.roles;
      for (unsigned i = 0; i < n; ++i)
        if (sched_[i].live != nullptr) sched_[i].live->count_roles_applied();
      applied_.store(m.generation, std::memory_order_release);
      continue;
    }
    QosEgress* e = m.sched < n_worker_.load(std::memory_order_acquire) ? sched_[m.sched].live : nullptr;
    if (m.kind == QosMsg::retire_release || m.kind == QosMsg::retire_drop) {
      Sched& sc = sched_[m.sched];
      if (e != nullptr) {
        e->retire(m.kind == QosMsg::retire_drop, now_ns);
        sc.del_sent = e->counters().del_sent;
        sc.del_dropped = e->counters().del_dropped;
        sc.live = nullptr;
      }
      if (m.last != 0) applied_.store(m.generation, std::memory_order_release);
      continue;
    }
    if (m.kind == QosMsg::reconcile) {
      if (e != nullptr) e->reconcile(*m.cfg, now_ns);
      if (m.last != 0) applied_.store(m.generation, std::memory_order_release);
      continue;
    }
    QosShowResult& s = show_;
    s = QosShowResult{};
    if (e != nullptr) {
      const sched::QosPort& qp = e->port();
      s.port = std::string(to_string(e->role()));
      s.text = qp.show(show_stats_, now_ns);
      s.config = qp.config();
      s.port_stats = qp.scheduler().port_stats(now_ns);
      for (const auto& c : qp.config().classes)
        s.classes.push_back({c.name, qp.scheduler().class_stats(qp.class_id(c.name), now_ns)});
      s.glue = e->counters();
      s.glue.handoff_full = std::atomic_ref<uint64_t>(handoff_drops_.handoff_full).load(std::memory_order_relaxed);
      s.generation = applied_.load(std::memory_order_relaxed);
    }
    show_done_.store(m.generation, std::memory_order_release);
  }
}

void QosHub::finish(uint64_t now_ns) {
  poll_messages(now_ns);
  const unsigned n = n_worker_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i)
    if (sched_[i].live != nullptr) sched_[i].live->drain_and_free(now_ns);
}

}  // namespace lockstep::dp
