#include "ctrl/metrics.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

namespace lockstep::ctrl {

std::string sanitize_metric_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e18) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

}  // namespace

std::string prometheus_text(const std::vector<MetricSample>& samples) {
  std::vector<std::string> order;
  std::unordered_map<std::string, std::vector<const MetricSample*>> by_name;
  for (const auto& s : samples) {
    std::string n = sanitize_metric_name(s.family.empty() ? s.name : s.family);
    auto [it, fresh] = by_name.try_emplace(n);
    if (fresh) order.push_back(n);
    it->second.push_back(&s);
  }
  std::string out;
  for (const auto& n : order) {
    const auto& group = by_name[n];
    out += "# HELP " + n + " " + escape_help(group.front()->help) + "\n";
    const MetricType type = group.front()->type;
    out += "# TYPE " + n +
           (type == MetricType::counter ? " counter\n"
            : type == MetricType::gauge ? " gauge\n"
                                        : " histogram\n");
    for (const MetricSample* s : group) {
      out += s->family.empty() ? n : sanitize_metric_name(s->name);
      if (!s->labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : s->labels) {
          if (!first) out += ',';
          first = false;
          out += sanitize_metric_name(k) + "=\"" + escape_label_value(v) + "\"";
        }
        out += '}';
      }
      out += ' ' + format_value(s->value) + '\n';
    }
  }
  return out;
}

void add_sample(std::vector<MetricSample>& out, std::string name, std::string help,
                MetricType type, double value, Labels labels) {
  out.push_back(MetricSample{std::move(name), std::move(help), type, std::move(labels), value, {}});
}

void append_latency_histogram(std::vector<MetricSample>& out, const std::string& family,
                              const std::string& help, const LatencyHist& h, uint64_t sum_ns,
                              const Labels& base) {
  auto row = [&](std::string suffix, double value, Labels l) {
    out.push_back(MetricSample{family + suffix, help, MetricType::histogram, std::move(l), value,
                               family});
  };
  uint64_t cumulative = 0;
  for (unsigned i = 0; i < kLatencyBuckets; ++i) {
    cumulative += h[i];
    Labels l = base;
    if (i + 1 == kLatencyBuckets) {
      l.emplace_back("le", "+Inf");
    } else {
      // Bucket i holds values below 2^i us; the bound in seconds, shortest form.
      char le[32];
      std::snprintf(le, sizeof le, "%.9g", static_cast<double>(uint64_t{1} << i) * 1e-6);
      l.emplace_back("le", le);
    }
    row("_bucket", static_cast<double>(cumulative), std::move(l));
  }
  row("_sum", static_cast<double>(sum_ns) * 1e-9, base);
  row("_count", static_cast<double>(cumulative), base);
}

namespace {

bool is_gauge(std::string_view name) {
  return name == "held_pvm" || name == "held_svm" || name == "held_ingress" ||
         name == "conns_active" || name == "normalize_conns" || name == "normalize_state_bytes";
}

template <size_t N>
void append_array(const std::array<uint64_t, N>& values, const char* const (&names)[N],
                  const std::string& metric, const std::string& help, const Labels& base,
                  std::vector<MetricSample>& out) {
  for (size_t i = 0; i < N; ++i) {
    Labels l = base;
    l.emplace_back("reason", names[i]);
    add_sample(out, metric, help, MetricType::counter, static_cast<double>(values[i]), l);
  }
}

constexpr const char* kReleaseNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_RELEASE_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
constexpr const char* kDropNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_DROP_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
constexpr const char* kCheckpointNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_CHECKPOINT_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
constexpr const char* kParseNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_PARSE_STATUSES(LOCKSTEP_X)
#undef LOCKSTEP_X
};

}  // namespace

void append_engine_counters(const Counters& c, const Labels& base, std::vector<MetricSample>& out) {
#define LOCKSTEP_X(name, help)                                                              \
  add_sample(out, is_gauge(#name) ? "lockstep_" #name : "lockstep_" #name "_total", help,   \
             is_gauge(#name) ? MetricType::gauge : MetricType::counter,                     \
             static_cast<double>(c.name), base);
  LOCKSTEP_SCALAR_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  append_array(c.released, kReleaseNames, "lockstep_released_total",
               "frames released, by reason", base, out);
  append_array(c.pvm_dropped, kDropNames, "lockstep_pvm_dropped_total",
               "PVM frames dropped under a policy, by reason", base, out);
  append_array(c.svm_dropped, kDropNames, "lockstep_svm_dropped_total",
               "SVM frames dropped, by reason", base, out);
  append_array(c.ingress_dropped, kDropNames, "lockstep_ingress_dropped_total",
               "SVM-bound client copies not sent, by reason", base, out);
  append_array(c.checkpoint_reason, kCheckpointNames, "lockstep_checkpoint_reason_total",
               "checkpoint triggers, by reason", base, out);
  append_array(c.parse_pvm, kParseNames, "lockstep_parse_pvm_total",
               "PVM frames by parse outcome", base, out);
  append_array(c.parse_svm, kParseNames, "lockstep_parse_svm_total",
               "SVM frames by parse outcome", base, out);
  append_array(c.parse_ingress, kParseNames, "lockstep_parse_ingress_total",
               "client frames by parse outcome", base, out);
  append_latency_histogram(out, "lockstep_hold_seconds",
                           "arrival to release of held PVM frames (any release reason)",
                           c.hold_hist, c.held_release_ns, base);
  append_latency_histogram(out, "lockstep_svm_lag_seconds",
                           "how far the SVM's equal output came behind the PVM's (matched "
                           "releases)",
                           c.svm_lag_hist, c.svm_lag_ns, base);
  append_latency_histogram(out, "lockstep_ack_wait_seconds",
                           "hold added by the ACK rule (PVM frames waiting for the SVM's ACK)",
                           c.ack_wait_hist, c.pvm_ack_wait_ns, base);
}

}  // namespace lockstep::ctrl
