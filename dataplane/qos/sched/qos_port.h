// One port's scheduler as the port's thread owns it: the Scheduler, the Classifier and
// the configuration they were built from, with class names mapped to class ids. The
// control side validates commands on a QosConfig copy (sched_config.h) and hands the new value
// over; reconcile() makes the running scheduler match it between bursts, keeping every
// queued packet (a deleted class's backlog moves to the default class, counted).
//
// Ownership: the port's tx thread. apply()/apply_script() are conveniences for a thread
// that owns both sides (tests, single-threaded tools, config load at start-up).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "dataplane/qos/sched/classifier.h"
#include "dataplane/qos/sched/sched_config.h"
#include "dataplane/qos/sched/scheduler.h"

namespace lockstep::sched {

class QosPort {
 public:
  QosPort(std::string dev, const SchedConfig& cfg);

  // Parse, validate and apply one command (or a whole config text, all or nothing).
  std::string apply(std::string_view command, uint64_t now_ns);
  std::string apply(const Command& c, uint64_t now_ns);
  std::string apply_script(std::string_view text, uint64_t now_ns);

  // Makes the running scheduler and classifier match `target` (already validated).
  std::string reconcile(const QosConfig& target, uint64_t now_ns);

  const QosConfig& config() const { return cfg_; }
  Scheduler& scheduler() { return sched_; }
  const Scheduler& scheduler() const { return sched_; }
  const Classifier& classifier() const { return classifier_; }
  ClassId class_id(std::string_view name) const;  // kNoClass if unknown
  const std::string& class_name(ClassId id) const;

  // `tc -s`-like text: the qdisc, each class (with counters when `stats`), each filter.
  std::string show(bool stats, uint64_t now_ns) const;

 private:
  QosConfig cfg_;
  Scheduler sched_;
  Classifier classifier_;
  std::array<std::string, kMaxClasses> names_{};
};

}  // namespace lockstep::sched
