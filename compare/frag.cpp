// IP reassembly (IPv4 and IPv6) before datagram compare. Each side's fragments are
// collected per (side, src, dst, protocol, id, VLAN) in a bounded table; the bytes are
// copied into the entry's buffer, and the fragment frames themselves stay held. When a
// datagram is complete, its first-arrived fragment represents it in the flow's FIFO and
// chains the others: a match releases the PVM's own fragments, in arrival order, and
// frees the SVM's. IP IDs and fragment boundaries are not compared, only the bytes.
//
// An incomplete datagram is given up after frag_timeout_ms (its frames dropped and
// counted as frag_timeout); a full table drops new fragments as frag_table_full.
#include <algorithm>
#include <cstring>

#include "compare/engine_impl.h"

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

void EngineImpl::frag_input(Side side, uint64_t handle, uint8_t* data, uint32_t len,
                            uint64_t now, const ParsedFrame& f) {
  ++c_.frags_in;
  FragKey key;
  key.src = f.src;
  key.dst = f.dst;
  key.id = f.frag_id;
  key.proto = f.l4_proto;
  key.side = side;
  key.vlan = f.vlan_count ? static_cast<uint16_t>(f.vlan_tci[0] & 0xfff) : 0;

  uint32_t fi = kNil;
  for (uint32_t i = frag_age_head_; i != kNil; i = frags_[i].next_age) {
    if (frags_[i].in_use && !frags_[i].complete && frags_[i].key == key) {
      fi = i;
      break;
    }
  }
  if (fi == kNil) {
    frag_expire(now);
    for (uint32_t i = 0; i < frags_.size(); ++i) {
      if (!frags_[i].in_use && !frags_[i].in_age) {
        fi = i;
        break;
      }
    }
    if (fi == kNil) {
      drop_direct(side, handle, DropReason::frag_table_full);
      return;
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
    if (frag_age_tail_ == kNil) frag_age_head_ = fi;
    else frags_[frag_age_tail_].next_age = fi;
    frag_age_tail_ = fi;
  }

  uint32_t idx = alloc_held(side, handle, data, len, now);
  if (idx == kNil) {
    drop_direct(side, handle, DropReason::held_overflow);
    return;
  }
  FragEntry& e = frags_[fi];
  list_push(e.frames, idx);
  const uint32_t off = f.frag_offset;
  const uint32_t end = off + f.frag_data_len;
  if (end > 65535 || e.ranges.size() >= kMaxFragmentsPerDatagram ||
      (!f.more_fragments && e.have_last && e.total_len != end) ||
      (e.have_last && end > e.total_len)) {
    frag_discard(fi, DropReason::frag_malformed);
    return;
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
  if (e.have_first && e.have_last && covers(e.ranges, e.total_len)) frag_complete(fi, now);
}

void EngineImpl::frag_complete(uint32_t fi, uint64_t now) {
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
  const FlowKey key = flow_key_of(first);

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
  const bool pvm = r.side == Side::pvm;

  uint32_t ci = lookup_or_create(key, ConnKind::datagram, now, true);
  if (ci == kNil) {
    request_checkpoint(CheckpointReason::table_full, &key, now);
    if (pvm) {
      list_push(unowned_, rep);
      arm_deadline(rep, now + timeout_ns_);
    } else {
      drop_frame(rep, DropReason::table_full);
    }
    return;
  }
  touch(ci, now);
  switch (policy_of(conns_[ci])) {
    case PolicyAction::pass:
      if (pvm) release_frame(rep, ReleaseReason::policy_pass);
      else drop_frame(rep, DropReason::svm_unmatched_passthrough);
      return;
    case PolicyAction::drop: drop_frame(rep, DropReason::policy_drop); return;
    case PolicyAction::compare: break;
  }
  held_[rep].conn = ci;
  dgram_output(ci, rep, now);
}

void EngineImpl::frag_discard(uint32_t fi, DropReason why) {
  FragEntry& e = frags_[fi];
  while (e.frames.head != kNil) drop_frame(list_pop(e.frames), why);
  e.in_use = false;
}

void EngineImpl::frag_expire(uint64_t now) {
  while (frag_age_head_ != kNil) {
    uint32_t fi = frag_age_head_;
    FragEntry& e = frags_[fi];
    if (e.in_use && !e.complete && e.created_ns + frag_timeout_ns_ > now) break;
    frag_age_head_ = e.next_age;
    if (frag_age_head_ == kNil) frag_age_tail_ = kNil;
    e.next_age = kNil;
    e.in_age = false;
    if (e.in_use && !e.complete) frag_discard(fi, DropReason::frag_timeout);
  }
}

}  // namespace lockstep
