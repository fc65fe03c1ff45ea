#include "dataplane/daemon/daemon_ctl.h"

#include <rte_cycles.h>
#include <rte_version.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "compare/normalize.h"
#include "compare/policy.h"
#include "ctrl/commands.h"
#include "ctrl/net.h"
#include "dataplane/qos/qos_ctrl.h"

namespace lockstep::dp {
namespace {

constexpr uint64_t kPublishNs = 100'000'000;     // counters published 10 times a second
constexpr uint64_t kConnsWaitNs = 1'000'000'000;  // `conns` waits this long for the workers
constexpr size_t kMaxOps = 256;
constexpr uint64_t kSettingsWaitNs = 2'000'000'000;  // a live change waits this long

bool answered(const SettingsSnapshot& s) {
  for (unsigned i = 0; i < s.count; ++i)
    if (s.answers[i].state.load(std::memory_order_acquire) == SettingsSnapshot::pending) return false;
  return true;
}

ctrl::Json nics_json(const GuestSpec& g) {
  ctrl::Json nics = ctrl::Json::array();
  for (const auto& n : g.nics) {
    ctrl::Json nj{{"ext", device_name(n.ports[0])},
                  {"pvm", device_name(n.ports[1])},
                  {"svm", device_name(n.ports[2])}};
    if (n.has_mac) nj["mac"] = format_mac(n.mac);
    if (n.vlan >= 0) nj["vlan"] = n.vlan;
    nics.push_back(std::move(nj));
  }
  return nics;
}

bool is_gauge(std::string_view name) {
  return name.starts_with("held_") || name == "conns_active";
}

ctrl::Json port_json(const PortCounters& p, const PortCounters& base) {
  return {{"rx", p.rx - base.rx},
          {"rx_bytes", p.rx_bytes - base.rx_bytes},
          {"tx", p.tx - base.tx},
          {"tx_bytes", p.tx_bytes - base.tx_bytes},
          {"tx_dropped", p.tx_dropped - base.tx_dropped},
          {"tx_retries", p.tx_retries - base.tx_retries}};
}

}  // namespace

void CoordinatorSink::request(const CheckpointRequest& req, uint64_t, uint64_t) {
  CheckpointRequest r = req;
  r.epoch = coord_.epoch();  // the coordinator's numbering; the engines follow its dones
  coord_.on_request(r);
}

bool CoordinatorSink::poll_done(uint64_t, uint64_t& epoch) {
  if (done_.empty()) return false;
  epoch = done_.front();
  done_.pop_front();
  return true;
}

bool DaemonCtl::Snapshots::all_done() const {
  for (unsigned i = 0; i < count; ++i)
    if (!slot[i].done.load(std::memory_order_acquire)) return false;
  return true;
}

DaemonCtl::DaemonCtl(Dataplane& dp, CoordinatorSink* sink, std::string checkpointer_kind)
    : dp_(dp), sink_(sink), kind_(std::move(checkpointer_kind)),
      settings_(dp.guests().front().engine), mode_(Mode::colo) {
  mode_from_string(settings_.mode, mode_);
  const auto& gs = dp.guests();
  guest_settings_.resize(gs.size());
  guest_mode_.assign(gs.size(), Mode::colo);
  guest_sinks_.assign(gs.size(), nullptr);
  guest_kinds_.resize(gs.size());
  guest_failed_over_.resize(gs.size());
  for (size_t g = 0; g < gs.size(); ++g) {
    guest_settings_[g] = gs[g].engine;
    mode_from_string(gs[g].engine.mode, guest_mode_[g]);
    guest_kinds_[g] = gs[g].checkpointer.kind;
  }
  multi_ = !dp.config().guests.empty();
  if (!multi()) {
    guest_sinks_[0] = sink_;
    guest_kinds_[0] = kind_;
  }
  for (const auto& g : gs) {
    names_.push_back(g.name);
    nics_json_.push_back(nics_json(g));
  }
  removed_.assign(gs.size(), false);
  first_ports_ = gs.front().nics.front().ports;
  report_ = dp_.report();
  baseline_ns_ = ctrl::monotonic_ns();
}

void DaemonCtl::set_guest_link(unsigned g, CoordinatorSink* sink, std::string kind) {
  if (g >= guest_sinks_.size()) return;
  guest_sinks_[g] = sink;
  guest_kinds_[g] = std::move(kind);
}

bool DaemonCtl::select_guest(const std::string& name, std::string& error) {
  if (name.empty()) {
    selected_ = -1;
    return true;
  }
  std::lock_guard lock(mu_);
  for (size_t g = 0; g < names_.size(); ++g) {
    if (names_[g] != name || removed_[g]) continue;
    selected_ = static_cast<int>(g);
    return true;
  }
  error = "no guest '" + name + "' (guests:";
  for (size_t g = 0; g < names_.size(); ++g)
    if (!removed_[g]) error += " " + names_[g];
  error += ")";
  return false;
}

int DaemonCtl::guest_for_change(std::string& error) const {
  if (selected_ >= 0) return selected_;
  std::lock_guard lock(mu_);
  int only = -1;
  unsigned live = 0;
  for (size_t g = 0; g < names_.size(); ++g)
    if (!removed_[g]) ++live, only = static_cast<int>(g);
  if (live == 1) return only;
  error = std::to_string(live) +
          " guests: name the one this is for with -g/--guest NAME (lockstepctl guests)";
  return -1;
}

DaemonCtl::~DaemonCtl() = default;

void DaemonCtl::post(Op op) {
  std::lock_guard lock(mu_);
  if (ops_.size() >= kMaxOps) {
    ++ops_dropped_;
    return;
  }
  ops_.push_back(std::move(op));
}

void DaemonCtl::service(uint64_t now_ns) {
  // The dataplane's control runs on the TSC clock (the simulated checkpointer's due times).
  const uint64_t dp_now = Worker::tsc_to_ns(rte_rdtsc(), rte_get_tsc_hz());
  std::vector<Op> ops;
  {
    std::lock_guard lock(mu_);
    ops.swap(ops_);
  }
  for (auto& op : ops) {
    if (op.kind == Op::add_guest || op.kind == Op::remove_guest) {
      run_guest_op(op);
      continue;
    }
    if (op.kind == Op::manual_checkpoint) {
      const unsigned g = op.guest;
      CheckpointRequest r;
      r.reason = CheckpointReason::manual;
      r.epoch = dp_.control().guest(g).epoch;
      r.t_ns = dp_now;
      // With a real checkpointer the coordinator coalesces by itself; going to it
      // directly also unsticks a checkpoint its policy gave up on (on_timeout: alarm).
      if (CoordinatorSink* sink = guest_sinks_[g]; sink != nullptr) {
        on_request(g, r, false, dp_now);
        sink->request(r, r.epoch, dp_now);
      } else {
        dp_.control().request(g, r, dp_now);
      }
      continue;
    }
    if (op.snaps) inflight_.push_back(op.snaps);
    if (op.settings) settings_inflight_.push_back(op.settings);
    if (!dp_.control().broadcast(op.msg) && op.snaps) {
      // A full control ring: mark every slot answered so the waiting command returns.
      for (unsigned i = 0; i < op.snaps->count; ++i) op.snaps->slot[i].done.store(true);
    }
  }
  while (!inflight_.empty() && inflight_.front()->all_done()) inflight_.pop_front();
  while (!settings_inflight_.empty() && answered(*settings_inflight_.front()))
    settings_inflight_.pop_front();
  if (now_ns >= next_publish_ns_ || !ops.empty()) {
    next_publish_ns_ = now_ns + kPublishNs;
    publish(now_ns);
  }
}

void DaemonCtl::publish(uint64_t now_ns) {
  Report rep = dp_.report();
  {
    std::lock_guard lock(mu_);
    report_ = std::move(rep);
    if (report_.total.polls != polls_seen_ || polls_moved_ns_ == 0) {
      polls_seen_ = report_.total.polls;
      polls_moved_ns_ = now_ns;
    }
    epoch_ = dp_.control().epoch();
    outstanding_ = dp_.control().outstanding();
  }
  log_drops(now_ns);
}

std::string DaemonCtl::workers_health(uint64_t now_ns, uint64_t stall_ns) const {
  std::lock_guard lock(mu_);
  if (dp_.worker_count() == 0) return {};
  if (polls_moved_ns_ == 0) return "workers not started";
  if (now_ns > polls_moved_ns_ + stall_ns) {
    return "workers stalled: no poll for " + std::to_string((now_ns - polls_moved_ns_) / 1000000) +
           " ms";
  }
  return {};
}

void DaemonCtl::set_event_log(ctrl::EventLog* log) {
  log_ = log;
  dp_.control().set_observer(log != nullptr ? this : nullptr);
}

void DaemonCtl::on_request(unsigned guest, const CheckpointRequest& req, bool coalesced,
                           uint64_t now_ns) {
  if (!coalesced) {
    std::lock_guard lock(mu_);
    last_reason_ = std::string(to_string(req.reason));
  }
  if (log_ == nullptr) return;
  // req's times are on the dataplane's clock, as is now_ns.
  ctrl::Json j = ctrl::checkpoint_request_json(req, now_ns, ctrl::wall_now_ns());
  j["coalesced"] = coalesced;
  if (multi()) j["guest"] = dp_.guests()[guest].name;
  log_->append("checkpoint_request", std::move(j));
}

void DaemonCtl::on_done(unsigned guest, uint64_t epoch, uint64_t took_ns, uint64_t) {
  ctrl::Json j{{"epoch", epoch}};
  if (multi()) j["guest"] = dp_.guests()[guest].name;
  if (took_ns != 0) {
    j["duration_ms"] = static_cast<double>(took_ns / 1000) / 1000.0;
    std::lock_guard lock(mu_);
    ++checkpoint_hist_[latency_bucket(took_ns)];
    checkpoint_ns_ += took_ns;
  } else {
    j["requested"] = false;  // the checkpointer checkpointed by itself
  }
  if (log_ != nullptr) log_->append("checkpoint_done", std::move(j));
}

void DaemonCtl::log_settings_change(const Settings& before, const Settings& after) {
  if (log_ == nullptr) return;
  ctrl::Json changed = ctrl::settings_change_json(before, after);
  if (!changed.empty()) log_->append("config", {{"changed", changed}});
}

// At most once a second: the drops since the last such event, by reason.
void DaemonCtl::log_drops(uint64_t now_ns) {
  if (log_ == nullptr || now_ns < next_drops_ns_) return;
  next_drops_ns_ = now_ns + 1'000'000'000;
  std::map<std::string, uint64_t> now;
  {
    std::lock_guard lock(mu_);
    const auto& t = report_.total;
    for (unsigned d = 0; d < kDpDropCount; ++d)
      now["dataplane." + std::string(to_string(static_cast<DpDrop>(d)))] = t.drops[d];
    for (unsigned d = 0; d < kDropReasonCount; ++d) {
      const std::string r(to_string(static_cast<DropReason>(d)));
      now["pvm." + r] = t.engine.pvm_dropped[d];
      now["svm." + r] = t.engine.svm_dropped[d];
      now["ingress." + r] = t.engine.ingress_dropped[d];
    }
  }
  ctrl::Json delta = ctrl::counter_increase(drops_logged_, std::move(now));
  if (!delta.empty()) log_->append("drops", {{"by_reason", delta}});
}

uint64_t DaemonCtl::polls() const {
  std::lock_guard lock(mu_);
  return report_.total.polls;
}

void DaemonCtl::on_event(const ctrl::Event& e, uint64_t now_ns) {
  {
    std::lock_guard lock(mu_);
    ++events_seen_;
  }
  std::fprintf(stderr, "lockstepd: event %s\n", e.to_json().dump().c_str());
  if (log_ != nullptr) {
    ctrl::Json j = e.to_json();
    j.erase("event");
    j.erase("t_ns");
    // checkpoint_done from the checkpointer is logged when the workers get it (on_done).
    if (e.kind != ctrl::EventKind::checkpoint_done) log_->append(ctrl::to_string(e.kind), std::move(j));
  }
  switch (e.kind) {
    case ctrl::EventKind::checkpoint_done:
      if (sink_ != nullptr) sink_->done(e.epoch);
      break;
    case ctrl::EventKind::failover: {  // the host's decision: every guest
      CtrlMsg m;
      m.kind = CtrlMsg::failover;
      m.arg = static_cast<uint32_t>(e.survivor);
      dp_.control().broadcast(m);
      std::lock_guard lock(mu_);
      failed_over_ = e.survivor;
      failover_ns_ = now_ns;
      for (auto& f : guest_failed_over_) f = e.survivor;
      break;
    }
    default: break;
  }
}

void DaemonCtl::on_guest_event(unsigned g, const ctrl::Event& e, uint64_t now_ns) {
  if (g >= guest_sinks_.size()) return;
  const std::string& name = dp_.guests()[g].name;
  {
    std::lock_guard lock(mu_);
    ++events_seen_;
  }
  std::fprintf(stderr, "lockstepd: guest %s: event %s\n", name.c_str(), e.to_json().dump().c_str());
  if (log_ != nullptr && e.kind != ctrl::EventKind::checkpoint_done) {
    ctrl::Json j = e.to_json();
    j.erase("event");
    j.erase("t_ns");
    j["guest"] = name;
    log_->append(ctrl::to_string(e.kind), std::move(j));
  }
  switch (e.kind) {
    case ctrl::EventKind::checkpoint_done:
      if (guest_sinks_[g] != nullptr) guest_sinks_[g]->done(e.epoch);
      break;
    case ctrl::EventKind::failover: {  // this guest's checkpointer link decided
      CtrlMsg m;
      m.kind = CtrlMsg::failover;
      m.arg = static_cast<uint32_t>(e.survivor);
      m.guest = g;
      dp_.control().broadcast(m);
      std::lock_guard lock(mu_);
      guest_failed_over_[g] = e.survivor;
      failover_ns_ = now_ns;
      break;
    }
    default: break;
  }
}

ctrl::Json DaemonCtl::guests() {
  std::lock_guard lock(mu_);
  ctrl::Json a = ctrl::Json::array();
  for (size_t g = 0; g < names_.size(); ++g) {
    GuestReport gr;
    if (g < report_.guests.size()) gr = report_.guests[g];
    const char* state = removed_[g]                 ? "removed"
                        : guest_failed_over_[g]     ? "failed_over"
                        : gr.outstanding            ? "checkpointing"
                                                    : "ok";
    a.push_back({{"name", names_[g]},
                 {"nics", nics_json_[g]},
                 {"epoch", gr.epoch},
                 {"mode", to_string(guest_mode_[g])},
                 {"state", state},
                 {"checkpointer", guest_kinds_[g]},
                 {"checkpoint_requests", gr.checkpoint_requests},
                 {"checkpoint_coalesced", gr.checkpoint_coalesced},
                 {"checkpoints_done", gr.checkpoints_done},
                 {"held_frames", gr.stats.held_frames},
                 {"released", gr.stats.engine.released_pvm()},
                 {"conns_active", gr.stats.engine.conns_active}});
  }
  return a;
}

ctrl::Json DaemonCtl::status() {
  const int sel = guest_for_read();
  ctrl::Json guest_list = multi() ? guests() : ctrl::Json();
  std::lock_guard lock(mu_);
  const auto& t = report_.total;
  ctrl::Json j;
  j["mode"] = to_string(sel >= 0 ? guest_mode_[static_cast<unsigned>(sel)] : mode_);
  j["workers"] = report_.workers.size();
  j["epoch"] = epoch_;
  j["checkpoint"] = {{"checkpointer", kind_},
                     {"outstanding", outstanding_},
                     {"requested", report_.checkpoint_requests},
                     {"coalesced", report_.checkpoint_coalesced},
                     {"done", report_.checkpoints_done},
                     {"last_reason", last_reason_.empty() ? ctrl::Json(nullptr)
                                                          : ctrl::Json(last_reason_)}};
  j["held_frames"] = t.held_frames;
  j["conns_active"] = t.engine.conns_active;
  if (multi()) j["guests"] = std::move(guest_list);
  if (sel >= 0 && static_cast<size_t>(sel) < report_.guests.size()) {
    // One guest named (-g): its epoch, checkpoints and output instead of the host's.
    const GuestReport& gr = report_.guests[static_cast<unsigned>(sel)];
    j["guest"] = gr.name;
    j["epoch"] = gr.epoch;
    j["checkpoint"] = {{"checkpointer", guest_kinds_[static_cast<unsigned>(sel)]},
                       {"outstanding", gr.outstanding},
                       {"requested", gr.checkpoint_requests},
                       {"coalesced", gr.checkpoint_coalesced},
                       {"done", gr.checkpoints_done}};
    j["held_frames"] = gr.stats.held_frames;
    j["conns_active"] = gr.stats.engine.conns_active;
  }
  if (failed_over_) {
    j["failed_over"] = {{"survivor", *failed_over_ == Survivor::primary ? "primary" : "secondary"},
                        {"applied_s_ago", (ctrl::monotonic_ns() - failover_ns_) / 1000000000}};
  } else {
    j["failed_over"] = nullptr;
  }
  ctrl::Json ports = ctrl::Json::object();
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (!report_.has_port[r]) continue;
    // Many guests: the first NIC's port of the role (`guests` lists every NIC's).
    const std::string& spec = r < kCompareRoles ? first_ports_[r] : dp_.config().ports[r];
    ports[std::string(to_string(static_cast<PortRole>(r)))] = {
        {"device", device_name(spec)},
        {"link_up_events", report_.link_up[r]},
        {"link_down_events", report_.link_down[r]}};
  }
  j["ports"] = ports;
  j["pool"] = {{"size", report_.pool_size}, {"avail", report_.pool_avail}};
  j["ops_dropped"] = ops_dropped_;
  j["settings"] = {{"refused", settings_refused_},
                   {"refused_by_workers", report_.total.settings_refused}};
  if (!last_settings_error_.empty()) j["settings"]["last_error"] = last_settings_error_;
  return j;
}

ctrl::Json DaemonCtl::stats(bool reset) {
  const int sel = guest_for_read();
  std::lock_guard lock(mu_);
  const auto& t = report_.total;
  const auto& b = baseline_;
  // One guest named (-g): its engines' counters; else every guest's.
  const Counters* now_c = &t.engine;
  Counters zero;
  const Counters* base_c = &b.engine;
  if (sel >= 0 && static_cast<size_t>(sel) < t.guests.size()) {
    now_c = &t.guests[static_cast<unsigned>(sel)].engine;
    base_c = static_cast<size_t>(sel) < b.guests.size() ? &b.guests[static_cast<unsigned>(sel)].engine
                                                        : &zero;
  }
  ctrl::Json eng = ctrl::Json::object();
  std::map<std::string, uint64_t> base;
  for (const auto& [k, v] : base_c->flatten()) base[k] = v;
  for (const auto& [k, v] : now_c->flatten()) eng[k] = is_gauge(k) ? v : v - base[k];
  ctrl::Json ports = ctrl::Json::object();
  for (unsigned r = 0; r < kPortRoleCount; ++r)
    if (report_.has_port[r])
      ports[std::string(to_string(static_cast<PortRole>(r)))] = port_json(t.port[r], b.port[r]);
  ctrl::Json drops = ctrl::Json::object();
  for (unsigned d = 0; d < kDpDropCount; ++d)
    drops[std::string(to_string(static_cast<DpDrop>(d)))] = t.drops[d] - b.drops[d];
  ctrl::Json j;
  j["engine"] = eng;
  j["ports"] = ports;
  j["drops"] = drops;
  j["frames"] = t.frames - b.frames;
  j["held_frames"] = t.held_frames;
  j["checkpoints_applied"] = t.checkpoints_applied - b.checkpoints_applied;
  j["settings"] = {{"applied_by_workers", t.settings_applied},
                   {"refused_by_workers", t.settings_refused},
                   {"refused", settings_refused_}};
  j["workers"] = report_.workers.size();
  if (sel >= 0) j["guest"] = names_[static_cast<unsigned>(sel)];
  j["since_s"] = (ctrl::monotonic_ns() - baseline_ns_) / 1000000000;
  if (reset) {  // a baseline: worker memory is never written from here
    baseline_ = t;
    baseline_ns_ = ctrl::monotonic_ns();
  }
  return j;
}

ctrl::Json DaemonCtl::conns(const std::string& filter, size_t limit) {
  const unsigned n = dp_.worker_count();
  auto snaps = std::make_shared<Snapshots>(n);
  // With a filter, look at more than `limit` (bounded) and keep the matches.
  size_t ask = filter.empty() ? limit : std::max<size_t>(limit, 10000);
  for (unsigned i = 0; i < n; ++i) {
    snaps->slot[i].limit = ask;
    snaps->slot[i].conns.reserve(ask);
  }
  Op op;
  op.kind = Op::broadcast;
  op.msg.kind = CtrlMsg::snapshot_conns;
  op.msg.settings = snaps->slot.get();
  if (guest_for_read() >= 0) op.msg.guest = static_cast<uint32_t>(guest_for_read());
  op.snaps = snaps;
  post(op);
  uint64_t deadline = ctrl::monotonic_ns() + kConnsWaitNs;
  while (!snaps->all_done()) {
    if (ctrl::monotonic_ns() >= deadline || dp_.stopping()) {
      return {{"error", "workers did not answer within 1 s"}, {"connections", ctrl::Json::array()},
              {"shown", 0}, {"limit", limit}};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ctrl::Json a = ctrl::Json::array();
  for (unsigned w = 0; w < n && a.size() < limit; ++w) {
    for (const auto& c : snaps->slot[w].conns) {
      if (a.size() >= limit) break;
      ctrl::Json j = ctrl::conn_json(c);
      if (!filter.empty() && j["flow"].get<std::string>().find(filter) == std::string::npos) continue;
      j["worker"] = w;
      a.push_back(std::move(j));
    }
  }
  const size_t shown = a.size();
  return {{"connections", std::move(a)}, {"shown", shown}, {"limit", limit}};
}

Settings DaemonCtl::settings() {
  std::lock_guard lock(mu_);
  return guest_settings_[selected_ >= 0 ? static_cast<unsigned>(selected_) : 0];
}

bool DaemonCtl::check_live(const Settings& s, const Settings& cur, std::string& error) {
  if (s.max_connections != cur.max_connections || s.max_held_frames != cur.max_held_frames ||
      s.frag_max_datagrams != cur.frag_max_datagrams) {
    error = "max_connections, max_held_frames and frag_max_datagrams are fixed at start "
            "(set them in the config and restart)";
    return false;
  }
  Mode m;
  if (!mode_from_string(s.mode, m)) {
    error = "setting 'mode': unknown mode '" + s.mode + "'";
    return false;
  }
  PolicyAction def = PolicyAction::compare;
  policy_action_from_string(s.default_policy, def);
  PolicyTable policy;
  if (!policy.parse(s.policy_rules, def, error)) {
    error = "setting 'policy_rules': " + error;
    return false;
  }
  if (s.normalize_rules != cur.normalize_rules || s.normalize_max_span != cur.normalize_max_span) {
    // Compiled here as the engines will compile it (one slot: only the patterns matter).
    auto norm = Normalizer::create(s.normalize_rules, static_cast<uint32_t>(s.normalize_max_span),
                                   1, error);
    if (!norm && !error.empty()) {
      error = "setting 'normalize_rules': " + error;
      return false;
    }
  }
  return true;
}

bool DaemonCtl::apply_settings(const Settings& s, std::string& error) {
  const int gi = guest_for_change(error);
  if (gi < 0) return false;
  const unsigned g = static_cast<unsigned>(gi);
  // A guest's engines only (the others keep theirs); kAllGuests for the single pair.
  const uint32_t target = multi() ? g : kAllGuests;
  Settings cur;
  {
    std::lock_guard lock(mu_);
    cur = guest_settings_[g];
  }
  if (!check_live(s, cur, error)) {
    std::lock_guard lock(mu_);
    ++settings_refused_;
    last_settings_error_ = error;
    return false;
  }
  auto snap = std::make_shared<SettingsSnapshot>(s, dp_.worker_count());
  Settings before;
  {
    std::lock_guard lock(mu_);
    if (ops_.size() + 2 > kMaxOps) {
      error = "too many operations queued to the workers; try again";
      return false;
    }
    before = guest_settings_[g];
    Op op;
    op.msg.kind = CtrlMsg::apply_settings;
    op.msg.settings = snap.get();
    op.msg.guest = target;
    op.settings = snap;
    ops_.push_back(op);
    Mode m;
    if (s.mode != before.mode && mode_from_string(s.mode, m)) {
      Op mo;
      mo.msg.kind = CtrlMsg::set_mode;
      mo.msg.arg = static_cast<uint32_t>(m);
      mo.msg.guest = target;
      ops_.push_back(mo);
      guest_mode_[g] = m;
      if (g == 0) mode_ = m;
    }
    // What the workers run from now on (they apply control messages in order).
    guest_settings_[g] = s;
    if (g == 0) settings_ = s;
  }
  // The reply says applied only once every worker has said so.
  const uint64_t deadline = ctrl::monotonic_ns() + kSettingsWaitNs;
  while (!answered(*snap)) {
    if (ctrl::monotonic_ns() >= deadline || dp_.stopping()) {
      error = "the workers did not confirm the change within 2 s (it is queued to them)";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string refused;
  for (unsigned i = 0; i < snap->count; ++i) {
    const auto& a = snap->answers[i];
    if (a.state.load(std::memory_order_acquire) != SettingsSnapshot::refused) continue;
    refused += (refused.empty() ? "" : "; ") + ("worker " + std::to_string(i) + ": " + a.error);
  }
  if (refused.empty()) {
    log_settings_change(before, s);
    return true;
  }
  // A worker kept its old settings: put every worker back on the settings from before.
  error = "not applied (" + refused + "); the previous settings are restored";
  auto back = std::make_shared<SettingsSnapshot>(before, dp_.worker_count());
  std::lock_guard lock(mu_);
  ++settings_refused_;
  last_settings_error_ = error;
  Op op;
  op.msg.kind = CtrlMsg::apply_settings;
  op.msg.settings = back.get();
  op.msg.guest = target;
  op.settings = back;
  ops_.push_back(op);
  if (before.mode != s.mode && mode_from_string(before.mode, guest_mode_[g])) {
    Op mo;
    mo.msg.kind = CtrlMsg::set_mode;
    mo.msg.arg = static_cast<uint32_t>(guest_mode_[g]);
    mo.msg.guest = target;
    ops_.push_back(mo);
    if (g == 0) mode_ = guest_mode_[g];
  }
  guest_settings_[g] = before;
  if (g == 0) settings_ = before;
  return false;
}

// Control loop: a guest added or removed (its link made first; the dataplane then the
// daemon's per-guest state, under mu_ for the ctrl thread).
void DaemonCtl::run_guest_op(Op& op) {
  GuestOp& go = *op.guest_op;
  if (op.kind == Op::add_guest) {
    std::unique_ptr<CheckpointSink> sink;
    CoordinatorSink* coord = nullptr;
    const unsigned g = static_cast<unsigned>(dp_.guests().size());
    std::vector<GuestSpec> specs;
    Config next = as_guests_config(dp_.config());
    next.guests.push_back(go.config);
    go.ok = resolve_guests(next, specs, go.error) &&
            (!link_factory_ || link_factory_(g, specs.back(), sink, coord, go.error)) &&
            dp_.add_guest(go.config, std::move(sink), go.error);
    if (go.ok) {
      const GuestSpec& spec = dp_.guests().back();
      std::lock_guard lock(mu_);
      names_.push_back(spec.name);
      nics_json_.push_back(nics_json(spec));
      removed_.push_back(false);
      guest_settings_.push_back(spec.engine);
      Mode m = Mode::colo;
      mode_from_string(spec.engine.mode, m);
      guest_mode_.push_back(m);
      guest_sinks_.push_back(coord);
      guest_kinds_.push_back(spec.checkpointer.kind);
      guest_failed_over_.emplace_back();
      // A single pair serves guests from now on: its pair is the guest `default`.
      multi_.store(true, std::memory_order_release);
    }
    if (go.ok && log_ != nullptr)
      log_->append("guest", {{"guest", go.config.name}, {"change", "added"},
                             {"nics", go.config.nics.size()}});
  } else {
    const int g = dp_.guest_index(go.name);
    Report before = dp_.report();
    go.ok = dp_.remove_guest(go.name, go.error, go.held, &go.released, &go.dropped, &go.qos_sent,
                             &go.qos_dropped);
    if (go.ok) {
      Report after = dp_.report();
      const GuestReport& gr = after.guests[static_cast<unsigned>(g)];
      const uint64_t held = g >= 0 ? before.guests[static_cast<unsigned>(g)].stats.held_frames : 0;
      {
        std::lock_guard lock(mu_);
        removed_[static_cast<unsigned>(g)] = true;
        report_ = after;
        guest_sinks_[static_cast<unsigned>(g)] = nullptr;  // its link stops below
      }
      if (on_guest_removed_) on_guest_removed_(static_cast<unsigned>(g));
      if (log_ != nullptr)
        log_->append("guest", {{"guest", go.name}, {"change", "removed"},
                               {"held_frames_flushed", held},
                               {"held", to_string(go.held)},
                               {"held_released", go.released},
                               {"held_dropped", go.dropped},
                               {"released", gr.stats.engine.released_pvm()}});
    }
  }
  go.done.store(true, std::memory_order_release);
}

bool DaemonCtl::post_and_wait(Op op, const char* what, std::string& error) {
  std::shared_ptr<GuestOp> go = op.guest_op;
  post(std::move(op));
  const uint64_t deadline = ctrl::monotonic_ns() + 10'000'000'000ull;
  while (!go->done.load(std::memory_order_acquire)) {
    if (ctrl::monotonic_ns() >= deadline || dp_.stopping()) {
      error = std::string(what) + ": the control loop did not answer within 10 s";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!go->ok) error = go->error;
  return go->ok;
}

bool DaemonCtl::add_guest(const GuestConfig& gc, ctrl::Json& result, std::string& error) {
  auto go = std::make_shared<GuestOp>();
  go->config = gc;
  Op op;
  op.kind = Op::add_guest;
  op.guest_op = go;
  if (!post_and_wait(op, "guest add", error)) return false;
  result = {{"added", gc.name}, {"nics", gc.nics.size()}};
  return true;
}

bool DaemonCtl::remove_guest(const std::string& name, const HeldPolicy* held, ctrl::Json& result,
                             std::string& error) {
  auto go = std::make_shared<GuestOp>();
  go->name = name;
  go->held = held != nullptr ? *held : dp_.config().guest_del_held;
  Op op;
  op.kind = Op::remove_guest;
  op.guest_op = go;
  if (!post_and_wait(op, "guest del", error)) return false;
  // The held PVM output's fate; the SVM's and the ingress copies still held are dropped
  // either way (the engine's counters).
  result = {{"removed", name},
            {"held", to_string(go->held)},
            {"released", go->released},
            {"dropped", go->dropped}};
  // The frames queued in its own schedulers (guests.NAME.qos.ROLE): sent, or dropped.
  if (!dp_.config().guests.empty() || go->qos_sent + go->qos_dropped > 0) {
    result["qos_sent"] = go->qos_sent;
    result["qos_dropped"] = go->qos_dropped;
  }
  return true;
}

bool DaemonCtl::request_checkpoint(std::string& error) {
  const int g = guest_for_change(error);
  if (g < 0) return false;
  Op op;
  op.kind = Op::manual_checkpoint;
  op.guest = static_cast<unsigned>(g);
  post(op);
  return true;
}

bool DaemonCtl::set_mode(Mode m, std::string& error) {
  const int gi = guest_for_change(error);
  if (gi < 0) return false;
  const unsigned g = static_cast<unsigned>(gi);
  std::lock_guard lock(mu_);
  if (ops_.size() >= kMaxOps) {
    error = "too many operations queued to the workers; try again";
    return false;
  }
  Op op;
  op.msg.kind = CtrlMsg::set_mode;
  op.msg.arg = static_cast<uint32_t>(m);
  op.msg.guest = multi() ? g : kAllGuests;
  ops_.push_back(op);
  const Mode from = guest_mode_[g];
  guest_mode_[g] = m;
  guest_settings_[g].mode = std::string(to_string(m));
  if (g == 0) {
    mode_ = m;
    settings_.mode = guest_settings_[g].mode;
  }
  if (log_ != nullptr && from != m) {
    ctrl::Json j{{"from", to_string(from)}, {"to", to_string(m)}};
    if (multi()) j["guest"] = names_[g];
    log_->append("mode", std::move(j));
  }
  return true;
}

bool DaemonCtl::capture_start(const ctrl::CaptureRequest& r, ctrl::Json& result, std::string& error) {
  if (capture_ == nullptr) {
    error = "capture is not available";
    return false;
  }
  // -g NAME: only that guest's frames (its ports of the role, its share of a shared one).
  return capture_->start(r, guest_for_read(), result, error);
}

bool DaemonCtl::capture_stop(const std::string& port, ctrl::Json& result, std::string& error) {
  if (capture_ == nullptr) {
    error = "capture is not available";
    return false;
  }
  return capture_->stop(port, result, error);
}

void DaemonCtl::metrics(std::vector<ctrl::MetricSample>& out) {
  append_qos_metrics(dp_.qos(), 250'000'000, out);  // asks worker 0; outside mu_
  std::lock_guard lock(mu_);
  for (size_t w = 0; w < report_.workers.size(); ++w) {
    const WorkerStats& ws = report_.workers[w];
    if (!multi()) {
      ctrl::append_engine_counters(ws.engine, {{"worker", std::to_string(w)}}, out);
      continue;
    }
    // Many guests: each guest's engines, labelled with it (sum by guest, or by worker).
    for (size_t g = 0; g < ws.guests.size() && g < names_.size(); ++g)
      ctrl::append_engine_counters(ws.guests[g].engine,
                                   {{"worker", std::to_string(w)}, {"guest", names_[g]}}, out);
  }
  for (const auto& gr : report_.guests) {
    ctrl::Labels l{{"guest", gr.name}};
    ctrl::add_sample(out, "lockstep_guest_checkpoint_requests_total",
                     "checkpoint requests sent to the guest's checkpointer", ctrl::MetricType::counter,
                     static_cast<double>(gr.checkpoint_requests), l);
    ctrl::add_sample(out, "lockstep_guest_checkpoints_done_total",
                     "the guest's checkpoints done, applied to all its NICs",
                     ctrl::MetricType::counter, static_cast<double>(gr.checkpoints_done), l);
    ctrl::add_sample(out, "lockstep_guest_epoch", "the guest's checkpoint epoch",
                     ctrl::MetricType::gauge, static_cast<double>(gr.epoch), l);
    ctrl::add_sample(out, "lockstep_guest_held_frames", "the guest's output held for compare",
                     ctrl::MetricType::gauge, static_cast<double>(gr.stats.held_frames), l);
    ctrl::add_sample(out, "lockstep_guest_nics", "the guest's NICs (compare units)",
                     ctrl::MetricType::gauge, static_cast<double>(gr.nics), l);
    if (gr.removed) {  // `guest del`: what became of its held PVM output
      for (const auto& [fate, n] : {std::pair{"released", gr.stats.del_released},
                                    std::pair{"dropped", gr.stats.del_dropped}}) {
        ctrl::Labels lf{{"guest", gr.name}, {"fate", fate}};
        ctrl::add_sample(out, "lockstep_guest_del_held_frames_total",
                         "a removed guest's held PVM output at `guest del`: released or dropped",
                         ctrl::MetricType::counter, static_cast<double>(n), lf);
      }
    }
  }
  const auto& t = report_.total;
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (!report_.has_port[r]) continue;
    ctrl::Labels l{{"port", std::string(to_string(static_cast<PortRole>(r)))}};
    const auto& p = t.port[r];
    ctrl::add_sample(out, "lockstep_port_rx_frames_total", "frames received on a port",
                     ctrl::MetricType::counter, static_cast<double>(p.rx), l);
    ctrl::add_sample(out, "lockstep_port_rx_bytes_total", "bytes received on a port",
                     ctrl::MetricType::counter, static_cast<double>(p.rx_bytes), l);
    ctrl::add_sample(out, "lockstep_port_tx_frames_total", "frames sent on a port",
                     ctrl::MetricType::counter, static_cast<double>(p.tx), l);
    ctrl::add_sample(out, "lockstep_port_tx_bytes_total", "bytes sent on a port",
                     ctrl::MetricType::counter, static_cast<double>(p.tx_bytes), l);
    ctrl::add_sample(out, "lockstep_port_tx_dropped_total", "frames not sent after the retries",
                     ctrl::MetricType::counter, static_cast<double>(p.tx_dropped), l);
    ctrl::add_sample(out, "lockstep_port_imissed_total", "frames the device dropped (rx)",
                     ctrl::MetricType::counter, static_cast<double>(report_.dev_imissed[r]), l);
  }
  for (unsigned d = 0; d < kDpDropCount; ++d)
    ctrl::add_sample(out, "lockstep_dataplane_drops_total", "frames the dataplane dropped, by reason",
                     ctrl::MetricType::counter, static_cast<double>(t.drops[d]),
                     {{"reason", std::string(to_string(static_cast<DpDrop>(d)))}});
  ctrl::add_sample(out, "lockstep_settings_refused_total",
                   "live settings changes refused (did not compile, or a worker could not apply)",
                   ctrl::MetricType::counter, static_cast<double>(settings_refused_));
  ctrl::add_sample(out, "lockstep_worker_settings_refused_total",
                   "settings snapshots a worker's engine could not apply",
                   ctrl::MetricType::counter, static_cast<double>(t.settings_refused));
  ctrl::add_sample(out, "lockstep_dataplane_checkpoint_requests_total",
                   "checkpoint requests sent to the checkpointer (coalesced across workers)",
                   ctrl::MetricType::counter, static_cast<double>(report_.checkpoint_requests));
  ctrl::add_sample(out, "lockstep_dataplane_checkpoints_done_total",
                   "checkpoints done, broadcast to the workers", ctrl::MetricType::counter,
                   static_cast<double>(report_.checkpoints_done));
  ctrl::add_sample(out, "lockstep_pool_mbufs", "mbufs in the pools", ctrl::MetricType::gauge,
                   static_cast<double>(report_.pool_size));
  ctrl::add_sample(out, "lockstep_pool_mbufs_available", "mbufs free in the pools",
                   ctrl::MetricType::gauge, static_cast<double>(report_.pool_avail));
  ctrl::add_sample(out, "lockstep_failed_over", "1 once a failover was applied to the workers",
                   ctrl::MetricType::gauge, failed_over_ ? 1.0 : 0.0);
  ctrl::append_latency_histogram(out, "lockstep_checkpoint_duration_seconds",
                                 "checkpoints from the request sent to the done received",
                                 checkpoint_hist_, checkpoint_ns_);
}

ctrl::Json DaemonCtl::version() {
  return {{"dpdk", rte_version()}, {"workers", dp_.worker_count()}, {"checkpointer", kind_}};
}

}  // namespace lockstep::dp
