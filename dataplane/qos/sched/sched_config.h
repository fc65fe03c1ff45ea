// The scheduler configuration of one port as a value: port rate, classes by name,
// filters by pref. Commands (spec.h) are checked against it and applied to a copy, so
// a refused command changes nothing; the control thread validates here and publishes the
// resulting value, and the port's thread makes its running scheduler match it
// (QosPort::reconcile). Pure C++, no DPDK.
#pragma once

#include <string>
#include <vector>

#include "dataplane/qos/sched/scheduler.h"
#include "dataplane/qos/sched/spec.h"

namespace lockstep::sched {

inline constexpr const char* kDefaultClassName = "default";

struct ClassEntry {
  std::string name;
  ClassParams params;
};

struct FilterEntry {
  uint32_t pref = 0;
  Match match;
  std::string class_name;
};

struct QosConfig {
  std::string dev;
  bool has_qdisc = false;            // a qdisc was added (and not deleted)
  PortParams port;
  std::string default_class = kDefaultClassName;
  std::vector<ClassEntry> classes;   // "default" always first
  std::vector<FilterEntry> filters;  // sorted by pref

  // A port with no qdisc: the class "default" alone, unshaped, no filters.
  static QosConfig initial(std::string dev);

  // Applies `c` if it is valid against this configuration and `limits`; otherwise
  // returns why (and changes nothing).
  std::string apply(const Command& c, const SchedConfig& limits);

  const ClassEntry* find_class(std::string_view name) const;
  // The configuration as commands that rebuild it ("qdisc add ...", "class add ...").
  std::vector<std::string> to_commands() const;
};

std::string to_text(const ClassEntry& c, const std::string& dev, bool is_default);
std::string to_text(const FilterEntry& f, const std::string& dev);

}  // namespace lockstep::sched
