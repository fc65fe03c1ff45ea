#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_memcpy.h>
#include <rte_ring_elem.h>

#include "compare/flow_key.h"
#include "compare/parse.h"

namespace lockstep::dp {

namespace {
constexpr Role kSideRole[] = {Role::ext, Role::pvm, Role::svm};  // by Side
constexpr uint64_t kHousekeepNs = 100'000'000;  // idle and linger expiry, 10 times a second
}

uint64_t Worker::tsc_to_ns(uint64_t cycles, uint64_t hz) {
  return cycles / hz * 1000000000ull + cycles % hz * 1000000000ull / hz;
}

Worker::Worker(const WorkerSetup& s, std::unique_ptr<Engine> engine)
    : s_(s), engine_(std::move(engine)) {
  for (unsigned r = 0; r < kRoleCount; ++r) {
    tx_[r].init(s_.port[r], s_.txq, s_.cfg->tx_retries, &st_.port[r],
                &st_.drops[static_cast<unsigned>(DpDrop::tx_full)], &g_capture_tap.ring[r]);
    if (s_.qos.egress[r] != nullptr) s_.qos.egress[r]->attach(s_.port[r], s_.txq, &st_.port[r]);
    if (s_.qos.handoff[r] != nullptr) handoff_[r].init(s_.qos.handoff[r], s_.qos.handoff_drops);
  }
  publish_interval_tsc_ = rte_get_tsc_hz() / 20;  // 50 ms
  replay_latency_ns_ = s_.cfg->checkpoint_latency_us * 1000;
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

void Worker::ingress(rte_mbuf* m, uint64_t now_ns) {
  // The PVM gets the original frame untouched; the SVM gets a private contiguous copy
  // that the engine may rewrite (ack/SACK/TSecr). No bytes are shared between the two.
  rte_mbuf* svm = private_copy(m);
  if (svm == nullptr) {
    bool too_long = m->pkt_len > s_.cfg->mbuf_data_room &&
                    (s_.jumbo_pool == nullptr || m->pkt_len > 65535u - RTE_PKTMBUF_HEADROOM);
    drop(m, too_long ? DpDrop::too_long : DpDrop::mirror_nomem);
    return;
  }
  bool send_pvm = engine_->push(Side::ingress, reinterpret_cast<uint64_t>(svm),
                                rte_pktmbuf_mtod(svm, uint8_t*), svm->pkt_len, now_ns);
  if (send_pvm)
    out(Role::pvm, m, sched::Role::proxy, now_ns);
  else
    drop(m, DpDrop::pvm_not_mirrored);
}

void Worker::from_vm(Side side, rte_mbuf* m, uint64_t now_ns) {
  rte_mbuf* c = contiguous(m);
  if (c == nullptr) {
    ++st_.drops[static_cast<unsigned>(DpDrop::too_long)];
    return;
  }
  engine_->push(side, reinterpret_cast<uint64_t>(c), rte_pktmbuf_mtod(c, uint8_t*), c->pkt_len,
                now_ns);
}

// One RX burst of ext, pvm or svm frames this worker owns (no steering) into the engine
// at once (Engine::push_burst: parsed, hashed and prefetched together), with the same
// outcome as ingress()/from_vm() per frame. The PVM copies of client frames go out after
// the burst, in order, before the poll's TX flush as before.
void Worker::engine_burst(Role r, rte_mbuf** bufs, unsigned n, uint64_t now_ns) {
  std::array<Engine::Input, kMaxBurst> in;
  std::array<rte_mbuf*, kMaxBurst> orig;
  std::array<bool, kMaxBurst> to_pvm;
  const Side side = r == Role::ext ? Side::ingress : r == Role::pvm ? Side::pvm : Side::svm;
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
    in[k++] = {side, reinterpret_cast<uint64_t>(c), rte_pktmbuf_mtod(c, uint8_t*), c->pkt_len};
  }
  engine_->push_burst(std::span<const Engine::Input>(in.data(), k), now_ns,
                      std::span<bool>(to_pvm.data(), k));
  if (side != Side::ingress) return;
  for (unsigned j = 0; j < k; ++j) {
    if (to_pvm[j])
      out(Role::pvm, orig[j], sched::Role::proxy, now_ns);
    else
      drop(orig[j], DpDrop::pvm_not_mirrored);
  }
}

void Worker::handle(Role r, rte_mbuf* m, uint64_t now_ns) {
  ++st_.frames;
  switch (r) {
    case Role::ext: ingress(m, now_ns); break;
    case Role::pvm: from_vm(Side::pvm, m, now_ns); break;
    case Role::svm: from_vm(Side::svm, m, now_ns); break;
    // Between the hosts the path gives no role: a scheduled port resolves `other` with
    // the role map (heartbeat, checkpoint, block replication, ...; qos_glue.h).
    case Role::host: out(Role::link, m, sched::Role::other, now_ns); break;
    case Role::link: out(Role::host, m, sched::Role::other, now_ns); break;
    case Role::count_: rte_pktmbuf_free(m); break;
  }
}

void Worker::dispatch_rx(Role r, rte_mbuf* m, uint64_t now_ns) {
  if (s_.count > 1 && !s_.steer_to.empty() && r != Role::host && r != Role::link) {
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
    if (role == kNoRole) {
      rte_pktmbuf_free(bufs[i]);
      continue;
    }
    handle(static_cast<Role>(role), bufs[i], now_ns);
  }
  return n;
}

void Worker::apply_actions(uint64_t now_ns) {
  uint32_t n;
  while ((n = engine_->drain(std::span<Action>(actions_))) > 0) {
    for (uint32_t i = 0; i < n; ++i) {
      const Action& a = actions_[i];
      auto* m = reinterpret_cast<rte_mbuf*>(a.handle);
      switch (a.kind) {
        case ActionKind::release:  // the SVM's own output only after failover to it
          out(Role::ext, m, a.side == Side::svm ? sched::Role::svm_output : sched::Role::proxy,
              now_ns);
          break;
        case ActionKind::forward_svm: out(Role::svm, m, sched::Role::proxy, now_ns); break;
        case ActionKind::free:
        case ActionKind::drop: rte_pktmbuf_free(m); break;
      }
    }
  }
}

void Worker::post_checkpoint_requests() {
  while (auto req = engine_->take_checkpoint_request()) {
    ReqMsg msg;
    msg.req = *req;
    msg.worker = s_.id;
    if (rte_ring_sp_enqueue_elem(s_.ctrl.from_worker, &msg, sizeof msg) != 0)
      ++st_.drops[static_cast<unsigned>(DpDrop::ctrl_ring_full)];
    else
      ++st_.checkpoint_requests_posted;
  }
}

void Worker::control_messages(uint64_t now_ns) {
  CtrlMsg m;
  while (rte_ring_sc_dequeue_elem(s_.ctrl.to_worker, &m, sizeof m) == 0) {
    switch (m.kind) {
      case CtrlMsg::checkpoint_done:
        // Every worker applies every checkpoint: it made the SVM a copy of the PVM for
        // all connections, whichever worker asked for it.
        engine_->checkpoint_done(engine_->epoch(), now_ns);
        ++st_.checkpoints_applied;
        break;
      case CtrlMsg::set_mode: engine_->set_mode(static_cast<Mode>(m.arg), now_ns); break;
      case CtrlMsg::failover: engine_->failover(static_cast<Survivor>(m.arg), now_ns); break;
      case CtrlMsg::apply_settings: {  // answered: the control side waits for every worker
        auto* snap = static_cast<SettingsSnapshot*>(const_cast<void*>(m.settings));
        auto& answer = snap->answers[s_.id];
        std::string err;
        if (engine_->apply_settings(snap->settings, err)) {
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
      case CtrlMsg::snapshot_conns: {  // an operator's `conns`: bounded, off the packet path
        auto* snap = static_cast<ConnSnapshot*>(const_cast<void*>(m.settings)) + s_.id;
        engine_->list_connections(snap->conns, snap->limit);
        snap->done.store(true, std::memory_order_release);
        break;
      }
    }
  }
}

void Worker::flush_tx(uint64_t now_ns) {
  for (auto& t : tx_) t.flush();
  for (auto& h : handoff_) h.flush();
  for (QosEgress* e : s_.qos.egress)
    if (e != nullptr) e->service(now_ns);
}

unsigned Worker::poll_once(uint64_t now_ns) {
  uint64_t t0 = rte_rdtsc();
  control_messages(now_ns);
  if (s_.qos.hub != nullptr) s_.qos.hub->poll_messages(now_ns);
  unsigned handled = 0;
  if (s_.reads_rx) {
    std::array<rte_mbuf*, kMaxBurst> bufs;
    for (unsigned r = 0; r < kRoleCount; ++r) {
      if (s_.port[r] < 0) continue;
      for (uint16_t q = s_.rxq_first[r]; q < s_.rxq_first[r] + s_.rxq_count[r]; ++q) {
        uint16_t n = rte_eth_rx_burst(static_cast<uint16_t>(s_.port[r]), q, bufs.data(),
                                      static_cast<uint16_t>(s_.cfg->burst));
        if (n == 0) continue;
        auto& pc = st_.port[r];
        pc.rx += n;
        // `capture start` on this port: copies before the frames go anywhere (one load
        // per burst while no capture runs).
        if (g_capture_tap.ring[r].load(std::memory_order_relaxed) != nullptr)
          capture_burst(r, bufs.data(), n);
        for (uint16_t i = 0; i < n; ++i) {
          pc.rx_bytes += bufs[i]->pkt_len;
          bufs[i]->port = static_cast<uint16_t>(s_.port[r]);
        }
        const Role role = static_cast<Role>(r);
        const bool steering = s_.count > 1 && !s_.steer_to.empty();
        if (!steering && (role == Role::ext || role == Role::pvm || role == Role::svm)) {
          engine_burst(role, bufs.data(), n, now_ns);
        } else {
          for (uint16_t i = 0; i < n; ++i) dispatch_rx(role, bufs[i], now_ns);
        }
        handled += n;
        apply_actions(now_ns);
      }
    }
  }
  handled += steer_in(now_ns);
  if (engine_->due(now_ns) || now_ns >= next_housekeep_ns_) {
    engine_->advance(now_ns);
    next_housekeep_ns_ = now_ns + kHousekeepNs;
  }
  apply_actions(now_ns);
  post_checkpoint_requests();
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
  engine_->flush_all(now_ns);
  apply_actions(now_ns);
  flush_tx(now_ns);  // scheduled ports: what the shaping allows now; the rest is freed
  publish_stats();   // when the Dataplane finishes the QosHub (after every worker)
}

void Worker::publish_stats() {
  st_.engine = engine_->counters();
  st_.held_frames = engine_->held_frames();
  if (s_.slot) s_.slot->publish(st_);
}

// ---- clock=replay --------------------------------------------------------------------

uint64_t Worker::frame_ts_ns(const rte_mbuf* m) const {
  if (s_.timestamp_offset < 0 || !(m->ol_flags & s_.timestamp_flag)) return 0;
  return *RTE_MBUF_DYNFIELD(m, s_.timestamp_offset, const rte_mbuf_timestamp_t*) * 1000ull;
}

void Worker::replay_collect_requests(uint64_t now_ns) {
  while (auto req = engine_->take_checkpoint_request()) {
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
  for (unsigned guard = 0; guard < 1000000; ++guard) {
    uint64_t d = engine_->next_deadline();
    uint64_t c = replay_pending_ ? replay_due_ns_ : UINT64_MAX;
    uint64_t e = d < c ? d : c;
    if (e > t_ns || e == UINT64_MAX) return;
    if (c <= d) {
      replay_pending_ = false;
      engine_->checkpoint_done(engine_->epoch(), c);
      ++replay_done_;
      ++st_.checkpoints_applied;
    } else {
      engine_->advance(d);
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
  constexpr Role kOrder[] = {Role::ext, Role::pvm, Role::svm};
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
        for (uint16_t k = 0; k < h.n; ++k) pc.rx_bytes += h.buf[k]->pkt_len;
      }
      if (h.pos == h.n) continue;
      uint64_t ts = frame_ts_ns(h.buf[h.pos]);
      if (best < 0 || ts < best_ts) best = i, best_ts = ts;
    }
    // host <-> link: forwarded as read, not part of the compare timeline.
    for (Role r : {Role::host, Role::link}) {
      int port = s_.port[static_cast<unsigned>(r)];
      if (port < 0) continue;
      std::array<rte_mbuf*, kMaxBurst> bufs;
      uint16_t n = rte_eth_rx_burst(static_cast<uint16_t>(port), 0, bufs.data(),
                                    static_cast<uint16_t>(s_.cfg->burst));
      st_.port[static_cast<unsigned>(r)].rx += n;
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
    if (engine_->held_frames() == 0 && !replay_pending_) break;
    uint64_t d = engine_->next_deadline();
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
