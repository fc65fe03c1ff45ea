#include "dataplane/qos/qos_glue.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ring_elem.h>

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

std::unique_ptr<QosHub> QosHub::create(const Config& cfg, const std::array<int, kPortRoleCount>& port,
                                       unsigned workers, std::string& error) {
  bool any = false;
  for (unsigned r = 0; r < kPortRoleCount; ++r) any = any || !cfg.qos[r].empty();
  if (!any) return nullptr;
  std::unique_ptr<QosHub> hub(new QosHub());
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
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (cfg.qos[r].empty()) continue;
    const std::string name(to_string(static_cast<PortRole>(r)));
    if (port[r] < 0) {
      error = "config key 'qos." + name + "': no port has this role (ports." + name + ")";
      return nullptr;
    }
    sched::QosConfig qc;
    std::string e;
    const sched::GuestNamesScope scope(hub->guest_names_);
    if (!build_qos_config(name, cfg.qos[r], hub->limits_, qc, e)) {
      error = "config key 'qos." + name + "': " + e;
      return nullptr;
    }
    hub->control_cfg_[r] = qc;
    hub->egress_[r] = std::make_unique<QosEgress>(static_cast<PortRole>(r), hub->limits_, qc);
    hub->egress_[r]->set_roles(&hub->roles_worker_);
    if (workers > 1) {
      const std::string rn = "ls_qos_ho_" + name;
      hub->handoff_[r] = rte_ring_create_elem(rn.c_str(), sizeof(QosHandoffElem), 4096,
                                              SOCKET_ID_ANY, RING_F_SC_DEQ);
      if (hub->handoff_[r] == nullptr) {
        error = "qos: cannot create the handoff ring of " + name + ": " + rte_strerror(rte_errno);
        return nullptr;
      }
      hub->egress_[r]->set_handoff(hub->handoff_[r]);
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
  for (auto* r : handoff_) rte_ring_free(r);
  rte_ring_free(msgs_);
}

QosWorkerLinks QosHub::links(unsigned worker) {
  QosWorkerLinks l;
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (!egress_[r]) continue;
    if (worker == 0) l.egress[r] = egress_[r].get();
    else l.handoff[r] = handoff_[r];
  }
  l.handoff_drops = &handoff_drops_;
  l.hub = worker == 0 ? this : nullptr;
  return l;
}

int QosHub::role_index(const std::string& port) const {
  PortRole r;
  if (!port_role_from_string(port, r)) return -1;
  const unsigned i = static_cast<unsigned>(r);
  return egress_[i] ? static_cast<int>(i) : -1;
}

std::vector<std::string> QosHub::ports() const {
  std::vector<std::string> out;
  for (unsigned r = 0; r < kPortRoleCount; ++r)
    if (egress_[r]) out.emplace_back(to_string(static_cast<PortRole>(r)));
  return out;
}

bool QosHub::config(const std::string& port, sched::QosConfig& out) const {
  std::lock_guard lk(mu_);
  const int i = role_index(port);
  if (i < 0) return false;
  out = control_cfg_[static_cast<unsigned>(i)];
  return true;
}

uint64_t QosHub::apply(const std::string& port, const std::string& command, std::string& error) {
  std::lock_guard lk(mu_);
  const int i = role_index(port);
  if (i < 0) {
    std::string known;
    for (const auto& p : ports()) known += (known.empty() ? "" : ", ") + p;
    error = "port '" + port + "' carries no scheduler (scheduled ports: " +
            (known.empty() ? std::string("none") : known) + "; add a qos: section for it)";
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
  const unsigned r = static_cast<unsigned>(i);
  sched::QosConfig next = control_cfg_[r];
  if (auto e = next.apply(pr.cmd, limits_); !e.empty()) {
    error = e;
    return 0;
  }
  // Snapshots worker 0 has acknowledged are no longer referenced.
  const uint64_t acked = applied_.load(std::memory_order_acquire);
  std::erase_if(published_, [&](const Published& p) { return p.generation <= acked; });
  Published pub{next_generation_, std::make_unique<sched::QosConfig>(next), nullptr};
  QosMsg m;
  m.kind = QosMsg::reconcile;
  m.role = r;
  m.generation = pub.generation;
  m.cfg = pub.cfg.get();
  if (rte_ring_sp_enqueue_elem(msgs_, &m, sizeof m) != 0) {
    error = "the port's worker is not taking configuration changes (control ring full); retry";
    return 0;
  }
  published_.push_back(std::move(pub));
  control_cfg_[r] = std::move(next);
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
  std::lock_guard lk(mu_);
  const int i = role_index(port);
  if (i < 0) {
    error = "port '" + port + "' carries no scheduler";
    return false;
  }
  const uint64_t asked = show_asked_.load(std::memory_order_relaxed);
  if (show_done_.load(std::memory_order_acquire) != asked) {
    error = "the previous show is still unanswered by the port's worker; retry";
    return false;
  }
  show_stats_ = stats;
  QosMsg m;
  m.kind = QosMsg::show;
  m.role = static_cast<uint32_t>(i);
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
  return true;
}

void QosHub::poll_messages(uint64_t now_ns) {
  QosMsg m;
  while (rte_ring_sc_dequeue_elem(msgs_, &m, sizeof m) == 0) {
    if (m.kind == QosMsg::role_map) {
      // Frames staged so far were tagged under the old map: enqueue them first.
      for (auto& eg : egress_)
        if (eg) eg->flush_staged(now_ns);
      roles_worker_ = *m.roles;
      for (auto& eg : egress_)
        if (eg) eg->count_roles_applied();
      applied_.store(m.generation, std::memory_order_release);
      continue;
    }
    QosEgress* e = m.role < kPortRoleCount ? egress_[m.role].get() : nullptr;
    if (m.kind == QosMsg::reconcile) {
      if (e != nullptr) e->reconcile(*m.cfg, now_ns);
      applied_.store(m.generation, std::memory_order_release);
      continue;
    }
    QosShowResult& s = show_;
    s = QosShowResult{};
    if (e != nullptr) {
      const sched::QosPort& qp = e->port();
      s.port = std::string(to_string(static_cast<PortRole>(m.role)));
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
  for (auto& e : egress_)
    if (e) e->drain_and_free(now_ns);
}

}  // namespace lockstep::dp
