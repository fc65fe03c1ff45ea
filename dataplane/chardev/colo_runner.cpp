#include "dataplane/chardev/colo_runner.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "compare/engine.h"
#include "ctrl/json_limits.h"
#include "ctrl/notify_codec.h"
#include "dataplane/chardev/colo_ctrl.h"
#include "dataplane/chardev/chardev_codec.h"
#include "dataplane/chardev/frame_pool.h"
#include "dataplane/chardev/syn_align.h"

namespace lockstep::chardev {

namespace {

enum Tag : uint64_t { kPri = 0, kSec = 1, kOut = 2, kNotify = 3, kTimer = 4, kSignal = 5 };

constexpr size_t kStageBytes = 256 * 1024;  // per input socket
constexpr size_t kPumpBudget = 1 << 20;     // bytes read per input per wake-up (fairness)
constexpr uint32_t kDrainEvery = 128;       // frames between action drains
constexpr uint32_t kWriteBatch = 1024;      // frames per sendmsg at most
constexpr size_t kWriteBytes = 128 * 1024;  // outdev bytes copied per sendmsg at most
constexpr uint32_t kInlineFrame = 256;      // frames up to this long are copied to wbuf
constexpr size_t kWriteIov = 256;           // iovecs per sendmsg (runs and large frames)
constexpr size_t kNotifyBacklog = 64 * 1024;
constexpr int kCtrlServiceMs = 10;          // longest sleep with a ctrl socket

#define LOCKSTEP_RUNNER_COUNTERS(X)                                                   \
  X(do_checkpoint_sent, "DO_CHECKPOINT messages sent on notify_dev")                 \
  X(colo_checkpoint_in, "COLO_CHECKPOINT messages received")                         \
  X(proxy_init_in, "COLO_USERSPACE_PROXY_INIT hellos received (each answered)")      \
  X(notify_unknown, "notify_dev messages that are no known instruction")             \
  X(notify_oversize, "notify_dev frames over the bound (connection closed)")         \
  X(notify_backlog_closed, "notify_dev closed because the checkpointer did not read") \
  X(checkpoint_timeouts, "checkpoints not done within the checkpoint timeout")       \
  X(outdev_bytes_ignored, "bytes received on outdev (nothing is expected there)")    \
  X(unexpected_forward, "forward_svm actions (no ingress side here; freed)")

struct RunnerCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_RUNNER_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
};

struct InPort {
  InPort(std::string name, const PortSpec& spec, int ep, uint64_t tag, Side s, bool vnet)
      : port(std::move(name), spec, ep, tag),
        parser(vnet),
        side(s),
        stage(std::make_unique_for_overwrite<uint8_t[]>(kStageBytes)) {}
  SocketPort port;
  ChardevParser parser;
  Side side;
  std::unique_ptr<uint8_t[]> stage;
  size_t head = 0, tail = 0;
  uint32_t cur = kNoFrame;     // buffer being filled
  bool waiting_pool = false;   // a header is parsed, no buffer of its class is free
  bool paused_out = false;     // paused by the output queue
};

}  // namespace

struct ColoRunner::Impl final : ColoCtrl::Host {
  RunnerConfig cfg;
  std::unique_ptr<Engine> engine;
  FramePool pool;
  HandleRing outq;
  SynAligner aligner;
  ctrl::CheckpointFsm fsm;
  RunnerCounters c;
  int ep = -1, tfd = -1, sfd = -1;
  std::unique_ptr<InPort> pri, sec;
  std::unique_ptr<SocketPort> out, ntf;
  ctrl::NotifyDecoder ndec;
  std::string nout;
  size_t nout_pos = 0;
  uint32_t out_off = 0;  // bytes of outq.front() already written (header included)
  uint32_t gated = kNoFrame;  // SVM SYN/ACK waiting for the PVM's (filter_rewriter)
  uint64_t gated_since = 0;
  uint64_t armed = 0;
  bool stop = false;
  std::vector<Action> acts = std::vector<Action>(256);
  std::unique_ptr<uint8_t[]> wbuf = std::make_unique_for_overwrite<uint8_t[]>(kWriteBytes);
  std::array<iovec, kWriteIov> iov{};
  std::vector<ctrl::CheckpointFsm::Output> outs;
  ColoCtrl* ctl = nullptr;  // ctrl socket / metrics: null without them
  uint64_t next_service = 0;

  Impl(const RunnerConfig& rc, uint32_t small)
      : cfg(rc),
        pool(small, rc.jumbo_frames),
        outq(small + rc.jumbo_frames),
        aligner(static_cast<uint32_t>(std::min<uint64_t>(rc.settings.max_connections * 2, 1u << 24))),
        fsm(rc.policy, ctrl::monotonic_ns()),
        ndec(rc.vnet_hdr) {}

  ~Impl() override {
    if (ep >= 0) close(ep);
    if (tfd >= 0) close(tfd);
    if (sfd >= 0) close(sfd);
  }

  // ---- inputs --------------------------------------------------------------------
  bool blocked(InPort& ip) {
    if (ip.waiting_pool) {
      if (!pool.can_alloc(ip.parser.body_len())) return true;
      ip.waiting_pool = false;
    }
    // Both inputs pause: the PVM's so that its output stops growing, the SVM's so that it
    // does not run ahead of a PVM that is not read (its frames would wait in the engine).
    if (outq.size() >= cfg.out_queue_frames) {
      if (!ip.paused_out) {
        ip.paused_out = true;
        ++ip.port.c.backpressure;
      }
      return true;
    }
    ip.paused_out = false;
    return ip.side == Side::svm && gated != kNoFrame;
  }

  void drop_input(InPort& ip, uint64_t now, const char* why) {
    if (ip.cur != kNoFrame) {
      pool.free(ip.cur);
      ip.cur = kNoFrame;
    }
    if (ip.parser.in_body() || ip.head < ip.tail) ++ip.port.c.truncated;
    ip.parser.reset();
    ip.head = ip.tail = 0;
    ip.waiting_pool = false;
    ip.port.disconnect(now, why);
  }

  void on_connected(InPort& ip) {
    ip.parser.reset();
    ip.head = ip.tail = 0;
    ip.waiting_pool = false;
  }

  void push_svm(uint32_t h, uint64_t now) {
    const uint32_t v = pool.vnet_len(h);
    engine->push(Side::svm, h, pool.data(h) + v, pool.len(h) - v, now);
  }

  void try_ungate(uint64_t now, bool give_up) {
    if (gated == kNoFrame) return;
    const uint32_t v = pool.vnet_len(gated);
    if (!give_up && aligner.on_svm(pool.data(gated) + v, pool.len(gated) - v, true) == AlignVerdict::wait) {
      return;
    }
    if (give_up) aligner.give_up();
    const uint32_t h = gated;
    gated = kNoFrame;
    push_svm(h, now);
  }

  void deliver(InPort& ip, uint32_t h, uint64_t now) {
    ++ip.port.c.frames_in;
    const uint32_t v = pool.vnet_len(h);
    uint8_t* d = pool.data(h) + v;
    const uint32_t n = pool.len(h) - v;
    if (ip.side == Side::pvm) {
      if (cfg.filter_rewriter) aligner.on_pvm(d, n);
      engine->push(Side::pvm, h, d, n, now);
      if (gated != kNoFrame) try_ungate(now, false);
      return;
    }
    if (cfg.filter_rewriter && aligner.on_svm(d, n) == AlignVerdict::wait) {
      gated = h;
      gated_since = now;
      return;
    }
    engine->push(Side::svm, h, d, n, now);
  }

  void pump(InPort& ip, uint64_t now) {
    size_t budget = kPumpBudget;
    uint32_t since_drain = 0;
    bool drained = false;
    for (;;) {
      if (!ip.port.connected() || blocked(ip)) break;
      bool stop_pumping = false;
      while (!stop_pumping) {
        const uint8_t* p = ip.stage.get() + ip.head;
        const uint8_t* end = ip.stage.get() + ip.tail;
        const ParseStatus st = ip.parser.step(p, end);
        ip.head = static_cast<size_t>(p - ip.stage.get());
        switch (st) {
          case ParseStatus::need_more:
            stop_pumping = true;
            break;
          case ParseStatus::need_buffer: {
            const uint32_t h = pool.alloc(ip.parser.body_len());
            if (h == kNoFrame) {
              ip.waiting_pool = true;
              ++ip.port.c.pool_waits;
              settle(now);
              return;
            }
            ip.cur = h;
            pool.len(h) = ip.parser.body_len();
            pool.vnet_len(h) = ip.parser.vnet_hdr_len();
            ip.parser.set_buffer(pool.data(h));
            break;
          }
          case ParseStatus::frame: {
            const uint32_t h = ip.cur;
            ip.cur = kNoFrame;
            deliver(ip, h, now);
            if (++since_drain >= kDrainEvery) {
              since_drain = 0;
              settle(now);
            }
            if (blocked(ip)) {
              settle(now);
              return;
            }
            break;
          }
          case ParseStatus::empty:
            ++ip.port.c.empty_frames;
            break;
          case ParseStatus::oversize:
            ++ip.port.c.oversize;
            std::fprintf(stderr, "lockstep-colo: %s: frame over %u bytes, connection closed\n",
                         ip.port.name().c_str(), kMaxFrameLen);
            drop_input(ip, now, "oversized frame");
            settle(now);
            return;
          case ParseStatus::bad_vnet_len:
            ++ip.port.c.bad_vnet_len;
            drop_input(ip, now, "vnet_hdr_len larger than the frame");
            settle(now);
            return;
        }
      }
      // A read shorter than the stage emptied the socket: epoll (level-triggered) says
      // when more comes, so the read that would only find EAGAIN is skipped.
      if (budget == 0 || drained) break;
      ip.head = ip.tail = 0;
      const ssize_t n = recv(ip.port.fd(), ip.stage.get(), kStageBytes, 0);
      if (n > 0) {
        ip.tail = static_cast<size_t>(n);
        ip.port.c.bytes_in += static_cast<uint64_t>(n);
        budget -= std::min(budget, static_cast<size_t>(n));
        drained = static_cast<size_t>(n) < kStageBytes;
        continue;
      }
      if (n == 0) {
        drop_input(ip, now, "closed by the peer");
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) drop_input(ip, now, "read failed");
      break;
    }
    settle(now);
  }

  // ---- engine actions and checkpoints --------------------------------------------
  void settle(uint64_t now) {
    for (;;) {
      bool any = false;
      for (;;) {
        const uint32_t n = engine->drain(acts);
        for (uint32_t i = 0; i < n; ++i) {
          const auto h = static_cast<uint32_t>(acts[i].handle);
          switch (acts[i].kind) {
            case ActionKind::release: outq.push(h); break;  // capacity = the pool's
            case ActionKind::free:
            case ActionKind::drop: pool.free(h); break;
            case ActionKind::forward_svm:
              ++c.unexpected_forward;
              pool.free(h);
              break;
          }
        }
        if (n > 0) any = true;
        if (n < acts.size()) break;
      }
      while (const std::optional<CheckpointRequest> r = engine->take_checkpoint_request()) {
        const auto& fc = fsm.counters();
        const uint64_t merged = fc.requests_coalesced + fc.requests_stale;
        fsm.request(*r, now, outs);
        if (ctl) ctl->on_request(*r, fc.requests_coalesced + fc.requests_stale != merged, now);
        any = true;
      }
      if (!outs.empty()) handle_fsm(now);
      if (!any) break;
    }
    flush_out(now);
  }

  void handle_fsm(uint64_t now) {
    // Copy: a checkpoint_done below may produce more outputs.
    std::vector<ctrl::CheckpointFsm::Output> todo;
    todo.swap(outs);
    for (const auto& o : todo) {
      switch (o.kind) {
        case ctrl::CheckpointFsm::OutKind::send_request:
          // A periodic request is the FSM's own (checkpoint_period): logged here.
          if (ctl && o.attempt == 1 && o.request.reason == CheckpointReason::periodic)
            ctl->on_request(o.request, false, now);
          ++c.do_checkpoint_sent;
          notify_send(ctrl::encode_notify(ctrl::NotifyMessage::do_checkpoint), now);
          break;
        case ctrl::CheckpointFsm::OutKind::checkpoint_done: {
          const uint64_t ep_done = engine->epoch();
          engine->checkpoint_done(ep_done, now);
          if (ctl) ctl->on_done(ep_done, now);
          break;
        }
        case ctrl::CheckpointFsm::OutKind::timeout_alarm:
        case ctrl::CheckpointFsm::OutKind::timeout_failover:
          ++c.checkpoint_timeouts;
          if (ctl) ctl->on_timeout(o.request.epoch, o.attempt, now);
          std::fprintf(stderr,
                       "lockstep-colo: checkpoint of epoch %llu not done in time (attempt %u); "
                       "PVM output stays held\n",
                       static_cast<unsigned long long>(o.request.epoch), o.attempt);
          break;
      }
    }
  }

  // ---- outdev ----------------------------------------------------------------------
  // One sendmsg takes up to kWriteBatch frames. Small frames are copied, with their
  // headers, into `wbuf` so that a run of them is one iovec: the kernel's cost per iovec
  // is more than copying a small frame here (bench_qemu, 64 B payloads). A large frame
  // goes out of its own buffer: its header ends the current run in `wbuf`, its bytes are
  // the next iovec.
  void flush_out(uint64_t now) {
    if (!out->connected()) return;
    const size_t hl = header_len(cfg.vnet_hdr);
    while (!outq.empty()) {
      const uint32_t nf = std::min<uint32_t>(outq.size(), kWriteBatch);
      size_t cnt = 0, used = 0;
      bool run_open = false;  // iov[cnt - 1] ends at wbuf + used
      auto append = [&](const uint8_t* p, size_t n) {
        std::memcpy(wbuf.get() + used, p, n);
        if (run_open) {
          iov[cnt - 1].iov_len += n;
        } else {
          iov[cnt++] = {wbuf.get() + used, n};
          run_open = true;
        }
        used += n;
      };
      for (uint32_t i = 0; i < nf && cnt + 2 <= iov.size(); ++i) {
        const uint32_t h = outq.at(i);
        const uint32_t len = pool.len(h);
        const bool inline_frame = len <= kInlineFrame;
        if (used + kMaxHeaderLen + (inline_frame ? len : 0) > kWriteBytes) break;
        uint8_t hdr[kMaxHeaderLen];
        encode_header(hdr, len, cfg.vnet_hdr, pool.vnet_len(h));
        size_t skip = i == 0 ? out_off : 0;
        if (skip < hl) {
          append(hdr + skip, hl - skip);
          skip = 0;
        } else {
          skip -= hl;
        }
        if (inline_frame) {
          append(pool.data(h) + skip, len - skip);
        } else {
          iov[cnt++] = {pool.data(h) + skip, len - skip};
          run_open = false;
        }
      }
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = cnt;
      const ssize_t n = sendmsg(out->fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        lose_outdev(now, "write failed");
        return;
      }
      out->c.bytes_out += static_cast<uint64_t>(n);
      size_t left = static_cast<size_t>(n);
      while (left > 0) {
        const uint32_t h = outq.front();
        const size_t total = hl + pool.len(h) - out_off;
        if (left < total) {
          out_off += static_cast<uint32_t>(left);
          break;
        }
        left -= total;
        out_off = 0;
        outq.pop();
        pool.free(h);
        ++out->c.frames_out;
      }
    }
    out->want(true, !outq.empty());
  }

  void lose_outdev(uint64_t now, const char* why) {
    if (out_off > 0) {
      ++out->c.resent_partial;  // the next peer gets the cut frame again, whole
      out_off = 0;
    }
    out->disconnect(now, why);
  }

  void on_outdev_readable(uint64_t now) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(out->fd(), buf, sizeof buf, 0);
      if (n > 0) {
        c.outdev_bytes_ignored += static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) lose_outdev(now, "closed by the peer");
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN && errno != EWOULDBLOCK) lose_outdev(now, "read failed");
      return;
    }
  }

  // ---- notify_dev ------------------------------------------------------------------
  void notify_send(const std::string& bytes, uint64_t now) {
    if (!ntf || !ntf->connected()) return;  // the FSM resends when the link comes back
    if (nout.size() - nout_pos + bytes.size() > kNotifyBacklog) {
      ++c.notify_backlog_closed;
      lose_notify(now, "checkpointer does not read");
      return;
    }
    nout += bytes;
    flush_notify(now);
  }

  void flush_notify(uint64_t now) {
    if (nout_pos < nout.size()) {
      const long n = ctrl::write_some(ntf->fd(), nout.data() + nout_pos, nout.size() - nout_pos);
      if (n < 0) {
        lose_notify(now, "write failed");
        return;
      }
      nout_pos += static_cast<size_t>(n);
    }
    if (nout_pos == nout.size()) {
      nout.clear();
      nout_pos = 0;
    }
    ntf->want(true, nout_pos < nout.size());
  }

  void lose_notify(uint64_t now, const char* why) {
    ntf->disconnect(now, why);
    fsm.link_down();
    nout.clear();
    nout_pos = 0;
  }

  void on_notify_connected(uint64_t now) {
    // QEMU's colo-compare speaks on notify_dev without waiting for a hello: so does this.
    ndec = ctrl::NotifyDecoder(cfg.vnet_hdr);
    nout.clear();
    nout_pos = 0;
    fsm.link_up(now, outs);
    handle_fsm(now);
    ntf->want(true, false);
  }

  void on_notify_readable(uint64_t now) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(ntf->fd(), buf, sizeof buf, 0);
      if (n == 0) {
        lose_notify(now, "closed by the checkpointer");
        return;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) lose_notify(now, "read failed");
        return;
      }
      ndec.push(buf, static_cast<size_t>(n));
      ctrl::NotifyMessage m;
      for (;;) {
        const ctrl::NotifyStatus st = ndec.next(m);
        if (st == ctrl::NotifyStatus::need_more) break;
        if (st == ctrl::NotifyStatus::oversize) {
          ++c.notify_oversize;
          lose_notify(now, "oversized frame");
          return;
        }
        if (st == ctrl::NotifyStatus::unknown) {
          ++c.notify_unknown;
          continue;
        }
        switch (m) {
          case ctrl::NotifyMessage::proxy_init:
            ++c.proxy_init_in;
            notify_send(ctrl::encode_notify(ctrl::NotifyMessage::get_xen_init), now);
            break;
          case ctrl::NotifyMessage::colo_checkpoint:
            ++c.colo_checkpoint_in;
            fsm.done(std::nullopt, now, outs);
            handle_fsm(now);
            settle(now);
            break;
          default:
            ++c.notify_unknown;
            break;
        }
        if (!ntf->connected()) return;
      }
    }
  }

  // ---- time ------------------------------------------------------------------------
  uint64_t next_deadline() const {
    uint64_t d = std::min(engine->next_deadline(), fsm.next_deadline());
    for (const SocketPort* p : {&pri->port, &sec->port, out.get(), ntf.get()}) {
      if (p) d = std::min(d, p->next_wake());
    }
    if (gated != kNoFrame) d = std::min(d, gated_since + cfg.settings.compare_timeout_us * 1000);
    return d;
  }

  void arm_timer() {
    const uint64_t d = next_deadline();
    if (d == armed) return;
    armed = d;
    itimerspec its{};
    if (d != UINT64_MAX) {
      its.it_value.tv_sec = static_cast<time_t>(d / 1000000000ull);
      its.it_value.tv_nsec = static_cast<long>(d % 1000000000ull);
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
  }

  void on_time(uint64_t now) {
    if (engine->due(now)) engine->advance(now);
    const uint64_t retries = fsm.counters().retries;
    fsm.tick(now, outs);
    if (fsm.counters().retries != retries) {
      ++c.checkpoint_timeouts;  // not done in time: DO_CHECKPOINT sent again
      if (ctl) ctl->on_timeout(fsm.epoch(), static_cast<uint32_t>(fsm.counters().retries), now);
    }
    if (!outs.empty()) handle_fsm(now);
    if (gated != kNoFrame && now >= gated_since + cfg.settings.compare_timeout_us * 1000) {
      try_ungate(now, true);
    }
    if (pri->port.poll(now)) on_connected(*pri);
    if (sec->port.poll(now)) on_connected(*sec);
    if (out->poll(now)) out_off = 0;
    if (ntf && ntf->poll(now)) on_notify_connected(now);
    settle(now);
  }

  // Resume inputs whose reason to pause went away; keep epoll interest in step.
  void refresh_inputs(uint64_t now) {
    for (InPort* ip : {pri.get(), sec.get()}) {
      if (!ip->port.connected()) continue;
      const bool b = blocked(*ip);
      if (!b && (ip->head < ip->tail || ip->waiting_pool || ip->parser.in_body())) pump(*ip, now);
      ip->port.want(ip->port.connected() && !blocked(*ip), false);
    }
  }

  // ColoCtrl::Host (loop thread).
  Engine& compare_engine() override { return *engine; }
  void view(ColoView& v) override;
  void settings_applied(const Settings& s) override { cfg.settings = s; }

  void dispatch(uint64_t tag, uint32_t events, uint64_t now);
  bool setup(std::string& error);
  ctrl::Json stats() const;
  // The checkpoint FSM's, the SYN/ACK aligner's and the pool's sections of stats().
  void add_extras(ctrl::Json& j) const;
};

void ColoRunner::Impl::view(ColoView& v) {
  v.ports.clear();
  for (const SocketPort* p : {&pri->port, &sec->port, out.get(), ntf.get()}) {
    if (!p) continue;
    ColoView::Port vp;
    vp.name = p->name();
    vp.bound = p->bound();
    vp.connected = p->connected();
#define LOCKSTEP_X(name, help) vp.counters.emplace_back(#name, p->c.name);
    LOCKSTEP_PORT_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
    v.ports.push_back(std::move(vp));
  }
  v.notify.clear();
#define LOCKSTEP_X(name, help) v.notify.emplace_back(#name, c.name);
  LOCKSTEP_RUNNER_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  v.extra = ctrl::Json::object();
  add_extras(v.extra);
  const std::string cons = engine->counters().conservation_error();
  v.extra["conservation"] = cons.empty() ? "ok" : cons;
}

bool ColoRunner::Impl::setup(std::string& error) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tfd < 0) {
    error = "epoll/timerfd: " + std::string(std::strerror(errno));
    return false;
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = kTimer;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
  pri = std::make_unique<InPort>("primary_in", cfg.primary_in, ep, kPri, Side::pvm, cfg.vnet_hdr);
  sec = std::make_unique<InPort>("secondary_in", cfg.secondary_in, ep, kSec, Side::svm, cfg.vnet_hdr);
  out = std::make_unique<SocketPort>("outdev", cfg.outdev, ep, kOut);
  if (cfg.has_notify) ntf = std::make_unique<SocketPort>("notify_dev", cfg.notify_dev, ep, kNotify);
  for (SocketPort* p : {&pri->port, &sec->port, out.get(), ntf.get()}) {
    if (p && !p->open(error)) return false;
  }
  return true;
}

void ColoRunner::Impl::dispatch(uint64_t tag, uint32_t events, uint64_t now) {
  const bool listen = tag & SocketPort::kListenBit;
  const uint64_t which = tag & ~SocketPort::kListenBit;
  if (which == kTimer) {
    uint64_t v;
    if (read(tfd, &v, sizeof v) < 0) {
      // spurious wake-up: nothing to read
    }
    armed = 0;
    return;  // on_time() runs after every batch of events
  }
  if (which == kSignal) {
    signalfd_siginfo si{};
    while (read(sfd, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGUSR1) {
        std::printf("%s\n", stats().dump().c_str());
        std::fflush(stdout);
      } else if (si.ssi_signo == SIGHUP) {
        // No configuration file to read again: the settings are the command line. The
        // signal must not end the process (held PVM output would be lost with it).
        std::fprintf(stderr, "lockstep-colo: SIGHUP: nothing to reload (settings are the "
                             "command line, or config set on the ctrl socket); %llu frames "
                             "held\n",
                     static_cast<unsigned long long>(engine->held_frames()));
      } else {
        stop = true;
      }
    }
    return;
  }
  if (which == kPri || which == kSec) {
    InPort& ip = which == kPri ? *pri : *sec;
    if (listen) {
      if (!ip.port.accept_pending()) return;
      if (ip.port.connected()) drop_input(ip, now, "replaced by a new peer");
      if (ip.port.on_accept(now)) on_connected(ip);
    } else if (ip.port.connecting()) {
      if (ip.port.on_connect_ready(now)) on_connected(ip);
    } else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      pump(ip, now);
    }
    return;
  }
  if (which == kOut) {
    if (listen) {
      if (!out->accept_pending()) return;
      if (out->connected()) lose_outdev(now, "replaced by a new peer");
      if (out->on_accept(now)) out_off = 0;
    } else if (out->connecting()) {
      if (out->on_connect_ready(now)) out_off = 0;
    } else {
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_outdev_readable(now);
      if (out->connected() && (events & EPOLLOUT)) flush_out(now);
    }
    flush_out(now);
    return;
  }
  if (which == kNotify && ntf) {
    if (listen) {
      if (!ntf->accept_pending()) return;
      if (ntf->connected()) lose_notify(now, "replaced by a new peer");
      if (ntf->on_accept(now)) on_notify_connected(now);
    } else if (ntf->connecting()) {
      if (ntf->on_connect_ready(now)) on_notify_connected(now);
    } else {
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_notify_readable(now);
      if (ntf->connected() && (events & EPOLLOUT)) flush_notify(now);
    }
  }
}

ctrl::Json ColoRunner::Impl::stats() const {
  ctrl::Json j;
  j["id"] = cfg.id;
  ctrl::Json eng;
  for (const auto& [k, v] : engine->counters().flatten()) eng[k] = v;
  eng["held_frames"] = engine->held_frames();
  eng["epoch"] = engine->epoch();
  j["engine"] = eng;
  const std::string cons = engine->counters().conservation_error();
  j["conservation"] = cons.empty() ? "ok" : cons;
  for (const SocketPort* p : {&pri->port, &sec->port, out.get(), ntf.get()}) {
    if (!p) continue;
    ctrl::Json pj;
#define LOCKSTEP_X(name, help) pj[#name] = p->c.name;
    LOCKSTEP_PORT_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
    pj["connected"] = p->connected();
    j["ports"][p->name()] = pj;
  }
  ctrl::Json rj;
#define LOCKSTEP_X(name, help) rj[#name] = c.name;
  LOCKSTEP_RUNNER_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  j["notify"] = rj;
  add_extras(j);
  return j;
}

void ColoRunner::Impl::add_extras(ctrl::Json& j) const {
  j["checkpointer"] = fsm.counters().to_json();
  ctrl::Json aj;
  const AlignCounters& ac = aligner.counters();
#define LOCKSTEP_X(name, help) aj[#name] = ac.name;
  LOCKSTEP_ALIGN_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  j["filter_rewriter"] = aj;
  j["pool"] = {{"capacity", pool.capacity()}, {"in_use", pool.in_use()},
               {"waits", pool.waits()}, {"jumbo_allocs", pool.jumbo_allocs()},
               {"out_queue", outq.size()}};
}

ColoRunner::ColoRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ColoRunner::~ColoRunner() = default;

std::unique_ptr<ColoRunner> ColoRunner::create(const RunnerConfig& cfg, std::string& error) {
  const Settings& s = cfg.settings;
  // Room for everything the engine may hold (its reserve of one eighth included), a
  // full output queue, and the frames being read.
  const uint64_t small = s.max_held_frames + s.max_held_frames / 8 + cfg.out_queue_frames + 64;
  if (small > (1u << 24)) {
    error = "max_held_frames + out_queue_frames too large for the frame pool";
    return nullptr;
  }
  if (cfg.out_queue_frames == 0 || cfg.jumbo_frames == 0) {
    error = "out_queue_frames and jumbo_frames must be at least 1";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(cfg, static_cast<uint32_t>(small));
  impl->engine = Engine::create(s, error);
  if (!impl->engine) return nullptr;
  if (!impl->setup(error)) return nullptr;
  return std::unique_ptr<ColoRunner>(new ColoRunner(std::move(impl)));
}

std::string ColoRunner::stats_json() const { return impl_->stats().dump(); }

void ColoRunner::set_ctrl(ColoCtrl* ctl) {
  impl_->ctl = ctl;
  if (ctl) ctl->attach(*impl_, ctrl::monotonic_ns());
}

std::string ColoRunner::bound(const std::string& port) const {
  Impl& m = *impl_;
  for (const SocketPort* p : {&m.pri->port, &m.sec->port, m.out.get(), m.ntf.get()}) {
    if (p && p->name() == port) return p->bound();
  }
  return {};
}

void ColoRunner::block_signals(sigset_t* set_out) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (set_out) *set_out = set;
}

int ColoRunner::run() {
  Impl& m = *impl_;
  sigset_t set;
  block_signals(&set);
  m.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_event se{};
  se.events = EPOLLIN;
  se.data.u64 = kSignal;
  epoll_ctl(m.ep, EPOLL_CTL_ADD, m.sfd, &se);

  std::array<epoll_event, 64> evs{};
  m.on_time(ctrl::monotonic_ns());
  const uint64_t poll_ns = uint64_t{m.cfg.poll_us} * 1000;
  uint64_t last_event = 0;
  uint64_t now = ctrl::monotonic_ns();
  while (!m.stop) {
    // Polling: deadlines are checked by on_time() on every turn, the timer is for sleeps.
    const bool polling = poll_ns != 0 && now - last_event < poll_ns;
    if (!polling) m.arm_timer();
    // With a ctrl socket the loop wakes at least every 10 ms for its operations.
    const int sleep_ms = m.ctl ? kCtrlServiceMs : -1;
    const int n = epoll_wait(m.ep, evs.data(), static_cast<int>(evs.size()), polling ? 0 : sleep_ms);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "lockstep-colo: epoll_wait: %s\n", std::strerror(errno));
      return 1;
    }
    now = ctrl::monotonic_ns();
    if (n > 0) last_event = now;
    for (int i = 0; i < n; ++i) m.dispatch(evs[i].data.u64, evs[i].events, now);
    now = ctrl::monotonic_ns();
    if (m.ctl && now >= m.next_service) {
      m.next_service = now + 1'000'000;  // at most every millisecond while polling
      m.ctl->service(now);
    }
    m.on_time(now);
    m.refresh_inputs(now);
  }

  // Shutdown: held PVM output is released (QEMU's colo-compare finalizer does the same)
  // and written while outdev takes it, for at most a second.
  now = ctrl::monotonic_ns();
  if (m.ctl) m.ctl->shutdown();
  m.engine->flush_all(now);
  m.settle(now);
  const uint64_t until = now + 1'000'000'000;
  while (!m.outq.empty() && m.out->connected() && now < until) {
    std::array<epoll_event, 8> few{};
    epoll_wait(m.ep, few.data(), static_cast<int>(few.size()), 10);
    now = ctrl::monotonic_ns();
    m.flush_out(now);
  }
  std::printf("%s\n", m.stats().dump().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace lockstep::chardev
