#include "compare/normalize.h"

#include <algorithm>
#include <cstring>

#ifdef LOCKSTEP_HAVE_HYPERSCAN
#include <hs.h>
#endif

namespace lockstep {

namespace {

#ifdef LOCKSTEP_HAVE_HYPERSCAN

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
  if (!compile(n->rules_, kProtoTcp, HS_MODE_BLOCK, n->tcp_db_, error) ||
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
  n->windows_.assign(2 * (2 * size_t{max_span} + 1), 0);
  if (n->tcp_db_ != nullptr) {
    n->slots_.resize(max_conns);
    n->tails_.assign(size_t{max_conns} * 2 * max_span, 0);
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
  if (scratch_ != nullptr) hs_free_scratch(scratch_);
  if (tcp_db_ != nullptr) hs_free_database(tcp_db_);
  if (udp_db_ != nullptr) hs_free_database(udp_db_);
#endif
}

bool Normalizer::has_rules(uint8_t proto) const {
  return (proto == kProtoTcp ? tcp_db_ : proto == kProtoUdp ? udp_db_ : nullptr) != nullptr;
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
  s.tail[0] = NormTail{};
  s.tail[0].end = pvm_pos;
  s.tail[1] = NormTail{};
  s.tail[1].end = svm_pos;
  s.started = true;
  s.waiting = false;
  s.has_prev = false;
}

void Normalizer::tail_append(uint32_t slot, unsigned side, const uint8_t* p, uint32_t n) {
  NormTail& t = slots_[slot].tail[side];
  uint8_t* ring = tails_.data() + (size_t{slot} * 2 + side) * max_span_;
  t.end += n;
  if (n >= max_span_) {
    std::memcpy(ring, p + (n - max_span_), max_span_);
    t.head = 0;
    t.len = max_span_;
    return;
  }
  const uint32_t first = std::min(n, max_span_ - t.head);
  std::memcpy(ring + t.head, p, first);
  std::memcpy(ring, p + first, n - first);
  t.head = (t.head + n) % max_span_;
  t.len = std::min(max_span_, t.len + n);
}

void Normalizer::tail_restart(uint32_t slot, unsigned side, SeqNum pos, bool anchor) {
  NormTail& t = slots_[slot].tail[side];
  t.end = pos;
  t.len = 0;
  t.head = 0;
  t.anchor = pos;
  t.has_anchor = anchor;
}

uint32_t Normalizer::tail_copy(uint32_t slot, unsigned side, SeqNum from, uint8_t* out) const {
  const NormTail& t = slots_[slot].tail[side];
  const uint8_t* ring = tails_.data() + (size_t{slot} * 2 + side) * max_span_;
  const uint32_t n = static_cast<uint32_t>(t.end.since(from));
  // The kept bytes end at ring index head (exclusive); the first wanted one is n back.
  uint32_t i = (t.head + max_span_ - n % max_span_) % max_span_;
  for (uint32_t k = 0; k < n; ++k) {
    out[k] = ring[i];
    if (++i == max_span_) i = 0;
  }
  return n;
}

int Normalizer::spans(uint8_t proto, const uint8_t* p, uint32_t n, uint32_t skip, uint64_t mask,
                      bool non_overlapping, NormSpan* out, unsigned max, Counters& c) {
#ifdef LOCKSTEP_HAVE_HYPERSCAN
  hs_database_t* db = proto == kProtoTcp ? tcp_db_ : proto == kProtoUdp ? udp_db_ : nullptr;
  if (db == nullptr || mask == 0) return 0;
  NormSpan found[kNormMaxSpans];
  BlockCtx ctx{found, 0, kNormMaxSpans, mask, max_span_, &c};
  if (hs_scan(db, reinterpret_cast<const char*>(p), n, 0, scratch_, on_block_match, &ctx) !=
      HS_SUCCESS) {
    ++c.normalize_scan_errors;
    return -1;
  }
  std::sort(found, found + ctx.count, [](const NormSpan& a, const NormSpan& b) {
    return a.from.raw() != b.from.raw() ? a.from.raw() < b.from.raw() : a.rule < b.rule;
  });
  unsigned k = 0;
  uint32_t end = skip;
  for (unsigned i = 0; i < ctx.count && k < max; ++i) {
    if (found[i].from.raw() < skip) continue;
    if (non_overlapping && found[i].from.raw() < end) continue;
    out[k++] = NormSpan{found[i].from - skip, found[i].to - skip, found[i].rule};
    end = found[i].to.raw();
  }
  return static_cast<int>(k);
#else
  (void)proto;
  (void)p;
  (void)n;
  (void)skip;
  (void)mask;
  (void)non_overlapping;
  (void)out;
  (void)max;
  (void)c;
  return 0;
#endif
}

size_t Normalizer::memory_bytes() const {
  return sizeof(*this) + slots_.size() * sizeof(NormConn) + tails_.size() + windows_.size() +
         db_bytes_ + scratch_bytes_;
}

}  // namespace lockstep
