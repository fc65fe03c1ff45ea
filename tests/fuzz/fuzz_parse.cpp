// libFuzzer target: parse_frame, flow_key_of, flow_hash and to_string on arbitrary bytes.
// Besides "no crash, no out-of-bounds read" (ASan), it checks the parser's layout
// invariants and the symmetry of the flow key; a broken invariant traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "compare/flow_key.h"
#include "compare/parse.h"

namespace {

using lockstep::ParsedFrame;
using lockstep::ParseStatus;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

void check_layout(const ParsedFrame& f, uint32_t len) {
  require(f.status < ParseStatus::count_);
  require(f.vlan_count <= lockstep::kMaxVlanTags);
  if (f.status == ParseStatus::truncated_l2) return;
  require(f.l3_off <= len);
  if (f.status != ParseStatus::ok) {
    require(!f.has_l4);
    return;
  }
  if (!f.is_ip()) return;
  require(f.l3_end <= len);
  require(f.l4_off > f.l3_off);
  require(f.l4_off <= f.l3_end);
  if (f.is_fragment) {
    require(uint32_t{f.l4_off} + f.frag_data_len == f.l3_end);
    if (f.frag_offset != 0) require(!f.has_l4);
  }
  if (f.has_l4) {
    require(f.payload_off >= f.l4_off);
    require(f.payload_off + f.payload_len <= f.l3_end);
    require(f.l4_checksum_off + 2u <= f.l3_end);
  } else if (!f.is_fragment) {
    require(f.payload_off == f.l4_off);
    require(f.payload_off + f.payload_len == f.l3_end);
  }
  if (f.is_tcp()) {
    require(f.sack_count <= lockstep::kMaxSackBlocks);
    for (unsigned k = 0; k < f.sack_count; ++k) {
      require(f.sack_off[k] >= f.l4_off + 20u && f.sack_off[k] + 8u <= f.payload_off);
    }
    if (f.has_timestamp) {
      require(f.ts_off >= f.l4_off + 20u && f.ts_off + 8u <= f.payload_off);
    }
    require(f.wscale == 0xff || f.wscale <= 14);
  }
  if (f.l3 == lockstep::L3Kind::ipv4) {
    require(f.ip4_checksum_off == f.l3_off + 10u);
    require(f.src.is_v4() && f.dst.is_v4());
  }
}

void check_key(const ParsedFrame& f) {
  bool from_lo = false;
  const lockstep::FlowKey k = lockstep::flow_key_of(f, &from_lo);
  require(k.pad_ == 0);
  if (!f.is_ip()) {
    require(k.proto == 0 && k.port_lo == 0 && k.port_hi == 0);
  }
  // The reverse direction maps to the same key and hash, from the other end.
  ParsedFrame r = f;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  bool r_from_lo = false;
  const lockstep::FlowKey rk = lockstep::flow_key_of(r, &r_from_lo);
  require(rk == k);
  require(lockstep::flow_hash(rk) == lockstep::flow_hash(k));
  const bool same_endpoint = f.src == f.dst && f.sport == f.dport;
  if (f.is_ip() && !same_endpoint) require(from_lo != r_from_lo);

  const std::string text = lockstep::to_string(k);
  require(!text.empty());
  (void)lockstep::to_string(f.src);
  require(!lockstep::to_string(f.status).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint32_t len = size > 0xffffffu ? 0xffffffu : static_cast<uint32_t>(size);
  ParsedFrame f;
  const ParseStatus s = lockstep::parse_frame(data, len, f);
  require(s == f.status);
  check_layout(f, len);
  check_key(f);
  // Parsing is a pure function of the bytes.
  ParsedFrame again;
  lockstep::parse_frame(data, len, again);
  require(again.status == f.status && again.payload_off == f.payload_off &&
          again.payload_len == f.payload_len && again.l3_end == f.l3_end);
  return 0;
}
