// The egress scheduler of one port: strict-priority classes with a guaranteed rate, a
// ceiling and bursts (HTB + prio semantics), shaped to a port rate, and inside each class
// a token bucket per connection with deficit round robin among the connections that
// may send. Pure C++: time is an argument (ns), packets are opaque handles, all memory
// is sized at construction and nothing is allocated by enqueue or dequeue.
//
// Ownership: one Scheduler belongs to one thread (the port's tx worker). Every member
// function, control operations included, runs on that thread; control changes arrive
// between bursts (see qos_port.h).
//
// Dequeue order, for each packet handed out:
//   1. classes whose guaranteed-rate bucket and ceiling bucket both admit their next
//      packet, lowest prio first ("green"; charges rate and ceiling);
//   2. otherwise classes whose ceiling bucket admits it, lowest prio first ("borrowing":
//      charges the ceiling only, as HTB does for a leaf that borrows);
//   classes of equal prio share by deficit round robin (class quantum, bytes);
//   3. the port bucket must admit the chosen packet, else the burst stops there (no
//      lower class overtakes: a higher class waits at most for its own bytes).
// Inside a class, only connections whose bucket admits their head packet are in the
// round; the others wait on a timer wheel until their bucket will admit it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dataplane/qos/sched/sched_types.h"
#include "dataplane/qos/sched/token_bucket.h"

namespace lockstep::sched {

// Fixed at construction.
struct SchedConfig {
  uint32_t max_classes = kMaxClasses;  // 1..16
  uint32_t max_connections = 65536;    // connection entries, rounded up to a power of 2
  uint32_t max_packets = 65536;        // packets queued at once, all classes together
  uint32_t max_packet_bytes = 9216;    // longest packet accepted (<= 65535)
  uint32_t wheel_slots = 16384;        // throttled-connection timer wheel (power of 2)
  uint32_t wheel_slot_ns = 1024;       // its granularity (power of 2)
};

// Live. Zero means "not set" where noted.
struct PortParams {
  uint64_t rate = 0;   // bytes/s; 0: unshaped
  uint64_t burst = 0;  // bytes; 0: default max(2 * max_packet_bytes, rate * 100 us)
};

struct ClassParams {
  uint8_t prio = kMaxPrio;        // 0 is served first
  uint64_t rate = 0;              // guaranteed bytes/s; 0: none (borrows only)
  uint64_t ceil = 0;              // bytes/s ceiling; 0: none (the port rate bounds it)
  uint64_t burst = 0;             // rate bucket depth; 0: default
  uint64_t cburst = 0;            // ceiling bucket depth; 0: default
  uint64_t conn_rate = 0;         // per-connection bytes/s; 0: connections unthrottled
  uint64_t conn_burst = 0;        // per-connection bucket depth; 0: default
  uint32_t limit = 0;             // packets queued in the class; 0: default 10000
  uint64_t limit_bytes = 0;       // bytes queued in the class; 0: no byte limit
  uint32_t conn_limit = 0;        // packets queued per connection; 0: the class limit
  uint32_t quantum = 0;           // bytes per DRR round among equal-prio classes; 0: auto
};

inline constexpr uint32_t kDefaultClassLimit = 10000;
inline constexpr uint32_t kConnQuantum = 1514;  // DRR quantum among connections, bytes

// Checks params against the config; empty string when they are acceptable.
std::string validate(const SchedConfig& cfg);
std::string validate(const SchedConfig& cfg, const ClassParams& p);
std::string validate(const SchedConfig& cfg, const PortParams& p);

// What a class reports (control path).
struct ClassStats {
  bool in_use = false;
  ClassParams params;
  ClassCounters ctr;
  uint32_t backlog_pkts = 0;
  uint64_t backlog_bytes = 0;
  uint32_t conns = 0;            // connection entries of this class
  uint32_t conns_ready = 0;      // backlogged and allowed to send
  uint32_t conns_throttled = 0;  // backlogged, waiting for their bucket
  int64_t tokens = 0, ctokens = 0;  // rate and ceiling buckets now (bytes; < 0: debt)
};

struct ConnStats {
  uint64_t conn = 0;
  ClassId cls = kNoClass;
  uint64_t enq_pkts = 0;
  uint64_t deq_pkts = 0, deq_bytes = 0;
  uint64_t drops = 0;
  uint32_t backlog_pkts = 0, backlog_bytes = 0;
  bool throttled = false;
  int64_t tokens = 0;
};

struct PortStats {
  PortParams params;
  PortCounters ctr;
  uint32_t backlog_pkts = 0;
  uint64_t backlog_bytes = 0;
  uint32_t conns = 0;
  int64_t tokens = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedConfig& cfg);  // cfg must pass validate(cfg)
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const SchedConfig& config() const { return cfg_; }

  // ---- control path (same thread, between bursts). Errors are returned as text.
  std::string set_port(const PortParams& p, uint64_t now_ns);
  std::string add_class(ClassId id, const ClassParams& p, uint64_t now_ns);
  std::string change_class(ClassId id, const ClassParams& p, uint64_t now_ns);
  // Deletes `id`; its queued packets move, in order, to `move_to` (counted on both).
  std::string delete_class(ClassId id, ClassId move_to, uint64_t now_ns);
  bool class_in_use(ClassId id) const;

  // ---- dataplane
  Verdict enqueue(const Packet& p, uint64_t now_ns);
  // Queues what it can; handles it refused go to `dropped` (size >= pkts.size()).
  // Returns how many were refused.
  uint32_t enqueue_burst(std::span<const Packet> pkts, uint64_t now_ns,
                         std::span<uint64_t> dropped);
  // Fills `out` with handles in scheduling order; returns how many.
  uint32_t dequeue_burst(uint64_t now_ns, std::span<uint64_t> out);
  // Earliest time at or after `now_ns` at which dequeue may hand something out
  // (UINT64_MAX when nothing is queued). Lets an idle worker sleep.
  uint64_t next_ready_ns(uint64_t now_ns);

  // Hands every queued handle to f (port teardown); the scheduler is empty afterwards.
  template <class F>
  void drain_all(F&& f) {
    uint32_t n;
    uint64_t buf[64];
    while ((n = take_any(buf)) != 0)
      for (uint32_t i = 0; i < n; ++i) f(buf[i]);
  }

  // ---- reading (control path)
  ClassStats class_stats(ClassId id, uint64_t now_ns) const;
  PortStats port_stats(uint64_t now_ns) const;
  bool conn_stats(uint64_t conn, ClassId cls, ConnStats& out, uint64_t now_ns) const;
  // Calls f(const ConnStats&) for each connection entry (optionally of one class).
  template <class F>
  void for_each_conn(ClassId only, uint64_t now_ns, F&& f) const {
    ConnStats s;
    for (uint32_t i = 0; i < conn_capacity(); ++i)
      if (conn_at(i, only, s, now_ns)) f(s);
  }
  uint32_t conn_capacity() const;
  uint32_t backlog_pkts() const;

 private:
  struct Impl;
  uint32_t take_any(std::span<uint64_t> out);
  bool conn_at(uint32_t idx, ClassId only, ConnStats& s, uint64_t now_ns) const;

  SchedConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::sched
