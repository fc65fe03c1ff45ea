#include "dataplane/qos_ctrl.h"

#include "dataplane/sched/spec.h"

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
                 {"reconciles", g.reconciles},     {"reconcile_errors", g.reconcile_errors}};
  }
  return j;
}

std::vector<std::string> DataplaneQosControl::ports() {
  return hub_ ? hub_->ports() : std::vector<std::string>{};
}

bool DataplaneQosControl::apply(const std::string& port, const std::string& command,
                                ctrl::Json& result, std::string& error) {
  if (hub_ == nullptr) {
    error = "no port carries a scheduler (add a qos: section to the configuration)";
    return false;
  }
  const uint64_t gen = hub_->apply(port, command, error);
  if (gen == 0) return false;
  result["port"] = port;
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
  QosShowResult r;
  if (!hub_->show(port, stats, wait_ns_, r, error)) return false;
  result = qos_show_json(r, stats);
  return true;
}

}  // namespace lockstep::dp
