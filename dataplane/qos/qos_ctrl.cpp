#include "dataplane/qos/qos_ctrl.h"

#include "dataplane/qos/sched/roles.h"
#include "dataplane/qos/sched/spec.h"

namespace lockstep::dp {
namespace {

ctrl::Json drops_json(const std::array<uint64_t, sched::kDropCount>& d) {
  ctrl::Json j = ctrl::Json::object();
  for (unsigned i = 0; i < sched::kDropCount; ++i)
    j[std::string(sched::to_string(static_cast<sched::Drop>(i)))] = d[i];
  return j;
}

ctrl::Json params_json(const sched::ClassParams& p) {
  return {{"prio", p.prio},           {"rate", p.rate ? sched::format_rate(p.rate) : ""},
          {"ceil", p.ceil ? sched::format_rate(p.ceil) : ""},
          {"rate_Bps", p.rate},       {"ceil_Bps", p.ceil},
          {"conn_rate_Bps", p.conn_rate}, {"limit", p.limit ? p.limit : sched::kDefaultClassLimit},
          {"conn_limit", p.conn_limit}};
}

}  // namespace

ctrl::Json qos_show_json(const QosShowResult& r, bool stats) {
  ctrl::Json j;
  j["port"] = r.port;
  if (!r.guest.empty()) j["guest"] = r.guest;
  j["port_id"] = r.port_id;
  j["generation"] = r.generation;
  j["text"] = r.text;
  j["qdisc"] = {{"rate", r.config.port.rate ? sched::format_rate(r.config.port.rate) : "unshaped"},
                {"rate_Bps", r.config.port.rate},
                {"default", r.config.default_class}};
  ctrl::Json classes = ctrl::Json::array();
  for (const auto& c : r.classes) {
    ctrl::Json cj = params_json(c.stats.params);
    cj["name"] = c.name;
    if (stats) {
      const auto& k = c.stats.ctr;
      cj["sent_pkts"] = k.deq_pkts;
      cj["sent_bytes"] = k.deq_bytes;
      cj["enq_pkts"] = k.enq_pkts;
      cj["borrowed_pkts"] = k.borrowed_pkts;
      cj["dropped"] = k.drops_total();
      cj["drops"] = drops_json(k.drops);
      cj["moved_in"] = k.moved_in_pkts;
      cj["moved_out"] = k.moved_out_pkts;
      cj["backlog_pkts"] = c.stats.backlog_pkts;
      cj["backlog_bytes"] = c.stats.backlog_bytes;
      cj["conns"] = c.stats.conns;
      cj["conns_throttled"] = c.stats.conns_throttled;
    }
    classes.push_back(std::move(cj));
  }
  j["classes"] = std::move(classes);
  ctrl::Json filters = ctrl::Json::array();
  for (const auto& f : r.config.filters) {
    const std::string m = sched::format_match(f.match);
    filters.push_back({{"pref", f.pref}, {"match", m.empty() ? "all" : m}, {"class", f.class_name}});
  }
  j["filters"] = std::move(filters);
  if (stats) {
    const auto& p = r.port_stats;
    j["stats"] = {{"sent_pkts", p.ctr.deq_pkts},     {"sent_bytes", p.ctr.deq_bytes},
                  {"enq_pkts", p.ctr.enq_pkts},      {"dropped", p.ctr.drops_total()},
                  {"drops", drops_json(p.ctr.drops)}, {"backlog_pkts", p.backlog_pkts},
                  {"backlog_bytes", p.backlog_bytes}, {"conns", p.conns},
                  {"conns_evicted", p.ctr.conns_evicted}, {"moved_pkts", p.ctr.moved_pkts},
                  {"shaped_stalls", p.ctr.shaped_stalls}};
    const auto& g = r.glue;
    j["glue"] = {{"frames_in", g.frames_in},       {"handed_off", g.handed_off},
                 {"handoff_full", g.handoff_full}, {"tx_sent", g.tx_sent},
                 {"tx_bytes", g.tx_bytes},         {"tx_deferred", g.tx_deferred},
                 {"reconciles", g.reconciles},     {"reconcile_errors", g.reconcile_errors},
                 {"roles_applied", g.roles_applied}};
    ctrl::Json by_role = ctrl::Json::object();
    for (unsigned i = 0; i < sched::kTrafficRoleCount; ++i)
      by_role[std::string(sched::to_string(static_cast<sched::TrafficRole>(i)))] = g.role_frames[i];
    j["glue"]["role_frames"] = std::move(by_role);
  }
  return j;
}

std::vector<std::string> DataplaneQosControl::ports() {
  return hub_ ? hub_->ports(guest()) : std::vector<std::string>{};
}

bool DataplaneQosControl::apply(const std::string& port, const std::string& command,
                                ctrl::Json& result, std::string& error) {
  if (hub_ == nullptr) {
    error = "no port carries a scheduler (add a qos: section to the configuration)";
    return false;
  }
  const int g = guest();
  const uint64_t gen = hub_->apply(g, port, command, error);
  if (gen == 0) return false;
  result["port"] = port;
  if (g != QosHub::kTopLevel) result["guest"] = hub_->guest_name(g);
  result["generation"] = gen;
  result["applied"] = hub_->wait_applied(gen, wait_ns_);
  return true;
}

bool DataplaneQosControl::show(const std::string& port, bool stats, ctrl::Json& result,
                               std::string& error) {
  if (hub_ == nullptr) {
    error = "no port carries a scheduler (add a qos: section to the configuration)";
    return false;
  }
  std::vector<QosShowResult> all;
  if (!hub_->show(guest(), port, stats, wait_ns_, all, error)) return false;
  result = qos_show_json(all.front(), stats);
  if (all.size() > 1) {  // several ports of the role scheduled: one scheduler each
    std::string text;
    ctrl::Json each = ctrl::Json::array();
    for (const auto& r : all) {
      text += "port " + std::to_string(r.port_id) + ":\n" + r.text;
      each.push_back(qos_show_json(r, stats));
    }
    result["text"] = text;
    result["per_port"] = std::move(each);
  }
  return true;
}

bool DataplaneQosControl::apply_role(const std::string& command, ctrl::Json& result,
                                     std::string& error) {
  if (hub_ == nullptr) {
    error = "no port carries a scheduler (add a qos: section to the configuration)";
    return false;
  }
  const uint64_t gen = hub_->apply_role(command, error);
  if (gen == 0) return false;
  result["generation"] = gen;
  result["applied"] = hub_->wait_applied(gen, wait_ns_);
  return true;
}

bool DataplaneQosControl::roles(ctrl::Json& result, std::string& error) {
  if (hub_ == nullptr) {
    error = "no port carries a scheduler (add a qos: section to the configuration)";
    return false;
  }
  const sched::RoleMap m = hub_->roles();
  ctrl::Json rules = ctrl::Json::array();
  std::string text;
  for (const auto& r : m.rules()) {
    const std::string match = sched::format_match(r.match);
    rules.push_back({{"pref", r.pref},
                     {"role", std::string(sched::to_string(r.role))},
                     {"match", match.empty() ? "all" : match}});
    text += sched::format_role_rule(r) + "\n";
  }
  text += "(no match: other)\n";
  result["rules"] = std::move(rules);
  result["text"] = text;
  return true;
}

namespace {

void sample(std::vector<ctrl::MetricSample>& out, const char* name, const char* help,
            ctrl::MetricType type, uint64_t v, ctrl::Labels l) {
  ctrl::add_sample(out, name, help, type, static_cast<double>(v), std::move(l));
}

}  // namespace

void append_qos_samples(const QosShowResult& r, std::vector<ctrl::MetricSample>& out) {
  using ctrl::MetricType;
  constexpr auto C = MetricType::counter;
  constexpr auto G = MetricType::gauge;
  // The scheduler's own labels: its port, and a guest's own its guest and port id.
  ctrl::Labels base{{"port", r.port}};
  if (!r.guest.empty()) base.emplace_back("guest", r.guest);
  if (!r.role_first) base.emplace_back("port_id", std::to_string(r.port_id));
  auto with = [&base](std::initializer_list<std::pair<std::string, std::string>> more) {
    ctrl::Labels l = base;
    for (const auto& kv : more) l.emplace_back(kv.first, kv.second);
    return l;
  };
  for (const auto& c : r.classes) {
    const ctrl::Labels l = with({{"class", c.name}});
    const auto& k = c.stats.ctr;
    sample(out, "lockstep_qos_class_enqueued_packets_total", "packets a class queued", C, k.enq_pkts, l);
    sample(out, "lockstep_qos_class_enqueued_bytes_total", "bytes a class queued", C, k.enq_bytes, l);
    sample(out, "lockstep_qos_class_sent_packets_total", "packets a class sent", C, k.deq_pkts, l);
    sample(out, "lockstep_qos_class_sent_bytes_total", "bytes a class sent", C, k.deq_bytes, l);
    sample(out, "lockstep_qos_class_borrowed_packets_total",
           "packets a class sent above its guaranteed rate (borrowing up to its ceiling)", C,
           k.borrowed_pkts, l);
    for (unsigned d = 0; d < sched::kDropCount; ++d) {
      ctrl::Labels ld = l;
      ld.emplace_back("reason", std::string(sched::to_string(static_cast<sched::Drop>(d))));
      sample(out, "lockstep_qos_class_drops_total", "packets a class refused, by reason", C,
             k.drops[d], std::move(ld));
    }
    sample(out, "lockstep_qos_class_backlog_packets", "packets queued in a class now", G,
           c.stats.backlog_pkts, l);
    sample(out, "lockstep_qos_class_backlog_bytes", "bytes queued in a class now", G,
           c.stats.backlog_bytes, l);
    sample(out, "lockstep_qos_class_connections", "connection entries of a class now", G,
           c.stats.conns, l);
    sample(out, "lockstep_qos_class_connections_throttled",
           "connections of a class with packets waiting for their own bucket now", G,
           c.stats.conns_throttled, l);
  }
  const ctrl::Labels l = base;
  const auto& p = r.port_stats;
  sample(out, "lockstep_qos_enqueued_packets_total", "packets a port's scheduler queued", C, p.ctr.enq_pkts, l);
  sample(out, "lockstep_qos_enqueued_bytes_total", "bytes a port's scheduler queued", C, p.ctr.enq_bytes, l);
  sample(out, "lockstep_qos_sent_packets_total", "packets a port's scheduler sent", C, p.ctr.deq_pkts, l);
  sample(out, "lockstep_qos_sent_bytes_total", "bytes a port's scheduler sent", C, p.ctr.deq_bytes, l);
  for (unsigned d = 0; d < sched::kDropCount; ++d) {
    ctrl::Labels ld = l;
    ld.emplace_back("reason", std::string(sched::to_string(static_cast<sched::Drop>(d))));
    sample(out, "lockstep_qos_drops_total",
           "packets a port's scheduler refused, by reason (all classes, and no_class)", C,
           p.ctr.drops[d], std::move(ld));
  }
  sample(out, "lockstep_qos_backlog_packets", "packets queued in a port's scheduler now", G, p.backlog_pkts, l);
  sample(out, "lockstep_qos_backlog_bytes", "bytes queued in a port's scheduler now", G, p.backlog_bytes, l);
  sample(out, "lockstep_qos_connections", "connection entries of a port's scheduler now", G, p.conns, l);
  sample(out, "lockstep_qos_connections_evicted_total",
         "idle connection entries reused for another connection", C, p.ctr.conns_evicted, l);
  sample(out, "lockstep_qos_moved_packets_total", "backlog moved between classes by live changes", C,
         p.ctr.moved_pkts, l);
  sample(out, "lockstep_qos_shaped_stalls_total", "dequeues that stopped on the port rate", C,
         p.ctr.shaped_stalls, l);
  const auto& g = r.glue;
  for (unsigned i = 0; i < sched::kTrafficRoleCount; ++i)
    sample(out, "lockstep_qos_role_frames_total",
           "frames given to a port's scheduler, by their role in lockstep", C, g.role_frames[i],
           with({{"role", std::string(sched::to_string(static_cast<sched::TrafficRole>(i)))}}));
  sample(out, "lockstep_qos_handoff_full_total",
         "frames dropped: the handoff ring to the port's owner worker was full", C, g.handoff_full, l);
  sample(out, "lockstep_qos_tx_deferred_total", "frames the device did not take at once (sent later)",
         C, g.tx_deferred, l);
  sample(out, "lockstep_qos_reconciles_total", "configuration changes applied between bursts", C,
         g.reconciles, l);
}

void append_qos_metrics(QosHub* hub, uint64_t wait_ns, std::vector<ctrl::MetricSample>& out) {
  if (hub == nullptr) return;
  for (const auto& [guest, port] : hub->schedulers()) {
    std::vector<QosShowResult> all;
    std::string error;
    const bool ok = hub->show(guest, port, true, wait_ns, all, error);
    ctrl::Labels l{{"port", port}};
    if (guest != QosHub::kTopLevel) l.emplace_back("guest", hub->guest_name(guest));
    ctrl::add_sample(out, "lockstep_qos_up",
                     "1 when the port's worker answered for its scheduler's counters",
                     ctrl::MetricType::gauge, ok ? 1.0 : 0.0, std::move(l));
    if (ok)
      for (const auto& r : all) append_qos_samples(r, out);
  }
}

}  // namespace lockstep::dp
