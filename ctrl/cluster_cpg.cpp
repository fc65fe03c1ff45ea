#include "ctrl/cluster_cpg.h"

#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "ctrl/net.h"

namespace lockstep::ctrl {

namespace {

ClusterCpg* from_cpg(cpg_handle_t h) {
  void* ctx = nullptr;
  if (cpg_context_get(h, &ctx) != CS_OK) return nullptr;
  return static_cast<ClusterCpg*>(ctx);
}

void deliver_cb(cpg_handle_t h, const struct cpg_name*, uint32_t nodeid, uint32_t pid, void* msg,
                size_t len) {
  if (auto* self = from_cpg(h)) self->on_deliver(nodeid, pid, msg, len);
}

void confchg_cb(cpg_handle_t h, const struct cpg_name*, const struct cpg_address* members,
                size_t n_members, const struct cpg_address* left, size_t n_left,
                const struct cpg_address* joined, size_t n_joined) {
  if (auto* self = from_cpg(h)) self->on_confchg(members, n_members, left, n_left, joined, n_joined);
}

void quorum_cb(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id, uint32_t n,
               const uint32_t* view) {
  void* ctx = nullptr;
  if (quorum_context_get(h, const_cast<const void**>(&ctx)) != CS_OK || ctx == nullptr) return;
  static_cast<ClusterCpg*>(ctx)->on_quorum(quorate != 0, view, n);
}

void nodelist_cb(quorum_handle_t, struct quorum_ring_id, uint32_t, const uint32_t*, uint32_t,
                 const uint32_t*, uint32_t, const uint32_t*) {}

std::vector<ClusterMember> members_of(const void* p, size_t n) {
  std::vector<ClusterMember> out;
  const auto* a = static_cast<const struct cpg_address*>(p);
  for (size_t i = 0; i < n; ++i) out.push_back({a[i].nodeid, a[i].pid});
  return out;
}

}  // namespace

ClusterCpg::ClusterCpg(ClusterCpgConfig cfg, EventQueue& events, FailoverController& failover)
    : cfg_(std::move(cfg)), events_(events), failover_(failover), core_(cfg_.core) {}

ClusterCpg::~ClusterCpg() { stop(); }

bool ClusterCpg::start(std::string& error) {
  if (cfg_.group.empty() || cfg_.group.size() >= CPG_MAX_NAME_LENGTH) {
    error = "cluster group name must be 1 to " + std::to_string(CPG_MAX_NAME_LENGTH - 1) + " bytes";
    return false;
  }
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void ClusterCpg::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(wake_, &one, sizeof one);
  thread_.join();
  close(wake_);
  wake_ = -1;
}

void ClusterCpg::note(const std::string& text, uint64_t now_ns) {
  Event e;
  e.kind = EventKind::cluster;
  e.t_ns = now_ns;
  e.peer = cfg_.group;
  e.detail = text;
  events_.push(std::move(e));
}

void ClusterCpg::apply(ClusterCore::Output& o, uint64_t now_ns) {
  for (auto& n : o.notes) note(n, now_ns);
  if (o.decide) {
    std::string err;
    if (!failover_.decide(*o.decide, o.cause, now_ns, err)) {
      ++refused_;
      note("the failover controller refused the cluster's decision: " + err, now_ns);
    }
  }
  o = {};
}

bool ClusterCpg::link_down() const {
  std::ifstream f("/sys/class/net/" + cfg_.watch + "/operstate");
  std::string s;
  if (!(f >> s)) return true;  // no such interface: as good as down
  return s != "up" && s != "unknown";
}

bool ClusterCpg::connect(uint64_t now_ns) {
  cpg_model_v1_data_t md{};
  md.model = CPG_MODEL_V1;
  md.cpg_deliver_fn = deliver_cb;
  md.cpg_confchg_fn = confchg_cb;
  md.cpg_totem_confchg_fn = nullptr;
  md.flags = 0;
  cpg_handle_t h = 0;
  if (cpg_model_initialize(&h, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&md), this) != CS_OK)
    return false;
  struct cpg_name name{};
  name.length = static_cast<uint32_t>(cfg_.group.size());
  std::memcpy(name.value, cfg_.group.data(), cfg_.group.size());
  cs_error_t err = CS_ERR_TRY_AGAIN;
  for (int i = 0; i < 10 && err == CS_ERR_TRY_AGAIN; ++i) {
    err = cpg_join(h, &name);
    if (err == CS_ERR_TRY_AGAIN) usleep(50000);
  }
  unsigned int nodeid = 0;
  if (err != CS_OK || cpg_local_get(h, &nodeid) != CS_OK) {
    cpg_finalize(h);
    return false;
  }
  quorum_model_v1_data_t qd{};
  qd.model = QUORUM_MODEL_V1;
  qd.quorum_notify_fn = quorum_cb;
  qd.nodelist_notify_fn = nodelist_cb;
  quorum_handle_t q = 0;
  uint32_t qtype = 0;
  int quorate = 0;
  if (quorum_model_initialize(&q, QUORUM_MODEL_V1, reinterpret_cast<quorum_model_data_t*>(&qd),
                              &qtype, this) != CS_OK) {
    cpg_finalize(h);
    return false;
  }
  if (quorum_trackstart(q, CS_TRACK_CHANGES) != CS_OK || quorum_getquorate(q, &quorate) != CS_OK) {
    quorum_finalize(q);
    cpg_finalize(h);
    return false;
  }
  cpg_ = h;
  quorum_ = q;
  connected_ = true;
  connected_seen_ = true;
  ++connects_;
  ClusterCore::Output o;
  {
    std::lock_guard lock(mu_);
    core_.joined({nodeid, static_cast<uint32_t>(getpid())}, now_ns, o);
    core_.quorum(quorate != 0, {}, now_ns, o);
  }
  apply(o, now_ns);
  return true;
}

void ClusterCpg::disconnect(uint64_t now_ns, const std::string& why) {
  if (!connected_) return;
  cpg_finalize(cpg_);
  quorum_finalize(quorum_);
  cpg_ = quorum_ = 0;
  connected_ = false;
  connected_seen_ = false;
  ++disconnects_;
  ClusterCore::Output o;
  {
    std::lock_guard lock(mu_);
    core_.disconnected(now_ns, o);
  }
  note("corosync connection lost: " + why, now_ns);
  apply(o, now_ns);
}

void ClusterCpg::flush(uint64_t now_ns) {
  std::vector<ClusterCore::Send> sends;
  {
    std::lock_guard lock(mu_);
    core_.due(now_ns, sends);
  }
  if (!connected_) return;
  for (auto s : sends) {
    uint8_t bytes[kClusterMsgSize];
    encode_cluster_msg(s.msg, s.seq, bytes);
    struct iovec iov{bytes, sizeof bytes};
    cs_error_t err = cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, &iov, 1);
    if (err == CS_ERR_TRY_AGAIN) ++try_again_;  // resent by the core in resend_ns
    else if (err != CS_OK) ++send_errors_;
  }
}

void ClusterCpg::on_deliver(uint32_t nodeid, uint32_t pid, const void* msg, size_t len) {
  uint64_t now = monotonic_ns();
  ClusterCore::Output o;
  {
    std::lock_guard lock(mu_);
    core_.deliver({nodeid, pid}, {static_cast<const uint8_t*>(msg), len}, now, o);
  }
  apply(o, now);
}

void ClusterCpg::on_confchg(const void* members, size_t n_members, const void* left, size_t n_left,
                            const void* joined, size_t n_joined) {
  uint64_t now = monotonic_ns();
  auto m = members_of(members, n_members), l = members_of(left, n_left),
       j = members_of(joined, n_joined);
  ClusterCore::Output o;
  {
    std::lock_guard lock(mu_);
    core_.config_change(m, l, j, now, o);
  }
  apply(o, now);
}

void ClusterCpg::on_quorum(bool quorate, const uint32_t* view, size_t n) {
  uint64_t now = monotonic_ns();
  ClusterCore::Output o;
  {
    std::lock_guard lock(mu_);
    core_.quorum(quorate, {view, n}, now, o);
  }
  apply(o, now);
}

void ClusterCpg::run() {
  uint64_t next_connect = 0, next_watch = 0;
  bool said_waiting = false;
  while (!stop_) {
    uint64_t now = monotonic_ns();
    if (!connected_ && now >= next_connect) {
      if (connect(now)) {
        note("joined corosync group " + cfg_.group, now);
        said_waiting = false;
      } else {
        if (!said_waiting) note("corosync not reachable; retrying", now);
        said_waiting = true;
        next_connect = now + cfg_.reconnect_ns;
      }
    }
    if (!cfg_.watch.empty() && now >= next_watch) {
      next_watch = now + cfg_.core.resend_ns;
      bool down = link_down();
      ClusterCore::Output o;
      {
        std::lock_guard lock(mu_);
        core_.link(down, now, o);
      }
      apply(o, now);
    }
    {
      ClusterCore::Output o;
      {
        std::lock_guard lock(mu_);
        core_.tick(now, o);
      }
      apply(o, now);
    }
    flush(now);

    pollfd fds[3] = {{wake_, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    if (connected_) {
      int fd = -1;
      if (cpg_fd_get(cpg_, &fd) == CS_OK) fds[1].fd = fd;
      if (quorum_fd_get(quorum_, &fd) == CS_OK) fds[2].fd = fd;
    }
    int n = poll(fds, 3, 50);
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto r = read(wake_, &v, sizeof v);
    }
    now = monotonic_ns();
    if (connected_ && fds[1].revents != 0) {
      cs_error_t err = cpg_dispatch(cpg_, CS_DISPATCH_ALL);
      if (err != CS_OK && err != CS_ERR_TRY_AGAIN)
        disconnect(now, "cpg_dispatch error " + std::to_string(err));
    }
    if (connected_ && fds[2].revents != 0) {
      cs_error_t err = quorum_dispatch(quorum_, CS_DISPATCH_ALL);
      if (err != CS_OK && err != CS_ERR_TRY_AGAIN)
        disconnect(now, "quorum_dispatch error " + std::to_string(err));
    }
  }
  if (connected_) {
    uint64_t now = monotonic_ns();
    {
      std::lock_guard lock(mu_);
      core_.shutdown(now);
    }
    flush(now);
    struct cpg_name name{};
    name.length = static_cast<uint32_t>(cfg_.group.size());
    std::memcpy(name.value, cfg_.group.data(), cfg_.group.size());
    cpg_leave(cpg_, &name);
    cpg_finalize(cpg_);
    quorum_finalize(quorum_);
    connected_ = false;
  }
}

Json ClusterCpg::status(uint64_t now_ns) {
  Json j;
  {
    std::lock_guard lock(mu_);
    j = core_.to_json(now_ns);
  }
  j["kind"] = "corosync";
  j["group"] = cfg_.group;
  j["connected"] = connected_seen_.load();
  j["watch"] = cfg_.watch.empty() ? Json(nullptr) : Json(cfg_.watch);
  j["adapter"] = {{"connects", connects_.load()},       {"disconnects", disconnects_.load()},
                  {"send_errors", send_errors_.load()}, {"try_again", try_again_.load()},
                  {"refused", refused_.load()}};
  return j;
}

bool ClusterCpg::request_failover(const std::string& cause, std::string& error) {
  uint64_t now = monotonic_ns();
  ClusterCore::Output o;
  bool ok;
  {
    std::lock_guard lock(mu_);
    ok = core_.request_failover(cause, now, o, error);
  }
  apply(o, now);
  if (ok) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_, &one, sizeof one);
  }
  return ok;
}

}  // namespace lockstep::ctrl
