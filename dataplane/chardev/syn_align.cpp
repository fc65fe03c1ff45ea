#include "dataplane/chardev/syn_align.h"

#include <algorithm>
#include <bit>

#include "compare/checksum.h"
#include "compare/parse.h"

namespace lockstep::chardev {

namespace {

// A TCP SYN/ACK with a usable header, or false.
bool synack(const uint8_t* frame, uint32_t len, ParsedFrame& f) {
  if (parse_frame(frame, len, f) != ParseStatus::ok) return false;
  return f.is_tcp() && !f.is_fragment && (f.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck);
}

}  // namespace

SynAligner::SynAligner(uint32_t capacity)
    : slots_(std::bit_ceil(std::max<uint32_t>(capacity, 16))), mask_(slots_.size() - 1) {}

void SynAligner::on_pvm(const uint8_t* frame, uint32_t len) {
  ParsedFrame f;
  if (!synack(frame, len, f)) return;
  const FlowKey k = flow_key_of(f);
  Slot& s = slots_[flow_hash(k) & mask_];
  if (s.used && !(s.key == k)) ++c_.table_replaced;
  s.key = k;
  s.isn = f.seq;
  s.used = true;
  ++c_.pvm_synacks;
}

AlignVerdict SynAligner::on_svm(uint8_t* frame, uint32_t len, bool retry) {
  ParsedFrame f;
  if (!synack(frame, len, f)) return AlignVerdict::pass;
  const FlowKey k = flow_key_of(f);
  const Slot& s = slots_[flow_hash(k) & mask_];
  if (!s.used || !(s.key == k)) {
    if (!retry) ++c_.svm_synacks_waited;
    return AlignVerdict::wait;
  }
  if (f.seq != s.isn) {
    uint8_t* seq = frame + f.l4_off + 4;
    store_be32(seq, s.isn);
    csum_update32(frame + f.l4_checksum_off, f.seq, s.isn);
  }
  ++c_.svm_synacks_aligned;
  return AlignVerdict::aligned;
}

}  // namespace lockstep::chardev
