// Vocabulary of the egress scheduler: class ids, roles, enqueue verdicts and the
// counters. Each list is declared once (X-macro) and gives the enum, its names for
// ctrl/metrics/docs and its help text. Pure C++: no DPDK include.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace lockstep::sched {

inline constexpr uint32_t kMaxClasses = 16;  // class ids 0..15; masks are 32-bit
inline constexpr uint8_t kMaxPrio = 7;       // strict priority levels 0 (first) .. 7
using ClassId = uint8_t;
inline constexpr ClassId kNoClass = 0xff;
inline constexpr uint32_t kNil = 0xffffffffu;  // end of an index list
// A frame's guest (lockstepd's guest index) when it has none: host/link traffic.
inline constexpr uint16_t kNoGuest = 0xffff;
inline constexpr size_t kMaxGuestName = 32;

// What the caller tells the scheduler about a packet. The scheduler never looks at the
// bytes: `handle` is given back by dequeue, `conn` is any stable per-connection value
// (a flow hash or id), `len` is what the shapers charge (bytes on the wire, without FCS).
struct Packet {
  uint64_t handle = 0;
  uint64_t conn = 0;
  uint32_t len = 0;
  ClassId cls = kNoClass;
};

// The role of traffic in lockstep, decided by the port and path it came from, given by
// the caller to the classifier.
#define LOCKSTEP_SCHED_ROLES(X)                                         \
  X(proxy, "mirrored client traffic and PVM output (colo-proxy)")       \
  X(svm_output, "the secondary VM's output")                            \
  X(checkpoint, "checkpoint (VM state) stream between the hosts")       \
  X(block_replication, "block replication stream between the hosts")    \
  X(heartbeat, "heartbeats and COLO control between the hosts")         \
  X(other, "anything else")

enum class TrafficRole : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_SCHED_ROLES(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kTrafficRoleCount = static_cast<unsigned>(TrafficRole::count_);
std::string_view to_string(TrafficRole r);
bool traffic_role_from_string(std::string_view s, TrafficRole& out);

// Why an enqueue did not queue the packet. The caller frees a refused packet.
#define LOCKSTEP_SCHED_DROPS(X)                                                  \
  X(no_class, "class id not configured (never added, or deleted)")               \
  X(bad_length, "length 0 or above the port's max_packet_bytes")                 \
  X(queue_full, "class queue at its packet limit")                               \
  X(queue_bytes_full, "class queue at its byte limit")                           \
  X(conn_queue_full, "connection queue at its packet limit (conn-limit)")        \
  X(conn_table_full, "no connection entry free and none idle to evict")          \
  X(port_full, "the port's shared packet pool is exhausted")

enum class Drop : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_SCHED_DROPS(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kDropCount = static_cast<unsigned>(Drop::count_);
std::string_view to_string(Drop d);
std::string_view help_of(Drop d);

// enqueue's answer: queued, or the drop reason.
struct Verdict {
  bool queued = false;
  Drop reason = Drop::no_class;  // meaningful when !queued
};

// Per class; written only by the thread that owns the scheduler.
struct ClassCounters {
  uint64_t enq_pkts = 0, enq_bytes = 0;
  uint64_t deq_pkts = 0, deq_bytes = 0;
  uint64_t borrowed_pkts = 0, borrowed_bytes = 0;  // sent above the guaranteed rate
  uint64_t moved_in_pkts = 0;   // backlog received from a deleted class
  uint64_t moved_out_pkts = 0;  // backlog handed on when this class was deleted
  uint64_t flushed_pkts = 0;    // handed back by drain_all (port teardown)
  std::array<uint64_t, kDropCount> drops{};
  std::array<uint64_t, kDropCount> drop_bytes{};
  uint64_t drops_total() const;
};

// Per port (all classes, plus what no class could account for).
struct PortCounters {
  uint64_t enq_pkts = 0, enq_bytes = 0;
  uint64_t deq_pkts = 0, deq_bytes = 0;
  std::array<uint64_t, kDropCount> drops{};
  uint64_t conns_created = 0;
  uint64_t conns_evicted = 0;    // idle empty entries reused for another connection
  uint64_t moved_pkts = 0;       // backlog moved between classes by live changes
  uint64_t shaped_stalls = 0;    // dequeue calls that stopped on the port rate
  uint64_t flushed_pkts = 0;     // handed back by drain_all (port teardown)
  uint64_t drops_total() const;
};

}  // namespace lockstep::sched
