// Metrics in the Prometheus text exposition format (version 0.0.4). Samples are built by
// whoever owns the counters (the daemon sums its workers' engine counters, the control
// plane adds its own) and rendered here. Names: lockstep_<counter>[_total] with labels
// such as worker="0", reason="payload_mismatch". Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "compare/counters.h"

namespace lockstep::ctrl {

enum class MetricType : uint8_t { counter, gauge, histogram };

using Labels = std::vector<std::pair<std::string, std::string>>;

struct MetricSample {
  std::string name;  // full metric name, e.g. "lockstep_checkpoint_requests_total"
  std::string help;
  MetricType type = MetricType::counter;
  Labels labels;
  double value = 0;
  // Histogram rows (name_bucket, name_sum, name_count): the metric they belong to, which
  // carries the HELP and TYPE lines. Empty for counters and gauges.
  std::string family;
};

// Maps every character outside [a-zA-Z0-9_:] to '_' and a leading digit to '_'.
std::string sanitize_metric_name(std::string_view name);
// Escapes \, " and newline in a label value.
std::string escape_label_value(std::string_view v);

// Renders samples; samples of one name are grouped under one HELP/TYPE header, in the
// order names first appear.
std::string prometheus_text(const std::vector<MetricSample>& samples);

// The engine's counters as samples (lockstep_<name>_total for counters, lockstep_<name>
// for gauges; per-reason arrays as one metric with a `reason` label), with `base`
// labels (e.g. {"worker","0"}) on each.
void append_engine_counters(const Counters& c, const Labels& base, std::vector<MetricSample>& out);

// A latency histogram of log2 microsecond buckets (compare/counters.h) as a Prometheus
// histogram in seconds: family_bucket{le=...} (cumulative), family_sum, family_count.
void append_latency_histogram(std::vector<MetricSample>& out, const std::string& family,
                              const std::string& help, const LatencyHist& h, uint64_t sum_ns,
                              const Labels& base = {});

// Adds a sample (helper for callers).
void add_sample(std::vector<MetricSample>& out, std::string name, std::string help,
                MetricType type, double value, Labels labels = {});

}  // namespace lockstep::ctrl
