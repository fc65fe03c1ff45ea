#include "compare/normalize.h"

#include <algorithm>

#ifdef LOCKSTEP_HAVE_HYPERSCAN
#include <hs.h>
#endif

namespace lockstep {

namespace {

#ifdef LOCKSTEP_HAVE_HYPERSCAN

struct StreamCtx {
  NormSide* side;
  uint64_t mask;
  uint32_t max_span;
  Counters* c;
};

// A match in streaming mode: record [from, to) in the side's sequence space, first
// match per (rule, start) only.
int on_stream_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int /*flags*/, void* ctx_ptr) {
  auto* ctx = static_cast<StreamCtx*>(ctx_ptr);
  if (id >= 64 || ((ctx->mask >> id) & 1) == 0) return 0;
  if (to - from > ctx->max_span) {
    ++ctx->c->normalize_span_dropped;
    return 0;
  }
  NormSide& s = *ctx->side;
  const SeqNum f(s.delta + static_cast<uint32_t>(from));
  const SeqNum t(s.delta + static_cast<uint32_t>(to));
  for (unsigned i = 0; i < s.count; ++i) {
    if (s.spans[i].rule == id && s.spans[i].from == f) return 0;
  }
  if (s.count == kNormSpanRing) {
    unsigned k = 0;
    for (unsigned i = 0; i < s.count; ++i) {
      if (after(s.spans[i].to, s.floor)) s.spans[k++] = s.spans[i];
    }
    s.count = static_cast<uint8_t>(k);
    if (s.count == kNormSpanRing) {
      ++ctx->c->normalize_span_dropped;
      return 0;
    }
  }
  s.spans[s.count++] = NormSpan{f, t, static_cast<uint16_t>(id)};
  return 0;
}

struct BlockCtx {
  NormSpan* found;
  unsigned count, cap;
  uint64_t mask;
  uint32_t max_span;
  Counters* c;
};

int on_block_match(unsigned int id, unsigned long long from, unsigned long long to,
                   unsigned int /*flags*/, void* ctx_ptr) {
  auto* ctx = static_cast<BlockCtx*>(ctx_ptr);
  if (id >= 64 || ((ctx->mask >> id) & 1) == 0) return 0;
  if (to - from > ctx->max_span) {
    ++ctx->c->normalize_span_dropped;
    return 0;
  }
  const SeqNum f(static_cast<uint32_t>(from));
  for (unsigned i = 0; i < ctx->count; ++i) {
    if (ctx->found[i].rule == id && ctx->found[i].from == f) return 0;
  }
  if (ctx->count == ctx->cap) {
    ++ctx->c->normalize_span_dropped;
    return 0;
  }
  ctx->found[ctx->count++] = NormSpan{f, SeqNum(static_cast<uint32_t>(to)),
                                      static_cast<uint16_t>(id)};
  return 0;
}

// Compiles the rules of one protocol; db stays null when there are none.
bool compile(const std::vector<NormRule>& rules, uint8_t proto, unsigned mode, hs_database_t*& db,
             std::string& error) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (unsigned i = 0; i < rules.size(); ++i) {
    if (rules[i].proto != proto) continue;
    exprs.push_back(rules[i].pattern.c_str());
    flags.push_back(HS_FLAG_SOM_LEFTMOST);
    ids.push_back(i);
  }
  if (exprs.empty()) return true;
  hs_compile_error_t* err = nullptr;
  hs_error_t rc = hs_compile_multi(exprs.data(), flags.data(), ids.data(),
                                   static_cast<unsigned>(exprs.size()), mode, nullptr, &db, &err);
  if (rc == HS_SUCCESS) return true;
  std::string msg = err && err->message ? err->message : "compile failed";
  if (err && err->expression >= 0 && static_cast<size_t>(err->expression) < ids.size()) {
    const NormRule& r = rules[ids[static_cast<size_t>(err->expression)]];
    error = "normalize rule '" + r.name + "' (pattern '" + r.pattern + "'): Hyperscan: " + msg;
  } else {
    error = "normalize rules (" + std::string(proto == kProtoTcp ? "tcp" : "udp") +
            "): Hyperscan: " + msg;
  }
  hs_free_compile_error(err);
  db = nullptr;
  return false;
}

#endif  // LOCKSTEP_HAVE_HYPERSCAN

}  // namespace

std::unique_ptr<Normalizer> Normalizer::create(const std::string& rules_text, uint32_t max_span,
                                               uint32_t max_conns, std::string& error) {
  error.clear();
  std::vector<NormRule> rules;
  if (!parse_norm_rules(rules_text, rules, error)) return nullptr;
  if (rules.empty()) return nullptr;
#ifndef LOCKSTEP_HAVE_HYPERSCAN
  (void)max_span;
  (void)max_conns;
  error = "normalize_rules: this build of lockstep has no Hyperscan (libhyperscan-dev), so "
          "normalization rules cannot be used; set normalize_rules to empty";
  return nullptr;
#else
  std::unique_ptr<Normalizer> n(new Normalizer());
  n->rules_ = std::move(rules);
  n->max_span_ = max_span;
  auto names = std::make_shared<std::vector<std::string>>();
  for (const NormRule& r : n->rules_) names->push_back(r.name);
  n->names_ = std::move(names);
  if (!compile(n->rules_, kProtoTcp, HS_MODE_STREAM | HS_MODE_SOM_HORIZON_SMALL, n->tcp_db_,
               error) ||
      !compile(n->rules_, kProtoUdp, HS_MODE_BLOCK, n->udp_db_, error)) {
    return nullptr;
  }
  for (hs_database_t* db : {n->tcp_db_, n->udp_db_}) {
    if (db == nullptr) continue;
    size_t sz = 0;
    if (hs_database_size(db, &sz) == HS_SUCCESS) n->db_bytes_ += sz;
    if (hs_alloc_scratch(db, &n->scratch_) != HS_SUCCESS) {
      error = "normalize rules: Hyperscan could not allocate scratch space";
      return nullptr;
    }
  }
  if (n->scratch_ != nullptr) hs_scratch_size(n->scratch_, &n->scratch_bytes_);
  if (n->tcp_db_ != nullptr) {
    hs_stream_size(n->tcp_db_, &n->stream_size_);
    n->slots_.resize(max_conns);
    for (uint32_t i = max_conns; i-- > 0;) {
      n->slots_[i].next_free = n->free_;
      n->free_ = i;
    }
  }
  return n;
#endif
}

Normalizer::~Normalizer() {
#ifdef LOCKSTEP_HAVE_HYPERSCAN
  for (NormConn& s : slots_) {
    for (NormSide& side : s.side) {
      if (side.stream != nullptr) hs_close_stream(side.stream, nullptr, nullptr, nullptr);
    }
  }
  if (scratch_ != nullptr) hs_free_scratch(scratch_);
  if (tcp_db_ != nullptr) hs_free_database(tcp_db_);
  if (udp_db_ != nullptr) hs_free_database(udp_db_);
#endif
}

uint64_t Normalizer::mask_for(const FlowKey& k) const {
  uint64_t m = 0;
  for (unsigned i = 0; i < rules_.size(); ++i) {
    if (rules_[i].applies(k)) m |= uint64_t{1} << i;
  }
  return m;
}

uint32_t Normalizer::attach(uint64_t mask) {
  uint32_t i = free_;
  if (i == kNormNil) return kNormNil;
  NormConn& s = slots_[i];
#ifdef LOCKSTEP_HAVE_HYPERSCAN
  if (s.side[0].stream == nullptr) {
    // First use of this slot: open its two streams; they are reset, not reopened, when
    // the slot is reused.
    for (NormSide& side : s.side) {
      if (side.stream == nullptr && hs_open_stream(tcp_db_, 0, &side.stream) != HS_SUCCESS) {
        side.stream = nullptr;
        return kNormNil;
      }
    }
    ++opened_;
  }
#endif
  free_ = s.next_free;
  s.next_free = kNormNil;
  s.in_use = true;
  s.mask = mask;
  s.started = false;
  return i;
}

void Normalizer::detach(uint32_t slot) {
  NormConn& s = slots_[slot];
  if (!s.in_use) return;
  s.in_use = false;
  s.started = false;
  s.next_free = free_;
  free_ = slot;
}

void Normalizer::start(uint32_t slot, SeqNum pvm_pos, SeqNum svm_pos) {
  NormConn& s = slots_[slot];
  const SeqNum pos[2] = {pvm_pos, svm_pos};
  for (unsigned i = 0; i < 2; ++i) {
    NormSide& side = s.side[i];
#ifdef LOCKSTEP_HAVE_HYPERSCAN
    if (side.stream != nullptr) hs_reset_stream(side.stream, 0, nullptr, nullptr, nullptr);
#endif
    side.scan = pos[i];
    side.delta = pos[i].raw();
    side.floor = pos[i];
    side.ended = false;
    side.failed = false;
    side.count = 0;
  }
  s.started = true;
  s.waiting = false;
  s.has_prev = false;
}

bool Normalizer::scan(uint32_t slot, unsigned side_ix, const uint8_t* p, uint32_t n, Counters& c) {
  NormConn& s = slots_[slot];
  NormSide& side = s.side[side_ix];
  if (side.failed) return false;
#ifdef LOCKSTEP_HAVE_HYPERSCAN
  StreamCtx ctx{&side, s.mask, max_span_, &c};
  if (hs_scan_stream(side.stream, reinterpret_cast<const char*>(p), n, 0, scratch_,
                     on_stream_match, &ctx) != HS_SUCCESS) {
    side.failed = true;
    ++c.normalize_scan_errors;
    return false;
  }
#else
  (void)p;
  (void)c;
#endif
  side.scan += n;
  return true;
}

void Normalizer::skip_position(uint32_t slot, unsigned side_ix) {
  NormSide& side = slots_[slot].side[side_ix];
  side.scan += 1;
  side.delta += 1;
}

int Normalizer::block_spans(const uint8_t* p, uint32_t n, uint64_t mask, NormSpan* out,
                            unsigned max, Counters& c) {
#ifdef LOCKSTEP_HAVE_HYPERSCAN
  if (udp_db_ == nullptr || mask == 0) return 0;
  NormSpan found[64];
  BlockCtx ctx{found, 0, 64, mask, max_span_, &c};
  if (hs_scan(udp_db_, reinterpret_cast<const char*>(p), n, 0, scratch_, on_block_match, &ctx) !=
      HS_SUCCESS) {
    ++c.normalize_scan_errors;
    return -1;
  }
  std::sort(found, found + ctx.count, [](const NormSpan& a, const NormSpan& b) {
    return a.from.raw() != b.from.raw() ? a.from.raw() < b.from.raw() : a.rule < b.rule;
  });
  unsigned k = 0;
  uint32_t end = 0;
  for (unsigned i = 0; i < ctx.count && k < max; ++i) {
    if (found[i].from.raw() < end) continue;
    out[k++] = found[i];
    end = found[i].to.raw();
  }
  return static_cast<int>(k);
#else
  (void)p;
  (void)n;
  (void)mask;
  (void)out;
  (void)max;
  (void)c;
  return 0;
#endif
}

size_t Normalizer::bytes_per_conn() const { return sizeof(NormConn) + 2 * stream_size_; }

size_t Normalizer::memory_bytes() const {
  return sizeof(*this) + slots_.size() * sizeof(NormConn) + size_t{opened_} * 2 * stream_size_ +
         db_bytes_ + scratch_bytes_;
}

}  // namespace lockstep
