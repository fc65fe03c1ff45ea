// Payload normalization (issue 6, docs/normalization.md): rules whose Hyperscan
// patterns mark nondeterministic fields (an HTTP Date, a request id, a greeting's time
// stamp) in the VMs' output. Spans that both VMs match with the same rule at the same
// stream position compare equal; everything else is compared byte for byte.
//
// A Normalizer belongs to one engine (one worker thread). It holds the compiled
// databases (TCP rules in streaming mode, UDP rules in block mode, every pattern with
// HS_FLAG_SOM_LEFTMOST so a match is a span [from, to)), one scratch, and a fixed pool
// of per-connection slots (`normalize_max_conns`), each with one Hyperscan stream per
// side, opened the first time the slot is used and reset (never reallocated) on reuse.
// Connections no rule applies to take no slot.
//
// Span semantics: for a given rule and start, the span is the first match Hyperscan
// reports (the shortest end). Rules are written with an explicit end (a terminator
// such as the '\r' ending a header line) so that the first end is the only one; a
// span is then final the moment it is reported. Spans longer than
// `normalize_max_span` are not recorded.
//
// No Hyperscan in the build (LOCKSTEP_HAVE_HYPERSCAN undefined): create() refuses any
// rule with a clear error; no rules is fine either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "compare/normalize_rules.h"
#include "compare/seqnum.h"

struct hs_database;
struct hs_scratch;
struct hs_stream;

namespace lockstep {

inline constexpr uint32_t kNormNil = UINT32_MAX;
inline constexpr unsigned kNormSpanRing = 16;

// A span in one side's own sequence space (PVM: PVM numbers; SVM: the SVM's raw
// numbers), or in datagram byte offsets.
struct NormSpan {
  SeqNum from, to;
  uint16_t rule = 0;
};

// One side (PVM or SVM output) of one TCP connection.
struct NormSide {
  hs_stream* stream = nullptr;
  SeqNum scan;         // next stream position to scan
  uint32_t delta = 0;  // stream position = Hyperscan offset + delta (SYN skipped)
  SeqNum floor;        // spans ending at or before it are no longer needed
  bool ended = false;  // FIN or RST scanned: no byte can follow
  bool failed = false; // a scan error: this connection is compared byte for byte
  uint8_t count = 0;
  NormSpan spans[kNormSpanRing];
};

// Per-connection state, bounded: two sides of kNormSpanRing spans plus two streams.
struct NormConn {
  NormSide side[2];              // 0: PVM, 1: SVM
  uint64_t mask = 0;             // rules that apply to the connection (bit = rule id)
  bool started = false;          // streams positioned at the compare point
  bool waiting = false;          // a mismatch at `wait_at` awaits more bytes
  bool has_prev = false;         // prev_offset applies to client acks before prev_until
  SeqNum wait_at;
  uint32_t prev_offset = 0;
  SeqNum prev_until;
  uint32_t next_free = kNormNil;
  bool in_use = false;
};

class Normalizer {
 public:
  // Parses and compiles `rules_text`. Returns nullptr with `error` empty when there
  // are no rules, nullptr with `error` set when a rule does not parse or a pattern
  // does not compile (Hyperscan's message, naming the rule).
  static std::unique_ptr<Normalizer> create(const std::string& rules_text, uint32_t max_span,
                                            uint32_t max_conns, std::string& error);
  ~Normalizer();
  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

  const std::vector<NormRule>& rules() const { return rules_; }
  const std::shared_ptr<const std::vector<std::string>>& names() const { return names_; }
  uint32_t max_span() const { return max_span_; }

  // Rules (bit mask by id) that apply to a flow of the key's protocol.
  uint64_t mask_for(const FlowKey& k) const;

  // Slots. attach() returns kNormNil when the pool is full (or the stream cannot be
  // opened); counted by the caller.
  uint32_t attach(uint64_t mask);
  void detach(uint32_t slot);
  NormConn& conn(uint32_t slot) { return slots_[slot]; }
  const NormConn& conn(uint32_t slot) const { return slots_[slot]; }
  // Positions both streams (reset, spans cleared) at the compare point.
  void start(uint32_t slot, SeqNum pvm_pos, SeqNum svm_pos);

  // Scans `n` bytes at the side's scan position; false on a Hyperscan error.
  bool scan(uint32_t slot, unsigned side, const uint8_t* p, uint32_t n, Counters& c);
  // A SYN at the scan position: one sequence position without a byte.
  void skip_position(uint32_t slot, unsigned side);

  // Block mode (datagrams): the chosen spans of `p` (non-overlapping, in order; for a
  // start, the first match of the lowest rule id), at most `max`. Returns how many, or
  // -1 on a Hyperscan error.
  int block_spans(const uint8_t* p, uint32_t n, uint64_t mask, NormSpan* out, unsigned max,
                  Counters& c);
  bool has_udp_rules() const { return udp_db_ != nullptr; }

  // Bytes of one slot in use (state + two streams), and of everything allocated.
  size_t bytes_per_conn() const;
  size_t memory_bytes() const;

 private:
  Normalizer() = default;
  std::vector<NormRule> rules_;
  std::shared_ptr<const std::vector<std::string>> names_;
  uint32_t max_span_ = 256;
  hs_database* tcp_db_ = nullptr;
  hs_database* udp_db_ = nullptr;
  hs_scratch* scratch_ = nullptr;
  size_t stream_size_ = 0, db_bytes_ = 0, scratch_bytes_ = 0;
  std::vector<NormConn> slots_;
  uint32_t free_ = kNormNil;
  uint32_t opened_ = 0;  // slots whose streams are open
};

}  // namespace lockstep
