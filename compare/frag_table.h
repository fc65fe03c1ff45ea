// IP reassembly (IPv4 and IPv6) before datagram compare. Each side's fragments are
// collected per (side, src, dst, protocol, id, VLAN) in a bounded table; the bytes are
// copied into the entry's buffer, and the fragment frames themselves stay held. When a
// datagram is complete, its first-arrived fragment represents it and chains the others
// (Held::frag_next): the engine hands that one to the datagram compare, and whatever
// becomes of it becomes of all of them (outcomes.h).
//
// Owns the table of datagrams being reassembled, their buffers and the FIFO of entries
// by age. Invariants: bounded (frag_max_datagrams entries, 64 fragments and 65,535 bytes
// a datagram); an entry stays in use from its first fragment until its datagram leaves
// the engine (release_buffer) or is given up: after frag_timeout_ms incomplete (its
// frames dropped as frag_timeout), malformed (frag_malformed). A full table drops new
// fragments (frag_table_full). IP IDs and fragment boundaries are never compared.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "compare/counters.h"
#include "compare/flow_key.h"
#include "compare/held_store.h"
#include "compare/outcomes.h"
#include "compare/parse.h"
#include "compare/tuning.h"

namespace lockstep {

struct FragKey {
  IpAddr src, dst;
  uint32_t id = 0;
  uint8_t proto = 0;
  Side side = Side::pvm;
  uint16_t vlan = 0;
  friend bool operator==(const FragKey&, const FragKey&) = default;
};

// One datagram being reassembled.
struct FragEntry {
  FragKey key;
  bool in_use = false;
  bool have_first = false, have_last = false;
  uint32_t total_len = 0;         // payload length after the IP header, when the last is seen
  uint32_t first_held = kNil;     // frame holding the L4 header (offset 0)
  HeldList frames;                // every fragment frame, arrival order
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // received [offset, end)
  std::vector<uint8_t> buf;       // reassembled bytes from the end of the IP header
  bool complete = false;
  bool in_age = false;            // linked in the age FIFO
  uint64_t created_ns = 0;
  uint32_t next_age = kNil;       // FIFO of entries by creation time
};

class FragTable {
 public:
  FragTable(uint64_t max_datagrams, const Tuning& t, HeldStore& held, Outcomes& out,
            Counters& c)
      : frags_(max_datagrams), t_(t), held_(held), out_(out), c_(c) {}

  // Takes one fragment (held, or dropped with a reason). When it completes its datagram:
  // returns the held frame standing for the datagram (the others chained to it, its
  // compared bytes set as for an unfragmented datagram) and its flow key; else kNil.
  uint32_t input(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                 const ParsedFrame& f, FlowKey& key);
  // Gives up datagrams older than frag_timeout_ms.
  void expire(uint64_t now);
  // Gives up every incomplete datagram (shutdown).
  void discard_incomplete();
  // When the oldest incomplete datagram times out, UINT64_MAX when none.
  uint64_t next_deadline() const;
  // next_deadline() without a call when nothing is being reassembled (the usual case).
  uint64_t deadline_bound() const { return age_head_ == kNil ? UINT64_MAX : next_deadline(); }

  // A reassembled datagram's bytes (from the end of its IP header); its entry is free
  // again once the datagram has left the engine.
  const uint8_t* bytes(uint32_t fi) const { return frags_[fi].buf.data(); }
  void release_buffer(uint32_t fi) { frags_[fi].in_use = false; }

  size_t memory_bytes() const;

 private:
  uint32_t complete(uint32_t fi, FlowKey& key);
  void discard(uint32_t fi, DropReason why);

  std::vector<FragEntry> frags_;
  uint32_t age_head_ = kNil, age_tail_ = kNil;
  const Tuning& t_;
  HeldStore& held_;
  Outcomes& out_;
  Counters& c_;
};

}  // namespace lockstep
