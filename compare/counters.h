// Engine counters. One flat struct per engine instance (one per worker), written only by
// the thread that owns the engine; readers sum instances. Names for ctrl, metrics and
// docs come from the X-macro lists, so a counter is declared once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compare/parse.h"
#include "compare/types.h"

namespace lockstep {

// X(name, help): scalar counters and gauges. Those the path of every frame counts come
// first, in the struct's first two cache lines (a host's many engines each keep fewer
// lines hot).
#define LOCKSTEP_SCALAR_COUNTERS(X)                                                   \
  X(pvm_in, "PVM frames given to the engine")                                         \
  X(svm_in, "SVM frames given to the engine")                                         \
  X(ingress_in, "client frames given to the engine")                                  \
  X(svm_freed, "SVM frames consumed by compare")                                      \
  X(svm_forwarded, "client frames sent to the SVM")                                   \
  X(held_pvm, "PVM frames held now (gauge)")                                          \
  X(held_svm, "SVM frames held now (gauge)")                                          \
  X(held_ingress, "SVM-bound client frames held now (gauge)")                         \
  X(bytes_compared, "TCP payload bytes matched")                                      \
  X(acks_translated, "client ACK numbers rewritten for the SVM")                      \
  X(tsecr_translated, "client TSecr values rewritten for the SVM")                    \
  X(held_release_ns, "total time released PVM frames were held (ns; hold_us counts them)") \
  X(svm_lag_ns, "total time held PVM frames waited for the SVM's equal output (ns)") \
  X(datagrams_matched, "datagram pairs matched")                                      \
  X(events_compared, "SYN/FIN/RST events matched")                                    \
  X(sacks_translated, "client SACK blocks rewritten for the SVM")                     \
  X(checkpoint_requests, "checkpoint requests sent (one per epoch at most)")          \
  X(checkpoint_triggers, "divergences seen, including those coalesced")              \
  X(checkpoints_done, "checkpoints completed")                                        \
  X(checkpoint_done_stale, "checkpoint-done messages for an epoch already closed")   \
  X(conns_created, "connections created")                                             \
  X(conns_expired, "connections expired (FIN/RST linger or idle)")                    \
  X(conns_active, "connections in the table now (gauge)")                             \
  X(conns_table_full, "frames that found the connection table full")                  \
  X(isn_learned, "TCP ISN offsets learned from the VMs' SYNs")                        \
  X(ingress_waited_isn, "SVM-bound client frames held for the SVM's ISN")            \
  X(ingress_untranslated, "SVM-bound client frames sent without a learned offset")    \
  X(svm_retransmits, "SVM segments at or below the compare point")                    \
  X(pvm_retransmits, "PVM segments at or below the compare point")                    \
  X(pvm_ack_waits, "PVM frames that waited for the SVM's ACK to reach theirs")        \
  X(pvm_ack_wait_ns, "total time PVM frames waited for the SVM's ACK (ns)")           \
  X(client_offsets, "connections whose SVM SYN/ACK acked another client ISN than the PVM's") \
  X(frags_in, "IP fragments received")                                                \
  X(frag_datagrams, "datagrams reassembled")                                          \
  X(mode_switches, "mode changes (manual or hybrid)")                                 \
  X(failovers, "failovers performed")                                                 \
  X(normalize_conns, "connections carrying normalization state now (gauge)")          \
  X(normalize_state_bytes, "bytes of per-connection normalization state in use (gauge)") \
  X(normalize_no_slot, "connections compared byte for byte: normalization pool full") \
  X(normalize_deferred, "TCP mismatches whose verdict waited for more bytes (rules)")  \
  X(normalize_span_dropped, "spans not recorded: longer than max span or ring full")  \
  X(normalize_scan_errors, "Hyperscan scan errors (that difference is then a mismatch)") \
  X(normalize_compiles, "normalization rule sets compiled (start and live changes)")

// Normalization rules (compare/normalize.h): at most this many, each with its counters.
inline constexpr unsigned kMaxNormRules = 64;
struct NormRuleCounters {
  uint64_t spans = 0;    // span pairs that made a difference compare equal
  uint64_t bytes = 0;    // PVM bytes masked by those spans
  uint64_t offsets = 0;  // spans whose lengths differed: sequence offset adjusted
};

// Latency histograms, log2 buckets of microseconds: bucket i counts values below 2^i us
// (i = 0: below 1 us), the last one every longer value.
//   ack_wait_us  hold added by the ACK rule (a PVM frame waiting for the SVM's ACK)
//   hold_us      arrival to release of every held PVM frame (checkpoint holds included)
//   svm_lag_us   arrival to release of held PVM frames released as matched: how far the
//                SVM's equal output came behind the PVM's
inline constexpr unsigned kLatencyBuckets = 24;
inline constexpr unsigned kAckWaitBuckets = kLatencyBuckets;
inline unsigned latency_bucket(uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us == 0) return 0;
  const unsigned b = 64 - static_cast<unsigned>(__builtin_clzll(us));
  return b < kLatencyBuckets ? b : kLatencyBuckets - 1;
}
inline unsigned ack_wait_bucket(uint64_t ns) { return latency_bucket(ns); }
using LatencyHist = std::array<uint64_t, kLatencyBuckets>;

struct alignas(64) Counters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_SCALAR_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  // The arrays every frame counts in next (flatten() names them in its own order).
  std::array<uint64_t, kReleaseReasonCount> released{};    // PVM (and SVM survivor) frames
  std::array<uint64_t, kParseStatusCount> parse_pvm{}, parse_svm{}, parse_ingress{};
  std::array<uint64_t, kDropReasonCount> pvm_dropped{};     // dropped_by_policy
  std::array<uint64_t, kDropReasonCount> svm_dropped{};
  std::array<uint64_t, kDropReasonCount> ingress_dropped{};  // SVM copies not sent
  std::array<uint64_t, kCheckpointReasonCount> checkpoint_reason{};
  LatencyHist ack_wait_hist{};  // "ack_wait_us.lt_<2^i>"
  LatencyHist hold_hist{};      // "hold_us.lt_<2^i>"
  LatencyHist svm_lag_hist{};   // "svm_lag_us.lt_<2^i>"
  // Per normalization rule, indexed by rule id; the names of the rules in force (null
  // without rules) give flatten() "normalize.<rule>.spans|bytes|offsets".
  std::array<NormRuleCounters, kMaxNormRules> normalize{};
  std::shared_ptr<const std::vector<std::string>> normalize_names;

  uint64_t released_total() const;       // every release, SVM survivor included
  uint64_t released_pvm() const;         // releases of PVM frames
  uint64_t pvm_dropped_total() const;
  uint64_t svm_dropped_total() const;
  uint64_t ingress_dropped_total() const;

  // pvm_in == released_pvm + held_pvm + pvm_dropped_total, and the same for the SVM and
  // ingress. Returns an empty string when it holds, else which law broke and by how much.
  std::string conservation_error() const;

  Counters& operator+=(const Counters& o);

  // Every counter as (name, value), stable order, with per-reason arrays flattened as
  // "released.matched", "pvm_dropped.policy_drop", ... For ctrl, metrics and replay.
  std::vector<std::pair<std::string, uint64_t>> flatten() const;
};

}  // namespace lockstep
