// Payload normalization (issue 6, docs/normalization.md): rules whose Hyperscan
// patterns mark nondeterministic fields (an HTTP Date, a request id, a greeting's time
// stamp) in the VMs' output. Spans that both VMs match with the same rule at the same
// stream position compare equal; everything else is compared byte for byte.
//
// A Normalizer belongs to one engine (one worker thread). It holds the compiled
// databases (TCP rules and UDP rules, block mode, every pattern with
// HS_FLAG_SOM_LEFTMOST so a match is a span [from, to)), one scratch, and a fixed pool
// of per-connection slots (`normalize_max_conns`). A slot keeps, per side, the last
// `normalize_max_span` bytes before the compare point (the "tail"): bytes already
// compared are released, and a span covering a later difference may start among them.
// Connections no rule applies to take no slot.
//
// Matching happens only where the VMs' bytes differ: at a difference at X the window
// [X - max_span, X + max_span) of each side is assembled, across segments however they
// were cut, from the tail and the held segments, and scanned. A span covering X starts
// after X - max_span and ends by X + max_span, so the window sees every such span
// whole. (Scanning every byte as it goes by, with one Hyperscan stream per connection
// and side, costs 5-6x the compare itself on 1448 B pairs; see bench_normalize.)
//
// Span semantics: for a given rule and start, the span is the first match Hyperscan
// reports (the shortest end). Rules are written with an explicit end (a terminator
// such as the '\r' ending a header line) so that the first end is the only one. Spans
// longer than `normalize_max_span` are not used. `^` matches only at the start of the
// side's stream (after its SYN), never at a window's start.
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

namespace lockstep {

inline constexpr uint32_t kNormNil = UINT32_MAX;
inline constexpr unsigned kNormMaxSpans = 64;  // spans taken from one window

// A span in one side's own sequence space (PVM: PVM numbers; SVM: the SVM's raw
// numbers), or in datagram byte offsets.
struct NormSpan {
  SeqNum from, to;
  uint16_t rule = 0;
};

// The last bytes of one side before the compare point, in a ring of max_span bytes.
struct NormTail {
  SeqNum end;               // position after the last byte kept (= the compare point)
  uint32_t len = 0;         // bytes kept, at most max_span
  uint32_t head = 0;        // ring index where the next byte goes
  SeqNum anchor;            // position of the stream's first byte (after the SYN)
  bool has_anchor = false;  // `^` may match at `anchor`
};

// Per-connection state, bounded: two tails (their bytes live in the pool) and the
// wait and ack-translation bookkeeping.
struct NormConn {
  NormTail tail[2];              // 0: PVM, 1: SVM
  uint64_t mask = 0;             // rules that apply to the connection (bit = rule id)
  bool started = false;          // tails positioned at the compare point
  bool waiting = false;          // a difference at `wait_at` awaits more bytes
  bool has_prev = false;         // prev_offset applies to client acks before prev_until
  bool in_use = false;
  SeqNum wait_at;
  uint32_t prev_offset = 0;
  SeqNum prev_until;
  uint32_t next_free = kNormNil;
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

  // Slots. attach() returns kNormNil when the pool is full; counted by the caller.
  uint32_t attach(uint64_t mask);
  void detach(uint32_t slot);
  NormConn& conn(uint32_t slot) { return slots_[slot]; }
  const NormConn& conn(uint32_t slot) const { return slots_[slot]; }
  // Empties both tails at the compare point (PVM and SVM positions).
  void start(uint32_t slot, SeqNum pvm_pos, SeqNum svm_pos);

  // Tails: bytes compared (or spans skipped) are appended as the compare point moves;
  // a SYN restarts the tail after it (the stream's first byte, where `^` may match).
  void tail_append(uint32_t slot, unsigned side, const uint8_t* p, uint32_t n);
  void tail_restart(uint32_t slot, unsigned side, SeqNum pos, bool anchor);
  // Copies the kept bytes from position `from` (>= end - len) to the end into `out`.
  uint32_t tail_copy(uint32_t slot, unsigned side, SeqNum from, uint8_t* out) const;

  // Window buffer of a side (2 * max_span + 1 bytes), for the caller to fill.
  uint8_t* window(unsigned side) { return windows_.data() + side * (2 * max_span_ + 1); }

  // Block scan of `n` bytes with the rules of `proto` in `mask`. Spans are the first
  // match per (rule, start), offsets into `p`, sorted by start then rule; those starting
  // before `skip` (a sentinel prefix) are left out and the rest shifted by it. With
  // `non_overlapping`, only a left-to-right non-overlapping choice is kept. Returns how
  // many (at most `max`), or -1 on a Hyperscan error.
  int spans(uint8_t proto, const uint8_t* p, uint32_t n, uint32_t skip, uint64_t mask,
            bool non_overlapping, NormSpan* out, unsigned max, Counters& c);
  bool has_rules(uint8_t proto) const;

  // Bytes of one slot (state + two tails), and of everything allocated.
  size_t bytes_per_conn() const { return sizeof(NormConn) + 2 * size_t{max_span_}; }
  size_t memory_bytes() const;

 private:
  Normalizer() = default;
  std::vector<NormRule> rules_;
  std::shared_ptr<const std::vector<std::string>> names_;
  uint32_t max_span_ = 256;
  hs_database* tcp_db_ = nullptr;
  hs_database* udp_db_ = nullptr;
  hs_scratch* scratch_ = nullptr;
  size_t db_bytes_ = 0, scratch_bytes_ = 0;
  std::vector<NormConn> slots_;
  std::vector<uint8_t> tails_;    // slot * 2 * max_span + side * max_span
  std::vector<uint8_t> windows_;  // two windows
  uint32_t free_ = kNormNil;
};

}  // namespace lockstep
