#include "dataplane/chardev/syn_align.h"

#include <algorithm>
#include <bit>

#include "compare/checksum.h"
#include "compare/parse.h"

namespace lockstep::chardev {

namespace {

// True when an untagged IPv4 or IPv6 frame is surely no TCP SYN/ACK, read from the few
// bytes that say so; false means "parse it". Every frame of both streams passes here, and
// a full parse for the rare SYN/ACK only halves what this stage costs per frame. The
// answer never differs from the parser's: a frame this passes over is not TCP, or has
// not both SYN and ACK at the TCP flags' place (a later fragment is not parsed as TCP
// either, so its bytes there do not matter).
bool surely_not_synack(const uint8_t* p, uint32_t len) {
  constexpr uint32_t kEth = 14;
  if (len < kEth + 20) return false;
  const uint32_t ethertype = uint32_t{p[12]} << 8 | p[13];
  uint32_t tcp = 0;
  if (ethertype == 0x0800 && (p[kEth] >> 4) == 4) {
    if (p[kEth + 9] != kProtoTcp) return true;
    tcp = kEth + (p[kEth] & 0x0fu) * 4;
  } else if (ethertype == 0x86dd && (p[kEth] >> 4) == 6) {
    if (p[kEth + 6] != kProtoTcp) return false;  // extension headers: let the parser walk them
    tcp = kEth + 40;
  } else {
    return false;
  }
  if (len < tcp + 14) return false;
  return (p[tcp + 13] & (kTcpSyn | kTcpAck)) != (kTcpSyn | kTcpAck);
}

// A TCP SYN/ACK with a usable header, or false. Callers ask surely_not_synack() first,
// before they make the ParsedFrame (setting up its fields costs more than that check).
bool synack(const uint8_t* frame, uint32_t len, ParsedFrame& f) {
  if (parse_frame(frame, len, f) != ParseStatus::ok) return false;
  return f.is_tcp() && !f.is_fragment && (f.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck);
}

}  // namespace

SynAligner::SynAligner(uint32_t capacity)
    : slots_(std::bit_ceil(std::max<uint32_t>(capacity, 16))), mask_(slots_.size() - 1) {}

void SynAligner::on_pvm(const uint8_t* frame, uint32_t len) {
  if (surely_not_synack(frame, len)) return;
  ParsedFrame f;
  if (!synack(frame, len, f)) return;
  const FlowKey k = flow_key_of(f);
  const uint64_t h = flow_hash(k);
  // 4-way set: the key's own slot, else a free one, else the set's next victim.
  Slot* pick = nullptr;
  for (uint64_t w = 0; w < kWays && pick == nullptr; ++w) {
    Slot& s = slots_[(h + w) & mask_];
    if (s.used && s.key == k) pick = &s;
  }
  for (uint64_t w = 0; w < kWays && pick == nullptr; ++w) {
    Slot& s = slots_[(h + w) & mask_];
    if (!s.used) pick = &s;
  }
  if (pick == nullptr) {
    pick = &slots_[(h + (victim_++ % kWays)) & mask_];
    ++c_.table_replaced;
  }
  pick->key = k;
  pick->isn = f.seq;
  pick->used = true;
  ++c_.pvm_synacks;
}

AlignVerdict SynAligner::on_svm(uint8_t* frame, uint32_t len, bool retry) {
  if (surely_not_synack(frame, len)) return AlignVerdict::pass;
  ParsedFrame f;
  if (!synack(frame, len, f)) return AlignVerdict::pass;
  const FlowKey k = flow_key_of(f);
  const uint64_t h = flow_hash(k);
  const Slot* found = nullptr;
  for (uint64_t w = 0; w < kWays && found == nullptr; ++w) {
    const Slot& c = slots_[(h + w) & mask_];
    if (c.used && c.key == k) found = &c;
  }
  if (found == nullptr) {
    if (!retry) ++c_.svm_synacks_waited;
    return AlignVerdict::wait;
  }
  if (f.seq != found->isn) {
    store_be32(frame + f.l4_off + 4, found->isn);
    csum_update32(frame + f.l4_checksum_off, f.seq, found->isn);
  }
  ++c_.svm_synacks_aligned;
  return AlignVerdict::aligned;
}

}  // namespace lockstep::chardev
