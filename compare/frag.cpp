// IP reassembly (frag_table.h): the table of datagrams being reassembled.
#include <algorithm>
#include <cstring>

#include "compare/frag_table.h"

namespace lockstep {

namespace {

constexpr size_t kMaxFragmentsPerDatagram = 64;

bool covers(std::vector<std::pair<uint32_t, uint32_t>>& ranges, uint32_t total) {
  std::sort(ranges.begin(), ranges.end());
  uint32_t reach = 0;
  for (const auto& [lo, hi] : ranges) {
    if (lo > reach) return false;
    reach = std::max(reach, hi);
  }
  return reach >= total;
}

}  // namespace

uint32_t FragTable::input(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                          uint64_t now, const ParsedFrame& f, FlowKey& flow) {
  ++c_.frags_in;
  FragKey key;
  key.src = f.src;
  key.dst = f.dst;
  key.id = f.frag_id;
  key.proto = f.l4_proto;
  key.side = side;
  key.vlan = f.vlan_count ? static_cast<uint16_t>(f.vlan_tci[0] & 0xfff) : 0;

  uint32_t fi = kNil;
  for (uint32_t i = age_head_; i != kNil; i = frags_[i].next_age) {
    if (frags_[i].in_use && !frags_[i].complete && frags_[i].key == key) {
      fi = i;
      break;
    }
  }
  if (fi == kNil) {
    expire(now);
    for (uint32_t i = 0; i < frags_.size(); ++i) {
      if (!frags_[i].in_use && !frags_[i].in_age) {
        fi = i;
        break;
      }
    }
    if (fi == kNil) {
      out_.drop_direct(side, handle, DropReason::frag_table_full);
      return kNil;
    }
    FragEntry& e = frags_[fi];
    e.key = key;
    e.in_use = true;
    e.complete = false;
    e.have_first = e.have_last = false;
    e.total_len = 0;
    e.first_held = kNil;
    e.frames = HeldList{};
    e.ranges.clear();
    e.buf.clear();
    e.created_ns = now;
    e.next_age = kNil;
    e.in_age = true;
    if (age_tail_ == kNil) age_head_ = fi;
    else frags_[age_tail_].next_age = fi;
    age_tail_ = fi;
  }

  const uint32_t idx = held_.alloc(side, handle, data, len, now);
  if (idx == kNil) {
    out_.drop_direct(side, handle, DropReason::held_overflow);
    return kNil;
  }
  FragEntry& e = frags_[fi];
  held_.push(e.frames, idx);
  const uint32_t off = f.frag_offset;
  const uint32_t end = off + f.frag_data_len;
  if (end > 65535 || e.ranges.size() >= kMaxFragmentsPerDatagram ||
      (!f.more_fragments && e.have_last && e.total_len != end) ||
      (e.have_last && end > e.total_len)) {
    discard(fi, DropReason::frag_malformed);
    return kNil;
  }
  if (e.buf.size() < end) e.buf.resize(end);
  if (f.frag_data_len > 0) std::memcpy(e.buf.data() + off, data + f.l4_off, f.frag_data_len);
  e.ranges.emplace_back(off, end);
  if (off == 0) {
    e.have_first = true;
    e.first_held = idx;
  }
  if (!f.more_fragments) {
    e.have_last = true;
    e.total_len = end;
  }
  if (e.have_first && e.have_last && covers(e.ranges, e.total_len)) return complete(fi, flow);
  return kNil;
}

uint32_t FragTable::complete(uint32_t fi, FlowKey& flow) {
  FragEntry& e = frags_[fi];
  e.complete = true;
  e.buf.resize(e.total_len);
  // The first-arrived fragment stands for the datagram and chains the rest.
  const uint32_t rep = e.frames.head;
  for (uint32_t j = rep; j != kNil;) {
    uint32_t next = held_[j].next;
    held_[j].frag_next = next;
    held_[j].next = kNil;
    j = next;
  }
  ParsedFrame first;
  parse_frame(held_[e.first_held].data, held_[e.first_held].len, first);
  flow = flow_key_of(first);

  Held& r = held_[rep];
  r.reasm = fi;
  const uint32_t total = e.total_len;
  if (e.key.proto == kProtoUdp && total >= 8) {
    r.payload_off = 8;
    r.payload_len = total - 8;
  } else if ((e.key.proto == kProtoIcmp || e.key.proto == kProtoIcmpv6) && total >= 4) {
    r.seq = SeqNum((uint32_t{e.buf[0]} << 8) | e.buf[1]);
    r.payload_off = 4;
    r.payload_len = total - 4;
  } else {
    r.payload_off = 0;
    r.payload_len = total;
  }
  ++c_.frag_datagrams;
  return rep;
}

void FragTable::discard(uint32_t fi, DropReason why) {
  FragEntry& e = frags_[fi];
  while (e.frames.head != kNil) out_.drop_frame(held_.pop(e.frames), why);
  e.in_use = false;
}

void FragTable::expire(uint64_t now) {
  while (age_head_ != kNil) {
    uint32_t fi = age_head_;
    FragEntry& e = frags_[fi];
    if (e.in_use && !e.complete && e.created_ns + t_.frag_timeout_ns > now) break;
    age_head_ = e.next_age;
    if (age_head_ == kNil) age_tail_ = kNil;
    e.next_age = kNil;
    e.in_age = false;
    if (e.in_use && !e.complete) discard(fi, DropReason::frag_timeout);
  }
}

void FragTable::discard_incomplete() {
  for (uint32_t fi = 0; fi < frags_.size(); ++fi) {
    if (frags_[fi].in_use && !frags_[fi].complete) discard(fi, DropReason::frag_timeout);
  }
}

uint64_t FragTable::next_deadline() const {
  for (uint32_t fi = age_head_; fi != kNil; fi = frags_[fi].next_age) {
    const FragEntry& e = frags_[fi];
    if (e.in_use && !e.complete) return e.created_ns + t_.frag_timeout_ns;
  }
  return UINT64_MAX;
}

size_t FragTable::memory_bytes() const {
  size_t n = 0;
  for (const auto& e : frags_) n += sizeof(FragEntry) + e.buf.capacity();
  return n;
}

}  // namespace lockstep
