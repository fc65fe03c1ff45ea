// Vocabulary of the compare engine: sides, modes, actions, and every reason a frame can
// meet its fate or a checkpoint can be asked for. Each list is declared once (X-macro)
// and gives the enum, its names for ctrl/metrics/docs, and its help text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "compare/flow_key.h"

namespace lockstep {

enum class Side : uint8_t { ingress, pvm, svm };
std::string_view to_string(Side s);

#define LOCKSTEP_MODES(X)                                                        \
  X(colo, "compare PVM and SVM output, release what matches")                    \
  X(buffer, "hold all PVM output until the next checkpoint (Remus), no compare") \
  X(passthrough, "release PVM output at once, no compare")

enum class Mode : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_MODES(LOCKSTEP_X)
#undef LOCKSTEP_X
};
std::string_view to_string(Mode m);
bool mode_from_string(std::string_view s, Mode& out);

// What the caller must do with a handle it gave the engine.
enum class ActionKind : uint8_t {
  release,      // PVM frame (or SVM frame after failover to the SVM): send to the client
  free,         // SVM frame consumed by compare: free it, it has met its fate
  drop,         // frame dropped under a named policy (reason says which)
  forward_svm,  // ingress frame: send the (rewritten) SVM copy to the SVM
};

// Why a frame was dropped, or why a PVM frame was released without compare. Every
// fate has a name: the conservation law counts by these.
#define LOCKSTEP_DROP_REASONS(X)                                                   \
  X(policy_drop, "a policy rule says drop")                                        \
  X(malformed, "frame could not be parsed (malformed_policy=drop)")                \
  X(non_ip, "non-IP frame (non_ip_policy=drop)")                                   \
  X(svm_not_mirrored, "ingress copy for the SVM not sent: no SVM (failover/mode)") \
  X(svm_after_checkpoint, "SVM data older than the last checkpoint")               \
  X(svm_backlog_flushed, "SVM backlog dropped at checkpoint done")                 \
  X(svm_unmatched_passthrough, "SVM output while not comparing")                  \
  X(primary_lost, "PVM output held when the PVM failed (SVM took over)")          \
  X(frag_timeout, "IP fragments never completed a datagram")                      \
  X(frag_table_full, "fragment table full")                                        \
  X(frag_malformed, "fragments overlapping inconsistently or too many")            \
  X(table_full, "SVM frame of a flow the full connection table cannot track")      \
  X(held_overflow, "held-frame capacity and its reserve exhausted (last resort)")

enum class DropReason : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_DROP_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kDropReasonCount = static_cast<unsigned>(DropReason::count_);
std::string_view to_string(DropReason r);

// How a PVM frame was released.
#define LOCKSTEP_RELEASE_REASONS(X)                                         \
  X(matched, "every byte and event matched by the SVM")                     \
  X(no_payload, "pure ACK or window update: nothing to compare")           \
  X(retransmit, "retransmission of bytes already matched")                 \
  X(checkpoint, "held until a checkpoint made the SVM a copy of the PVM")   \
  X(policy_pass, "a policy passes it uncompared")                           \
  X(non_ip_pass, "non-IP frame passed (non_ip_policy=pass)")                \
  X(malformed_pass, "unparsable frame passed (malformed_policy=pass)")      \
  X(passthrough, "mode passthrough")                                        \
  X(failover, "released on failover")                                       \
  X(svm_survivor, "SVM output released after failover to the SVM")

enum class ReleaseReason : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_RELEASE_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kReleaseReasonCount = static_cast<unsigned>(ReleaseReason::count_);
std::string_view to_string(ReleaseReason r);

// Why a checkpoint was requested.
#define LOCKSTEP_CHECKPOINT_REASONS(X)                                         \
  X(payload_mismatch, "TCP payload bytes differ at the same stream offset")    \
  X(event_mismatch, "SYN/FIN/RST differ between PVM and SVM")                  \
  X(datagram_mismatch, "datagrams differ")                                     \
  X(deadline, "a held PVM frame waited compare_timeout for its SVM match")     \
  X(ack_divergence, "the SVM's ACK stayed behind the PVM's for ack_timeout_us")  \
  X(table_full, "connection table full")                                       \
  X(held_full, "held-frame capacity reached")                                  \
  X(window_full, "reorder window of a connection full")                        \
  X(buffer_epoch, "buffer mode: oldest held output reached the epoch length") \
  X(manual, "requested by an operator")                                        \
  X(periodic, "maximum epoch length reached")

enum class CheckpointReason : uint8_t {
#define LOCKSTEP_X(name, help) name,
  LOCKSTEP_CHECKPOINT_REASONS(LOCKSTEP_X)
#undef LOCKSTEP_X
      count_
};
inline constexpr unsigned kCheckpointReasonCount =
    static_cast<unsigned>(CheckpointReason::count_);
std::string_view to_string(CheckpointReason r);

struct Action {
  uint64_t handle = 0;
  ActionKind kind = ActionKind::release;
  uint8_t reason = 0;  // ReleaseReason for release, DropReason for drop
  Side side = Side::pvm;
  uint16_t tag = 0;    // the engine's tag when it has a sink (Engine::attach_sink)
};

// Bytes of each VM's output an explanation carries, and how many of them come before
// the first differing byte.
inline constexpr unsigned kExplainBytes = 32;
inline constexpr unsigned kExplainBefore = 8;
// Bytes of the PVM's line (text protocols) up to the first differing byte: names the
// field that differs ("Date: ...").
inline constexpr unsigned kExplainLine = 48;

// Where the engine saw a divergence, as far as it knows (explain.cpp): filled for payload,
// event and datagram mismatches, deadlines and ACK divergence of a flow.
struct DivergenceDetail {
  // TCP: position in the PVM's output stream, counted in bytes after its SYN (has_offset
  // only when lockstep saw the SYN); datagrams: offset into the compared payload.
  uint64_t stream_offset = 0;
  uint32_t pvm_seq = 0;      // TCP: the PVM's sequence number there (has_seq)
  uint32_t ack_lag = 0;      // ack_divergence: client bytes the PVM acknowledged, the SVM not
  uint8_t shown_before = 0;  // bytes in pvm/svm before the position
  uint8_t pvm_len = 0, svm_len = 0;
  bool has_offset = false, has_seq = false;
  Side waiting = Side::pvm;  // deadline: the side whose frame waited for its match
  uint8_t line_len = 0;      // bytes in line
  std::array<uint8_t, kExplainBytes> pvm{}, svm{};
  // The PVM's bytes from the start of the line holding the difference (after the last
  // '\n' in the segment before it) up to the difference, the first kExplainLine.
  std::array<uint8_t, kExplainLine> line{};
};

// Lower-case hex digits of n bytes (explanations: pvm_hex, svm_hex).
std::string to_hex(const uint8_t* p, size_t n);
// Bytes as text: printable ASCII as is, \r \n \t and \\ escaped, other bytes as \xHH.
std::string to_printable(const uint8_t* p, size_t n);

struct CheckpointRequest {
  uint64_t epoch = 0;  // the epoch in which divergence was seen
  CheckpointReason reason = CheckpointReason::manual;
  FlowKey flow;        // zero key when the reason has no flow
  bool has_flow = false;
  uint64_t t_ns = 0;
  uint64_t frame_ns = 0;  // arrival of the frame that showed the divergence (0: none)
  DivergenceDetail detail;
};

enum class Survivor : uint8_t { primary, secondary };

}  // namespace lockstep
