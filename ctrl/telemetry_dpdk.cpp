#include "ctrl/telemetry_dpdk.h"

#include <rte_telemetry.h>

#include <mutex>
#include <set>

namespace lockstep::ctrl {

namespace {

std::mutex g_mu;
MetricsSource g_source;

// DPDK accepts only [A-Za-z0-9_/] in dict names: labels become /key/value segments.
std::string telemetry_safe(std::string_view v) {
  std::string out;
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string sample_key(const MetricSample& s) {
  std::string k = telemetry_safe(s.name);
  for (const auto& [n, v] : s.labels) k += "/" + telemetry_safe(n) + "/" + telemetry_safe(v);
  return k;
}

std::vector<MetricSample> collect() {
  std::lock_guard lock(g_mu);
  return g_source ? g_source() : std::vector<MetricSample>{};
}

int cb_metrics(const char*, const char* params, struct rte_tel_data* d) {
  std::string prefix = params != nullptr ? params : "";
  rte_tel_data_start_dict(d);
  int n = 0;
  for (const auto& s : collect()) {
    std::string key = sample_key(s);
    if (!prefix.empty() && key.rfind(prefix, 0) != 0) continue;
    if (key.size() >= RTE_TEL_MAX_STRING_LEN || n >= RTE_TEL_MAX_DICT_ENTRIES) continue;
    rte_tel_data_add_dict_u64(d, key.c_str(), static_cast<uint64_t>(s.value < 0 ? 0 : s.value));
    ++n;
  }
  return 0;
}

// /lockstep/guest,NAME: the samples of one guest (lockstepd with guests:), keyed as in
// /lockstep/metrics without the guest label.
int cb_guest(const char*, const char* params, struct rte_tel_data* d) {
  const std::string guest = params != nullptr ? params : "";
  if (guest.empty()) return -1;  // DPDK answers the error to the client
  rte_tel_data_start_dict(d);
  int n = 0;
  for (auto s : collect()) {
    bool mine = false;
    for (auto it = s.labels.begin(); it != s.labels.end(); ++it) {
      if (it->first != "guest") continue;
      mine = it->second == guest;
      s.labels.erase(it);
      break;
    }
    if (!mine) continue;
    std::string key = sample_key(s);
    if (key.size() >= RTE_TEL_MAX_STRING_LEN || n >= RTE_TEL_MAX_DICT_ENTRIES) continue;
    rte_tel_data_add_dict_u64(d, key.c_str(), static_cast<uint64_t>(s.value < 0 ? 0 : s.value));
    ++n;
  }
  return 0;
}

int cb_names(const char*, const char*, struct rte_tel_data* d) {
  rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
  std::set<std::string> names;
  for (const auto& s : collect()) names.insert(sanitize_metric_name(s.name));
  int n = 0;
  for (const auto& name : names) {
    if (n++ >= RTE_TEL_MAX_ARRAY_ENTRIES) break;
    rte_tel_data_add_array_string(d, name.c_str());
  }
  return 0;
}

}  // namespace

bool register_dpdk_telemetry(MetricsSource source, std::string& error) {
  {
    std::lock_guard lock(g_mu);
    g_source = std::move(source);
  }
  if (rte_telemetry_register_cmd("/lockstep/metrics", cb_metrics,
                                 "lockstep counters; parameter: a metric name prefix") != 0 ||
      rte_telemetry_register_cmd("/lockstep/names", cb_names, "lockstep metric names") != 0 ||
      rte_telemetry_register_cmd("/lockstep/guest", cb_guest,
                                 "one guest's counters; parameter: the guest's name") != 0) {
    error = "rte_telemetry_register_cmd failed (already registered?)";
    return false;
  }
  return true;
}

}  // namespace lockstep::ctrl
