// lockstepd's side of the `qos` ctrl commands: ctrl::QosControl over the dataplane's
// QosHub. Commands are validated on the control copy of the port's configuration and
// published to the port's worker (bounded wait for its acknowledgement); `show` asks the
// worker for its state (bounded wait). Runs on the ctrl server thread.
#pragma once

#include <functional>
#include <vector>

#include "ctrl/metrics.h"
#include "dataplane/qos/qos_commands.h"
#include "dataplane/qos/qos_glue.h"

namespace lockstep::dp {

class DataplaneQosControl final : public ctrl::QosControl {
 public:
  // hub may be null (no port carries a scheduler): every command says so.
  explicit DataplaneQosControl(QosHub* hub, uint64_t wait_ns = 1000000000ull)
      : hub_(hub), wait_ns_(wait_ns) {}
  // The guest the command being run names (`-g NAME`: its index; -1 without -g): its own
  // schedulers (guests.NAME.qos.ROLE) are addressed then, else the top level's.
  void set_guest_source(std::function<int()> f) { guest_ = std::move(f); }

  std::vector<std::string> ports() override;
  bool apply(const std::string& port, const std::string& command, ctrl::Json& result,
             std::string& error) override;
  bool show(const std::string& port, bool stats, ctrl::Json& result, std::string& error) override;
  bool apply_role(const std::string& command, ctrl::Json& result, std::string& error) override;
  bool roles(ctrl::Json& result, std::string& error) override;

 private:
  int guest() const { return guest_ ? guest_() : QosHub::kTopLevel; }
  QosHub* hub_;
  uint64_t wait_ns_;
  std::function<int()> guest_;
};

// The JSON form of a port's state (tests, metrics).
ctrl::Json qos_show_json(const QosShowResult& r, bool stats);

// A port's scheduler counters as Prometheus samples (labels port, class, reason, role;
// a guest's own scheduler adds guest and port_id):
// per class enqueued/sent packets and bytes, borrowed, drops per reason, backlog
// (queue depth) and connections; per port the same totals, shaping stalls, evictions;
// the glue's frames per traffic role, handoff and device refusals. Per-connection
// counters are not exported (up to 16384 connections a port: unbounded for a scrape).
void append_qos_samples(const QosShowResult& r, std::vector<ctrl::MetricSample>& out);

// Every scheduled port's samples, asked of the ports' worker (bounded wait per port);
// lockstep_qos_up says whether the worker answered. Nothing when hub is null.
void append_qos_metrics(QosHub* hub, uint64_t wait_ns, std::vector<ctrl::MetricSample>& out);

}  // namespace lockstep::dp
