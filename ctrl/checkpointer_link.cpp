#include "ctrl/checkpointer_link.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "ctrl/native_codec.h"
#include "ctrl/notify_codec.h"
#include "ctrl/qmp_client.h"
#include "ctrl/qmp_codec.h"
#include "ctrl/qmp_session.h"

namespace lockstep::ctrl {

std::string_view to_string(Dialect d) {
  switch (d) {
    case Dialect::native: return "native";
    case Dialect::qemu: return "qemu";
    case Dialect::qmp: return "qmp";
  }
  return "?";
}

bool dialect_from_string(std::string_view s, Dialect& out) {
  if (s == "native") {
    out = Dialect::native;
    return true;
  }
  if (s == "qemu" || s == "xen" || s == "notify") {
    out = Dialect::qemu;
    return true;
  }
  if (s == "qmp") {
    out = Dialect::qmp;
    return true;
  }
  return false;
}

Json LinkCounters::to_json() const {
  Json j;
#define LOCKSTEP_X(name, help) j[#name] = name;
  LOCKSTEP_LINK_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  return j;
}

struct CheckpointCoordinator::Impl {
  Impl(LinkConfig lc, EventQueue& ev, FailoverController& fo, std::atomic<bool>& up_flag)
      : cfg(std::move(lc)),
        events(ev),
        failover(fo),
        up(up_flag),
        fsm(cfg.policy, monotonic_ns(), cfg.first_epoch),
        ndec(cfg.max_message),
        qdec(cfg.vnet_hdr, std::min(cfg.max_message, kNotifyMaxPayload)),
        qmpdec(cfg.max_message),
        qmp(cfg.qmp_answer_timeout_ns, cfg.qmp_poll_ns),
        backoff_ns(cfg.reconnect_ns) {}

  LinkConfig cfg;
  EventQueue& events;
  FailoverController& failover;
  std::atomic<bool>& up;

  mutable std::mutex mu;  // everything below; the thread holds it while it works
  CheckpointFsm fsm;
  HeartbeatMonitor monitor;
  LinkCounters c;
  std::vector<CheckpointRequest> inbox;
  std::vector<std::pair<std::string, uint64_t>> beats;
  Endpoint bound;

  Fd listen_fd, conn;
  bool connecting = false;
  bool hello_done = false;
  bool failover_sent = false;
  NativeDecoder ndec;
  NotifyDecoder qdec;
  QmpDecoder qmpdec;
  QmpSession qmp;
  uint64_t backoff_ns;              // qmp: the current reconnect interval
  bool failover_from_qemu = false;  // qmp: QEMU left COLO by itself; tell it nothing
  std::thread secondary;            // qmp: x-colo-lost-heartbeat to the SVM's QEMU
  std::string secondary_result;
  // qmp: the last event and how long after QEMU stamped it it arrived (wall clock;
  // through libvirt events take a longer path than replies).
  std::string last_event;
  int64_t last_event_lag_us = 0;
  std::string out;
  size_t out_pos = 0;
  uint64_t next_reconnect = 0, next_heartbeat = 0, hb_seq = 0, connected_since = 0;
  std::string peer_name, last_error;
  uint32_t peer_version = 0;
  std::vector<std::string> peer_caps;

  int wake = -1;
  std::atomic<bool> stopping{false};
  std::thread thread;

  void run();
  void work(uint64_t now);
  void handle(std::vector<CheckpointFsm::Output>& outs, uint64_t now);
  void handle(std::vector<HeartbeatMonitor::Decision>& ds);
  void on_connected(Fd fd, uint64_t now);
  void disconnect(uint64_t now, const std::string& why);
  void send_bytes(const std::string& bytes, uint64_t now);
  void flush(uint64_t now);
  void on_readable(uint64_t now);
  void on_native(const NativeMessage& m, uint64_t now);
  void on_notify(NotifyMessage m, uint64_t now);
  void on_qmp(std::vector<QmpSession::Output>& outs, uint64_t now);
  void qmp_failover(Survivor s, uint64_t now);
  uint64_t retry_in() {
    if (cfg.dialect != Dialect::qmp) return cfg.reconnect_ns;
    uint64_t d = backoff_ns;
    backoff_ns = std::min(backoff_ns * 2, std::max(cfg.reconnect_max_ns, cfg.reconnect_ns));
    return d;
  }
  void event(EventKind k, uint64_t now, std::string detail, uint64_t epoch = 0) {
    Event e;
    e.kind = k;
    e.t_ns = now;
    e.epoch = epoch;
    e.peer = peer_name.empty() ? "checkpointer" : peer_name;
    e.detail = std::move(detail);
    events.push(std::move(e));
  }
};

CheckpointCoordinator::CheckpointCoordinator(LinkConfig cfg, EventQueue& events,
                                             FailoverController& failover)
    : impl_(std::make_unique<Impl>(std::move(cfg), events, failover, up_)) {
  Impl& m = *impl_;
  if (m.cfg.dialect == Dialect::native && !m.cfg.checkpointer_peer.name.empty()) {
    m.monitor.add_peer(m.cfg.checkpointer_peer, monotonic_ns());
  }
}

CheckpointCoordinator::~CheckpointCoordinator() { stop(); }

void CheckpointCoordinator::add_peer(const PeerConfig& p) {
  std::lock_guard lock(impl_->mu);
  impl_->monitor.add_peer(p, monotonic_ns());
}

bool CheckpointCoordinator::start(std::string& error) {
  Impl& m = *impl_;
  if (m.thread.joinable()) return true;
  m.bound = m.cfg.endpoint;
  if (m.cfg.listen) {
    m.listen_fd = listen_endpoint(m.cfg.endpoint, error, 0660);
    if (!m.listen_fd.valid()) return false;
    if (m.cfg.endpoint.kind == Endpoint::Kind::tcp) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (getsockname(m.listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET) m.bound.port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        if (ss.ss_family == AF_INET6) m.bound.port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
      }
    }
  }
  m.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m.wake < 0) {
    error = "eventfd failed";
    return false;
  }
  m.stopping = false;
  m.thread = std::thread([&m] { m.run(); });
  return true;
}

void CheckpointCoordinator::stop() {
  Impl& m = *impl_;
  if (m.thread.joinable()) {
    m.stopping = true;
    uint64_t one = 1;
    if (write(m.wake, &one, sizeof one) < 0) {
      // the thread also checks `stopping` at each poll timeout
    }
    m.thread.join();
  }
  if (m.secondary.joinable()) m.secondary.join();
  if (m.wake >= 0) close(m.wake);
  m.wake = -1;
  m.conn.reset();
  m.listen_fd.reset();
  up_ = false;
}

void CheckpointCoordinator::on_request(const CheckpointRequest& r) {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.inbox.size() < 4096) m.inbox.push_back(r);  // coalesced anyway: bound the queue
  }
  uint64_t one = 1;
  if (m.wake >= 0 && write(m.wake, &one, sizeof one) < 0) {
    // saturated counter: the thread is awake already
  }
}

void CheckpointCoordinator::beat(const std::string& peer, uint64_t seq) {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.beats.size() < 4096) m.beats.emplace_back(peer, seq);
  }
  uint64_t one = 1;
  if (m.wake >= 0 && write(m.wake, &one, sizeof one) < 0) {
    // saturated counter: the thread is awake already
  }
}

void CheckpointCoordinator::set_policy(const CheckpointPolicy& p) {
  std::lock_guard lock(impl_->mu);
  impl_->fsm.set_policy(p);
}

CheckpointPolicy CheckpointCoordinator::policy() const {
  std::lock_guard lock(impl_->mu);
  return impl_->fsm.policy();
}

uint64_t CheckpointCoordinator::epoch() const {
  std::lock_guard lock(impl_->mu);
  return impl_->fsm.epoch();
}

Endpoint CheckpointCoordinator::bound() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bound;
}

Json CheckpointCoordinator::status() const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  uint64_t now = monotonic_ns();
  Json j;
  j["dialect"] = to_string(m.cfg.dialect);
  j["endpoint"] = m.bound.to_string();
  j["role"] = m.cfg.listen ? "listen" : "connect";
  j["connected"] = m.hello_done && m.conn.valid();
  if (m.conn.valid() && m.hello_done) {
    j["connected_for_ms"] = (now - std::min(now, m.connected_since)) / 1000000;
    if (m.cfg.dialect == Dialect::native) {
      j["peer"] = {{"name", m.peer_name}, {"version", m.peer_version}, {"capabilities", m.peer_caps}};
    }
  }
  if (m.cfg.dialect == Dialect::qmp) {
    j["qemu"] = m.qmp.status_json();
    if (m.cfg.secondary_qmp) j["qemu"]["secondary_qmp"] = m.cfg.secondary_qmp->to_string();
    if (!m.secondary_result.empty()) j["qemu"]["secondary_lost_heartbeat"] = m.secondary_result;
    if (!m.last_event.empty()) {
      j["qemu"]["last_event"] = {{"name", m.last_event}, {"lag_us", m.last_event_lag_us}};
    }
  }
  if (!m.last_error.empty()) j["last_error"] = m.last_error;
  j["checkpoint"] = m.fsm.status_json(now);
  j["link"] = m.c.to_json();
  return j;
}

Json CheckpointCoordinator::peers() const {
  std::lock_guard lock(impl_->mu);
  return impl_->monitor.to_json(monotonic_ns());
}

void CheckpointCoordinator::metrics(std::vector<MetricSample>& out) const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  const auto& fc = m.fsm.counters();
#define LOCKSTEP_X(name, help)                                                          \
  add_sample(out, "lockstep_checkpointer_" #name "_total", help, MetricType::counter,  \
             static_cast<double>(fc.name));
  LOCKSTEP_CHECKPOINT_FSM_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
#define LOCKSTEP_X(name, help)                                                               \
  add_sample(out, "lockstep_checkpointer_link_" #name "_total", help, MetricType::counter,  \
             static_cast<double>(m.c.name));
  LOCKSTEP_LINK_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  add_sample(out, "lockstep_checkpointer_connected", "1 while the checkpointer link is up",
             MetricType::gauge, m.hello_done && m.conn.valid() ? 1 : 0,
             {{"dialect", std::string(to_string(m.cfg.dialect))}});
  add_sample(out, "lockstep_epoch", "the epoch not yet checkpointed", MetricType::gauge,
             static_cast<double>(m.fsm.epoch()));
  add_sample(out, "lockstep_checkpoint_outstanding", "1 while a checkpoint is asked or running",
             MetricType::gauge, m.fsm.state() == CheckpointFsm::State::idle ? 0 : 1);
  for (const auto& p : m.monitor.peers()) {
    Labels l{{"peer", p.cfg.name}};
    add_sample(out, "lockstep_peer_up", "1 while the peer's heartbeats arrive in time",
               MetricType::gauge, p.state == PeerState::up ? 1 : 0, l);
    add_sample(out, "lockstep_peer_heartbeats_total", "heartbeats received", MetricType::counter,
               static_cast<double>(p.beats), l);
    add_sample(out, "lockstep_peer_losses_total", "times the peer was declared lost",
               MetricType::counter, static_cast<double>(p.losses), l);
    add_sample(out, "lockstep_peer_flaps_total", "suspect peers that came back in time",
               MetricType::counter, static_cast<double>(p.flaps), l);
  }
}

// ---- the control thread -------------------------------------------------------------

void CheckpointCoordinator::Impl::run() {
  while (!stopping) {
    uint64_t now = monotonic_ns();
    uint64_t deadline;
    std::vector<pollfd> pfds;
    {
      std::lock_guard lock(mu);
      work(now);
      if (!cfg.listen && !conn.valid() && now >= next_reconnect) {
        bool in_progress = false;
        std::string error;
        Fd fd = connect_start(cfg.endpoint, in_progress, error);
        if (!fd.valid()) {
          ++c.connect_failures;
          last_error = error;
          next_reconnect = now + retry_in();
        } else if (in_progress) {
          conn = std::move(fd);
          connecting = true;
          next_reconnect = now + cfg.reconnect_ns;  // connect timeout
        } else {
          on_connected(std::move(fd), now);
        }
      }
      if (connecting && now >= next_reconnect + cfg.reconnect_ns * 4) {
        ++c.connect_failures;
        last_error = "connect timed out";
        conn.reset();
        connecting = false;
      }
      deadline = std::min({fsm.next_deadline(), monitor.next_deadline(),
                           uint64_t{now + 1'000'000'000}});
      if (cfg.dialect == Dialect::qmp && conn.valid() && !connecting) {
        deadline = std::min(deadline, qmp.next_deadline());
      }
      if (hello_done && cfg.dialect == Dialect::native && cfg.heartbeat_interval_ns != 0) {
        deadline = std::min(deadline, next_heartbeat);
      }
      if (!cfg.listen && !conn.valid()) deadline = std::min(deadline, next_reconnect);
      pfds.push_back({wake, POLLIN, 0});
      pfds.push_back({listen_fd.valid() ? listen_fd.get() : -1, POLLIN, 0});
      short cev = POLLIN;
      if (connecting || out_pos < out.size()) cev |= POLLOUT;
      pfds.push_back({conn.valid() ? conn.get() : -1, cev, 0});
    }
    int timeout_ms = deadline <= now ? 0 : static_cast<int>(std::min<uint64_t>((deadline - now + 999999) / 1000000, 1000));
    int rc = poll(pfds.data(), pfds.size(), timeout_ms);
    if (rc < 0 && errno != EINTR) break;
    if (pfds[0].revents & POLLIN) {
      uint64_t v;
      if (read(wake, &v, sizeof v) < 0) {
        // nothing to drain
      }
    }
    now = monotonic_ns();
    std::lock_guard lock(mu);
    if (pfds[1].revents & POLLIN) {
      int fd = accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        if (conn.valid()) {
          ++c.replaced;
          disconnect(now, "replaced by a new connection");
        }
        on_connected(Fd(fd), now);
      }
    }
    if (conn.valid() && pfds[2].fd == conn.get()) {
      short ev = pfds[2].revents;
      if (connecting && (ev & (POLLOUT | POLLERR | POLLHUP))) {
        std::string error;
        connecting = false;
        if (connect_finish(conn.get(), error)) {
          Fd fd = std::move(conn);
          on_connected(std::move(fd), now);
        } else {
          ++c.connect_failures;
          last_error = error;
          conn.reset();
          next_reconnect = now + retry_in();
        }
      } else if (!connecting) {
        if (ev & (POLLIN | POLLHUP | POLLERR)) on_readable(now);
        if (conn.valid() && (ev & POLLOUT)) flush(now);
      }
    }
  }
}

void CheckpointCoordinator::Impl::work(uint64_t now) {
  std::vector<CheckpointFsm::Output> outs;
  std::vector<HeartbeatMonitor::Decision> ds;
  bool failed_over = failover.survivor().has_value();
  for (const auto& r : inbox) {
    if (failed_over) {
      ++c.requests_after_failover;
    } else {
      fsm.request(r, now, outs);
    }
  }
  inbox.clear();
  for (const auto& [peer, seq] : beats) monitor.beat(peer, seq, now, ds);
  beats.clear();
  if (!failed_over) fsm.tick(now, outs);
  monitor.tick(now, ds);
  handle(outs, now);
  handle(ds);
  if (cfg.dialect == Dialect::qmp && conn.valid() && !connecting) {
    std::vector<QmpSession::Output> qo;
    qmp.tick(now, qo);
    on_qmp(qo, now);
  }
  if (cfg.dialect == Dialect::qmp && failover.survivor() && !failover_sent) {
    qmp_failover(*failover.survivor(), now);
  }
  if (failover.survivor() && !failover_sent && hello_done && cfg.dialect == Dialect::native) {
    failover_sent = true;
    send_bytes(encode_native(NativeMessage::failover(*failover.survivor(), "decided by lockstepd")), now);
  }
  if (hello_done && cfg.dialect == Dialect::native && cfg.heartbeat_interval_ns != 0 &&
      now >= next_heartbeat) {
    ++c.heartbeats_sent;
    send_bytes(encode_native(NativeMessage::heartbeat(++hb_seq, realtime_ns())), now);
    next_heartbeat = now + cfg.heartbeat_interval_ns;
  }
}

void CheckpointCoordinator::Impl::handle(std::vector<CheckpointFsm::Output>& outs, uint64_t now) {
  for (const auto& o : outs) {
    switch (o.kind) {
      case CheckpointFsm::OutKind::send_request:
        if (cfg.dialect == Dialect::native) {
          send_bytes(encode_native(NativeMessage::request(o.request, o.attempt)), now);
        } else if (cfg.dialect == Dialect::qmp) {
          std::vector<QmpSession::Output> qo;
          qmp.request_checkpoint(now, qo);
          on_qmp(qo, now);
        } else {
          send_bytes(encode_notify(NotifyMessage::do_checkpoint), now);
        }
        break;
      case CheckpointFsm::OutKind::checkpoint_done:
        event(EventKind::checkpoint_done, now, "", o.request.epoch);
        break;
      case CheckpointFsm::OutKind::timeout_alarm:
        event(EventKind::checkpoint_timeout, now,
              "checkpoint of epoch " + std::to_string(o.request.epoch) + " not done after " +
                  std::to_string(o.attempt) + " attempt(s); policy " +
                  std::string(to_string(fsm.policy().on_timeout)),
              o.request.epoch);
        break;
      case CheckpointFsm::OutKind::timeout_failover: {
        event(EventKind::checkpoint_timeout, now,
              "checkpoint of epoch " + std::to_string(o.request.epoch) +
                  " not done in time; policy failover",
              o.request.epoch);
        std::string error;
        failover.decide(fsm.policy().failover_survivor,
                        "checkpoint of epoch " + std::to_string(o.request.epoch) + " timed out",
                        now, error);
        break;
      }
    }
  }
  outs.clear();
}

void CheckpointCoordinator::Impl::handle(std::vector<HeartbeatMonitor::Decision>& ds) {
  for (auto& d : ds) {
    uint64_t t = d.event.t_ns;
    std::string peer = d.event.peer;
    events.push(d.event);
    if (d.failover) {
      std::string error;
      failover.decide(*d.failover, "peer " + peer + " lost", t, error);
    }
  }
  ds.clear();
}

void CheckpointCoordinator::Impl::on_connected(Fd fd, uint64_t now) {
  conn = std::move(fd);
  connecting = false;
  if (cfg.dialect != Dialect::qmp) ++c.connects;  // qmp: once QEMU greeted (on_qmp, up)
  connected_since = now;
  hello_done = false;
  failover_sent = false;
  ndec = NativeDecoder(cfg.max_message);
  qdec = NotifyDecoder(cfg.vnet_hdr, std::min(cfg.max_message, kNotifyMaxPayload));
  qmpdec = QmpDecoder(cfg.max_message);
  qmp.reset(now);
  out.clear();
  out_pos = 0;
  peer_name.clear();
  if (cfg.dialect == Dialect::native) {
    NativeMessage h =
        NativeMessage::hello("lockstepd", cfg.name, {"checkpoint", "heartbeat", "failover", "begin"});
    h.epoch = fsm.epoch();
    send_bytes(encode_native(h), now);
  }
}

void CheckpointCoordinator::Impl::disconnect(uint64_t now, const std::string& why) {
  if (!conn.valid()) return;
  conn.reset();
  connecting = false;
  // qmp: a connection given up before QEMU's greeting (a libvirt bridge that could not
  // reach the domain, a socket that never greeted) is a failed connect.
  if (cfg.dialect == Dialect::qmp && !hello_done) {
    ++c.connect_failures;
  } else {
    ++c.disconnects;
  }
  last_error = why;
  if (hello_done) event(EventKind::checkpointer_down, now, why);
  hello_done = false;
  up = false;
  fsm.link_down();
  if (cfg.dialect == Dialect::qmp) qmp.reset(now);  // nothing pending survives the connection
  out.clear();
  out_pos = 0;
  next_reconnect = now + retry_in();
}

void CheckpointCoordinator::Impl::send_bytes(const std::string& bytes, uint64_t now) {
  if (!conn.valid() || connecting) return;
  if (out.size() - out_pos + bytes.size() > cfg.max_out_backlog) {
    ++c.backlog_overflow;
    disconnect(now, "checkpointer does not read (backlog full)");
    return;
  }
  ++c.messages_out;
  out += bytes;
  flush(now);
}

void CheckpointCoordinator::Impl::flush(uint64_t now) {
  if (out_pos < out.size()) {
    long n = write_some(conn.get(), out.data() + out_pos, out.size() - out_pos);
    if (n < 0) {
      disconnect(now, "write failed");
      return;
    }
    out_pos += static_cast<size_t>(n);
  }
  if (out_pos == out.size()) {
    out.clear();
    out_pos = 0;
  }
}

void CheckpointCoordinator::Impl::on_readable(uint64_t now) {
  char buf[16384];
  for (int rounds = 0; rounds < 16 && conn.valid(); ++rounds) {
    ssize_t n = recv(conn.get(), buf, sizeof buf, 0);
    if (n == 0) {
      disconnect(now, "closed by the checkpointer");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) disconnect(now, "read failed");
      break;
    }
    if (cfg.dialect == Dialect::native) {
      ndec.push(buf, static_cast<size_t>(n));
      NativeMessage msg;
      for (;;) {
        NativeStatus st = ndec.next(msg);
        if (st == NativeStatus::need_more) break;
        if (st == NativeStatus::oversize) {
          ++c.oversize;
          disconnect(now, "oversized frame from the checkpointer");
          return;
        }
        if (st == NativeStatus::invalid) {
          ++c.protocol_errors;
          last_error = "invalid message: " + ndec.last_error();
          continue;
        }
        ++c.messages_in;
        on_native(msg, now);
        if (!conn.valid()) return;
      }
    } else if (cfg.dialect == Dialect::qmp) {
      qmpdec.push(buf, static_cast<size_t>(n));
      QmpMessage msg;
      for (;;) {
        QmpStatus st = qmpdec.next(msg);
        if (st == QmpStatus::need_more) break;
        if (st == QmpStatus::oversize) {
          ++c.oversize;
          disconnect(now, "QMP: " + qmpdec.last_error());
          return;
        }
        if (st == QmpStatus::invalid) {
          ++c.protocol_errors;
          last_error = "invalid QMP message: " + qmpdec.last_error();
          continue;
        }
        ++c.messages_in;
        if (msg.kind == QmpKind::event && msg.timestamp_us != 0) {
          last_event = msg.event;
          last_event_lag_us = static_cast<int64_t>(realtime_ns() / 1000) -
                              static_cast<int64_t>(msg.timestamp_us);
        }
        std::vector<QmpSession::Output> qo;
        qmp.on_message(msg, now, qo);
        on_qmp(qo, now);
        if (!conn.valid()) return;
      }
    } else {
      qdec.push(buf, static_cast<size_t>(n));
      NotifyMessage msg;
      for (;;) {
        NotifyStatus st = qdec.next(msg);
        if (st == NotifyStatus::need_more) break;
        if (st == NotifyStatus::oversize) {
          ++c.oversize;
          disconnect(now, "oversized frame from the checkpointer");
          return;
        }
        if (st == NotifyStatus::unknown) {
          ++c.protocol_errors;
          last_error = "unsupported instruction";
          continue;
        }
        ++c.messages_in;
        on_notify(msg, now);
        if (!conn.valid()) return;
      }
    }
  }
}

void CheckpointCoordinator::Impl::on_native(const NativeMessage& m, uint64_t now) {
  std::vector<CheckpointFsm::Output> outs;
  std::vector<HeartbeatMonitor::Decision> ds;
  if (m.type != NativeType::hello && !hello_done) {
    ++c.protocol_errors;
    last_error = "message before hello: " + std::string(to_string(m.type));
    return;
  }
  switch (m.type) {
    case NativeType::hello:
      if (hello_done) {
        ++c.protocol_errors;
        last_error = "second hello";
        return;
      }
      if (m.version != kNativeVersion) {
        ++c.version_mismatch;
        send_bytes(encode_native(NativeMessage::error(
                       "unsupported version " + std::to_string(m.version) + "; this is " +
                       std::to_string(kNativeVersion))),
                   now);
        flush(now);
        disconnect(now, "checkpointer speaks version " + std::to_string(m.version));
        return;
      }
      hello_done = true;
      up = true;
      peer_name = m.name;
      peer_version = m.version;
      peer_caps = m.capabilities;
      next_heartbeat = now;
      event(EventKind::checkpointer_up, now, "native v" + std::to_string(m.version));
      fsm.link_up(now, outs);
      break;
    case NativeType::checkpoint_begin: fsm.begin(m.epoch, now); break;
    case NativeType::checkpoint_done: fsm.done(m.epoch, now, outs); break;
    case NativeType::heartbeat:
      ++c.heartbeats_in;
      if (!cfg.checkpointer_peer.name.empty()) {
        monitor.beat(cfg.checkpointer_peer.name, m.seq, now, ds);
      }
      break;
    case NativeType::failover: {
      ++c.failovers_from_peer;
      std::string error;
      failover.decide(m.survivor, "checkpointer: " + (m.cause.empty() ? "failover" : m.cause),
                      now, error);
      break;
    }
    case NativeType::error:
      ++c.protocol_errors;
      last_error = "checkpointer error: " + m.message;
      event(EventKind::alarm, now, last_error);
      break;
    case NativeType::checkpoint_request:
      ++c.protocol_errors;
      last_error = "checkpoint_request from the checkpointer";
      break;
  }
  handle(outs, now);
  handle(ds);
}

void CheckpointCoordinator::Impl::on_notify(NotifyMessage m, uint64_t now) {
  std::vector<CheckpointFsm::Output> outs;
  switch (m) {
    case NotifyMessage::proxy_init: {
      send_bytes(encode_notify(NotifyMessage::get_xen_init), now);
      if (!hello_done) {
        hello_done = true;
        up = true;
        event(EventKind::checkpointer_up, now, "notify_dev");
        fsm.link_up(now, outs);
      }
      break;
    }
    case NotifyMessage::colo_checkpoint: fsm.done(std::nullopt, now, outs); break;
    case NotifyMessage::get_xen_init:
    case NotifyMessage::do_checkpoint:
      ++c.protocol_errors;
      last_error = "unsupported instruction " + std::string(notify_text(m));
      break;
  }
  handle(outs, now);
}

void CheckpointCoordinator::Impl::on_qmp(std::vector<QmpSession::Output>& outs, uint64_t now) {
  std::vector<CheckpointFsm::Output> fo;
  for (auto& o : outs) {
    switch (o.kind) {
      case QmpSession::OutKind::send: send_bytes(o.text, now); break;
      case QmpSession::OutKind::up:
        ++c.connects;
        hello_done = true;
        up = true;
        backoff_ns = cfg.reconnect_ns;
        peer_name = "qemu";
        event(EventKind::checkpointer_up, now, "qmp, QEMU " + o.text);
        fsm.link_up(now, fo);
        break;
      case QmpSession::OutKind::begin: fsm.begin(fsm.epoch(), now); break;
      case QmpSession::OutKind::done: fsm.done(std::nullopt, now, fo); break;
      case QmpSession::OutKind::colo_exit: {
        event(EventKind::alarm, now, o.text);
        std::string error;
        if (!failover.survivor() && !qmp.lost_heartbeat_asked()) {
          ++c.failovers_from_qemu;
          failover_from_qemu = true;
          failover.decide(o.survivor, o.text, now, error);
        }
        break;
      }
      case QmpSession::OutKind::note: last_error = o.text; break;
      case QmpSession::OutKind::fail:
        if (hello_done) ++c.protocol_errors;
        disconnect(now, o.text);
        break;
    }
  }
  outs.clear();
  handle(fo, now);
}

// A failover decided (by anyone): the survivor's QEMU must leave COLO and run alone.
// Unless QEMU itself left COLO (COLO_EXIT), which needs no telling.
void CheckpointCoordinator::Impl::qmp_failover(Survivor s, uint64_t now) {
  if (failover_from_qemu) {
    failover_sent = true;
    return;
  }
  if (s == Survivor::primary) {
    if (!qmp.up() || !conn.valid()) return;  // told once the link is back
    failover_sent = true;
    std::vector<QmpSession::Output> qo;
    qmp.lost_heartbeat(now, qo);
    on_qmp(qo, now);
    return;
  }
  failover_sent = true;
  if (!cfg.secondary_qmp) {
    last_error = "failover to the secondary: no checkpointer.secondary_qmp to tell";
    event(EventKind::alarm, now, last_error);
    return;
  }
  ++c.lost_heartbeat_secondary;
  secondary_result = "sending";
  Endpoint ep = *cfg.secondary_qmp;
  uint64_t timeout = cfg.qmp_answer_timeout_ns;
  secondary = std::thread([this, ep, timeout] {
    Json reply;
    std::string error;
    bool ok = qmp_execute(ep, "x-colo-lost-heartbeat", Json(), timeout, reply, error);
    uint64_t t = monotonic_ns();
    std::lock_guard lock(mu);
    secondary_result = ok ? "done" : "failed: " + error;
    event(EventKind::alarm, t,
          ok ? "SVM's QEMU took over (x-colo-lost-heartbeat)"
             : "x-colo-lost-heartbeat to the SVM's QEMU failed: " + error);
  });
}

}  // namespace lockstep::ctrl
