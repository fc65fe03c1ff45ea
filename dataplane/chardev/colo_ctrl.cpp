#include "dataplane/chardev/colo_ctrl.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>

#include "ctrl/commands.h"
#include "ctrl/metrics.h"
#include "ctrl/net.h"

namespace lockstep::chardev {
namespace {

constexpr uint64_t kPublishNs = 100'000'000;         // snapshot 10 times a second
constexpr uint64_t kDropsEveryNs = 1'000'000'000;    // a drops event at most once a second
constexpr auto kConnsWait = std::chrono::seconds(1);
constexpr auto kSettingsWait = std::chrono::seconds(2);
constexpr auto kOpWait = std::chrono::seconds(2);
constexpr auto kRefreshWait = std::chrono::milliseconds(100);
constexpr size_t kMaxOps = 256;

bool is_gauge(std::string_view name) {
  return name.starts_with("held_") || name == "conns_active";
}

// One answer handed from the loop to a waiting ctrl thread.
template <typename T>
struct Reply {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  T value{};
  void set(T v) {
    {
      std::lock_guard lock(mu);
      value = std::move(v);
      ready = true;
    }
    cv.notify_all();
  }
  template <typename D>
  bool wait(D d, T& out) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, d, [this] { return ready; })) return false;
    out = value;
    return true;
  }
};

struct SettingsAnswer {
  bool ok = false;
  std::string error;
};

ctrl::Json counters_json(const std::vector<std::pair<std::string, uint64_t>>& now,
                         const std::vector<std::pair<std::string, uint64_t>>* base) {
  ctrl::Json j = ctrl::Json::object();
  std::map<std::string, uint64_t> b;
  if (base != nullptr) b.insert(base->begin(), base->end());
  for (const auto& [k, v] : now) {
    auto it = b.find(k);
    j[k] = it == b.end() || v < it->second ? v : v - it->second;
  }
  return j;
}

}  // namespace

ColoCtrl::ColoCtrl(std::string id, ctrl::EventLog* log, ctrl::EventQueue* events)
    : id_(std::move(id)), log_(log), events_(events) {}

ColoCtrl::~ColoCtrl() = default;

void ColoCtrl::attach(Host& host, uint64_t now_ns) {
  host_ = &host;
  {
    std::lock_guard lock(mu_);
    baseline_ns_ = now_ns;
  }
  publish(now_ns);
  std::lock_guard lock(mu_);
  base_counters_ = Counters{};
  base_view_ = ColoView{};
}

bool ColoCtrl::post(OpFn fn, std::string* error) {
  std::lock_guard lock(mu_);
  if (stopped_) {
    if (error != nullptr) *error = "lockstep-colo is stopping";
    return false;
  }
  if (ops_.size() >= kMaxOps) {
    ++ops_dropped_;
    if (error != nullptr) *error = "too many operations queued; try again";
    return false;
  }
  ops_.push_back(std::move(fn));
  return true;
}

bool ColoCtrl::run_on_loop(OpFn fn, std::string& error) {
  auto reply = std::make_shared<Reply<bool>>();
  if (!post([fn = std::move(fn), reply](uint64_t now) {
        fn(now);
        reply->set(true);
      }, &error)) {
    return false;
  }
  bool ran = false;
  if (!reply->wait(kOpWait, ran)) {
    error = "the runner did not confirm within 2 s (it is queued)";
    return false;
  }
  return true;
}

void ColoCtrl::refresh() {
  // A snapshot taken now, so that what a command just did (or a frame just caused) is
  // seen; when the loop is busy or stopping, the last published one is used.
  auto reply = std::make_shared<Reply<bool>>();
  if (!post([this, reply](uint64_t now) {
        publish(now);
        reply->set(true);
      }, nullptr)) {
    return;
  }
  bool ran = false;
  reply->wait(kRefreshWait, ran);
}

void ColoCtrl::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ops_.clear();  // their waiters time out (bounded)
  }
  if (log_ == nullptr) return;
  // Why it checkpointed, as `lockstepctl explain` would say (the most frequent first),
  // before the statistics line (the last line of the output).
  const ctrl::Json why = ctrl::explain_json(*log_, 1000);
  if (!why.contains("groups")) return;
  size_t shown = 0;
  for (const auto& g : why["groups"]) {
    if (++shown > 5) break;
    std::string line = g.contains("last") ? g["last"].value("line", "") : "";
    if (line.size() > 40) line = line.substr(line.size() - 40);
    std::fprintf(stderr, "%s: checkpoints: %llu x %s  %s%s\n", prog_.c_str(),
                 static_cast<unsigned long long>(g.value("count", uint64_t{0})),
                 g.value("reason", "?").c_str(), g.value("flow", "").c_str(),
                 line.empty() ? "" : ("  at \"" + line + "\"").c_str());
  }
}

void ColoCtrl::service(uint64_t now_ns) {
  if (host_ == nullptr) return;
  std::vector<OpFn> ops;
  {
    std::lock_guard lock(mu_);
    ops.swap(ops_);
  }
  for (auto& op : ops) op(now_ns);
  if (events_ != nullptr) {
    batch_.clear();
    events_->drain(batch_);
    for (const auto& e : batch_) apply_event(e, now_ns);
  }
  if (now_ns >= next_publish_ns_ || !ops.empty() || !batch_.empty()) {
    next_publish_ns_ = now_ns + kPublishNs;
    publish(now_ns);
  }
}

void ColoCtrl::apply_event(const ctrl::Event& e, uint64_t now_ns) {
  std::fprintf(stderr, "%s: event %s\n", prog_.c_str(), e.to_json().dump().c_str());
  if (log_ != nullptr) {
    ctrl::Json j = e.to_json();
    j.erase("event");
    j.erase("t_ns");
    log_->append(ctrl::to_string(e.kind), std::move(j));
  }
  if (e.kind == ctrl::EventKind::failover) {
    // The engine stops holding: a primary survivor's held output is released, the
    // compare ends (passthrough). QEMU's own failover moves the VMs.
    host_->compare_engine().failover(e.survivor, now_ns);
    std::lock_guard lock(mu_);
    failed_over_ = true;
    survivor_ = e.survivor;
  }
}

void ColoCtrl::publish(uint64_t now_ns) {
  Engine& eng = host_->compare_engine();
  ColoView v;
  host_->view(v);
  {
    std::lock_guard lock(mu_);
    counters_ = eng.counters();
    held_ = eng.held_frames();
    epoch_ = eng.epoch();
    outstanding_ = eng.checkpoint_outstanding();
    mode_ = eng.mode();
    settings_ = eng.settings();
    view_ = std::move(v);
  }
  log_ports();
  log_drops(now_ns);
}

void ColoCtrl::log_ports() {
  std::vector<std::pair<std::string, bool>> changes;
  {
    std::lock_guard lock(mu_);
    for (const auto& p : view_.ports) {
      // A port's first state is not news unless it is already connected.
      auto it = connected_logged_.find(p.name);
      const bool first = it == connected_logged_.end();
      if (first ? p.connected : it->second != p.connected) changes.emplace_back(p.name, p.connected);
      connected_logged_[p.name] = p.connected;
    }
  }
  if (log_ == nullptr) return;
  for (const auto& [name, up] : changes)
    log_->append("port", {{"port", name}, {"connected", up}});
}

// At most once a second: the engine's drops since the last such event, by reason.
void ColoCtrl::log_drops(uint64_t now_ns) {
  if (log_ == nullptr || now_ns < next_drops_ns_) return;
  next_drops_ns_ = now_ns + kDropsEveryNs;
  std::map<std::string, uint64_t> now;
  {
    std::lock_guard lock(mu_);
    for (unsigned d = 0; d < kDropReasonCount; ++d) {
      const std::string r(to_string(static_cast<DropReason>(d)));
      now["pvm." + r] = counters_.pvm_dropped[d];
      now["svm." + r] = counters_.svm_dropped[d];
    }
  }
  ctrl::Json delta = ctrl::counter_increase(drops_logged_, std::move(now));
  if (!delta.empty()) log_->append("drops", {{"by_reason", delta}});
}

void ColoCtrl::on_request(const CheckpointRequest& r, bool coalesced, uint64_t now_ns) {
  {
    std::lock_guard lock(mu_);
    if (coalesced) {
      ++coalesced_;
    } else {
      ++requested_;
      last_reason_ = std::string(to_string(r.reason));
    }
  }
  if (!coalesced && request_ns_ == 0) request_ns_ = now_ns;
  if (log_ == nullptr) return;
  // r's times are on the runner's clock (monotonic), as is now_ns.
  ctrl::Json j = ctrl::checkpoint_request_json(r, now_ns, ctrl::wall_now_ns());
  j["coalesced"] = coalesced;
  log_->append("checkpoint_request", std::move(j));
}

void ColoCtrl::on_done(uint64_t epoch, uint64_t now_ns) {
  const uint64_t took = request_ns_ != 0 && now_ns > request_ns_ ? now_ns - request_ns_ : 0;
  const bool requested = request_ns_ != 0;
  request_ns_ = 0;
  ctrl::Json j{{"epoch", epoch}};
  {
    std::lock_guard lock(mu_);
    ++done_;
    if (requested) {
      ++checkpoint_hist_[latency_bucket(took)];
      checkpoint_ns_ += took;
    }
  }
  if (requested) {
    j["duration_ms"] = static_cast<double>(took / 1000) / 1000.0;
  } else {
    j["requested"] = false;  // the checkpointer checkpointed by itself
  }
  if (log_ != nullptr) log_->append("checkpoint_done", std::move(j));
}

void ColoCtrl::on_timeout(uint64_t epoch, uint32_t attempt, uint64_t) {
  {
    std::lock_guard lock(mu_);
    ++timeouts_;
  }
  if (log_ != nullptr) {
    log_->append("checkpoint_timeout",
                 {{"epoch", epoch}, {"attempt", attempt}, {"detail", "PVM output stays held"}});
  }
}

ctrl::Json ColoCtrl::status() {
  refresh();
  std::lock_guard lock(mu_);
  ctrl::Json j;
  j["id"] = id_;
  j["mode"] = to_string(mode_);
  j["colo_compare"] = true;
  j["epoch"] = epoch_;
  j["checkpoint"] = {{"checkpointer", "notify_dev"},
                     {"outstanding", outstanding_},
                     {"requested", requested_},
                     {"coalesced", coalesced_},
                     {"done", done_},
                     {"timeouts", timeouts_},
                     {"last_reason", last_reason_.empty() ? ctrl::Json(nullptr)
                                                          : ctrl::Json(last_reason_)}};
  j["held_frames"] = held_;
  j["conns_active"] = counters_.conns_active;
  j["failed_over"] = failed_over_ ? ctrl::Json({{"survivor", survivor_ == Survivor::primary
                                                                 ? "primary"
                                                                 : "secondary"}})
                                  : ctrl::Json(nullptr);
  ctrl::Json ports = ctrl::Json::object();
  for (const auto& p : view_.ports) {
    ctrl::Json pj{{"connected", p.connected}, {"bound", p.bound}};
    for (const auto& [k, v] : p.counters)
      if (k == "connects" || k == "disconnects") pj[k] = v;
    ports[p.name] = pj;
  }
  j["ports"] = ports;
  if (view_.extra.contains("pool")) j["pool"] = view_.extra["pool"];
  j["ops_dropped"] = ops_dropped_;
  j["settings"] = {{"refused", settings_refused_}};
  if (!last_settings_error_.empty()) j["settings"]["last_error"] = last_settings_error_;
  return j;
}

ctrl::Json ColoCtrl::stats(bool reset) {
  refresh();
  std::lock_guard lock(mu_);
  ctrl::Json eng = ctrl::Json::object();
  std::map<std::string, uint64_t> base;
  for (const auto& [k, v] : base_counters_.flatten()) base[k] = v;
  for (const auto& [k, v] : counters_.flatten()) {
    const uint64_t b = base.count(k) ? base[k] : 0;
    eng[k] = is_gauge(k) || v < b ? v : v - b;
  }
  ctrl::Json ports = ctrl::Json::object();
  for (const auto& p : view_.ports) {
    const std::vector<std::pair<std::string, uint64_t>>* b = nullptr;
    for (const auto& q : base_view_.ports)
      if (q.name == p.name) b = &q.counters;
    ctrl::Json pj = counters_json(p.counters, b);
    pj["connected"] = p.connected;
    ports[p.name] = pj;
  }
  ctrl::Json j;
  j["engine"] = eng;
  j["ports"] = ports;
  j["notify"] = counters_json(view_.notify, base_view_.notify.empty() ? nullptr : &base_view_.notify);
  for (auto it = view_.extra.begin(); it != view_.extra.end(); ++it) j[it.key()] = it.value();
  j["held_frames"] = held_;
  j["checkpoints"] = {{"requested", requested_}, {"coalesced", coalesced_}, {"done", done_},
                      {"timeouts", timeouts_}};
  j["since_s"] = (ctrl::monotonic_ns() - baseline_ns_) / 1000000000;
  if (reset) {  // a baseline: the engine's counters are never written from here
    base_counters_ = counters_;
    base_view_ = view_;
    baseline_ns_ = ctrl::monotonic_ns();
  }
  return j;
}

ctrl::Json ColoCtrl::conns(const std::string& filter, size_t limit) {
  auto reply = std::make_shared<Reply<std::vector<ConnInfo>>>();
  // With a filter, look at more than `limit` (bounded) and keep the matches.
  const size_t ask = filter.empty() ? limit : std::max<size_t>(limit, 10000);
  std::string error;
  if (!post([this, reply, ask](uint64_t) {
        std::vector<ConnInfo> v;
        host_->compare_engine().list_connections(v, ask);
        reply->set(std::move(v));
      }, &error)) {
    return {{"error", error}, {"connections", ctrl::Json::array()}, {"shown", 0}, {"limit", limit}};
  }
  std::vector<ConnInfo> list;
  if (!reply->wait(kConnsWait, list)) {
    return {{"error", "the runner did not answer within 1 s"},
            {"connections", ctrl::Json::array()}, {"shown", 0}, {"limit", limit}};
  }
  ctrl::Json a = ctrl::Json::array();
  for (const auto& c : list) {
    if (a.size() >= limit) break;
    ctrl::Json j = ctrl::conn_json(c);
    if (!filter.empty() && j["flow"].get<std::string>().find(filter) == std::string::npos) continue;
    a.push_back(std::move(j));
  }
  const size_t shown = a.size();
  return {{"connections", std::move(a)}, {"shown", shown}, {"limit", limit}};
}

Settings ColoCtrl::settings() {
  std::lock_guard lock(mu_);
  return settings_;
}

bool ColoCtrl::apply_settings(const Settings& s, std::string& error) {
  auto reply = std::make_shared<Reply<SettingsAnswer>>();
  if (!post([this, reply, s](uint64_t now) {
        Engine& eng = host_->compare_engine();
        const Settings before = eng.settings();
        const Mode mode_before = eng.mode();
        SettingsAnswer a;
        a.ok = eng.apply_settings(s, a.error);
        if (a.ok) {
          Mode m;
          if (s.mode != before.mode && mode_from_string(s.mode, m)) eng.set_mode(m, now);
          host_->settings_applied(eng.settings());
          log_settings_change(before, eng.settings());
          if (log_ != nullptr && eng.mode() != mode_before) {
            log_->append("mode", {{"from", to_string(mode_before)}, {"to", to_string(eng.mode())}});
          }
        }
        reply->set(std::move(a));
      }, &error)) {
    return false;
  }
  SettingsAnswer a;
  if (!reply->wait(kSettingsWait, a)) {
    error = "the runner did not confirm the change within 2 s (it is queued)";
    return false;
  }
  std::lock_guard lock(mu_);
  if (!a.ok) {
    ++settings_refused_;
    last_settings_error_ = a.error;
    error = a.error;
    return false;
  }
  settings_ = s;  // published again by the loop after the operation
  return true;
}

void ColoCtrl::log_settings_change(const Settings& before, const Settings& after) {
  if (log_ == nullptr) return;
  ctrl::Json changed = ctrl::settings_change_json(before, after);
  if (!changed.empty()) log_->append("config", {{"changed", changed}});
}

bool ColoCtrl::request_checkpoint(std::string& error) {
  return run_on_loop([this](uint64_t now) {
    host_->compare_engine().request_checkpoint(CheckpointReason::manual, now);
  }, error);
}

bool ColoCtrl::set_mode(Mode m, std::string& error) {
  return run_on_loop([this, m](uint64_t now) {
    Engine& eng = host_->compare_engine();
    const Mode from = eng.mode();
    eng.set_mode(m, now);
    if (log_ != nullptr && from != m) {
      log_->append("mode", {{"from", to_string(from)}, {"to", to_string(m)}});
    }
  }, error);
}

bool ColoCtrl::capture_start(const ctrl::CaptureRequest&, ctrl::Json&, std::string& error) {
  error = "capture is not available in colo-compare mode";
  return false;
}

bool ColoCtrl::capture_stop(const std::string&, ctrl::Json&, std::string& error) {
  error = "capture is not available in colo-compare mode";
  return false;
}

void ColoCtrl::metrics(std::vector<ctrl::MetricSample>& out) {
  refresh();
  std::lock_guard lock(mu_);
  // One engine: labelled as lockstepd's worker 0, so that the same queries serve both.
  ctrl::append_engine_counters(counters_, {{"worker", "0"}}, out);
  const ctrl::Labels inst{{"id", id_}};
  for (const auto& p : view_.ports) {
    ctrl::Labels l{{"id", id_}, {"port", p.name}};
    for (const auto& [k, v] : p.counters) {
      ctrl::add_sample(out, "lockstep_colo_port_" + k + "_total",
                       "lockstep-colo chardev port counter " + k, ctrl::MetricType::counter,
                       static_cast<double>(v), l);
    }
    ctrl::add_sample(out, "lockstep_colo_port_connected", "1 while the chardev port has a peer",
                     ctrl::MetricType::gauge, p.connected ? 1.0 : 0.0, l);
  }
  for (const auto& [k, v] : view_.notify) {
    ctrl::add_sample(out, "lockstep_colo_" + k + "_total", "lockstep-colo notify_dev counter " + k,
                     ctrl::MetricType::counter, static_cast<double>(v), inst);
  }
  ctrl::add_sample(out, "lockstep_colo_held_frames", "PVM and SVM frames the engine holds",
                   ctrl::MetricType::gauge, static_cast<double>(held_), inst);
  ctrl::add_sample(out, "lockstep_colo_checkpoint_requests_total",
                   "checkpoint requests taken from the engine (not coalesced)",
                   ctrl::MetricType::counter, static_cast<double>(requested_), inst);
  ctrl::add_sample(out, "lockstep_colo_checkpoints_done_total", "checkpoints done",
                   ctrl::MetricType::counter, static_cast<double>(done_), inst);
  ctrl::add_sample(out, "lockstep_settings_refused_total", "live settings changes refused",
                   ctrl::MetricType::counter, static_cast<double>(settings_refused_));
  ctrl::add_sample(out, "lockstep_failed_over", "1 once a failover was applied to the engine",
                   ctrl::MetricType::gauge, failed_over_ ? 1.0 : 0.0);
  ctrl::append_latency_histogram(out, "lockstep_checkpoint_duration_seconds",
                                 "checkpoints from the request taken to the done received",
                                 checkpoint_hist_, checkpoint_ns_);
}

ctrl::Json ColoCtrl::version() { return {{"mode", "colo-compare"}, {"checkpointer", "notify_dev"}}; }

}  // namespace lockstep::chardev
