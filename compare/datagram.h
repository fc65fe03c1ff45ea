// Datagram compare (docs/design.md §5.4): UDP, ICMP, other IP protocols and, under
// non_ip_policy = compare, non-IP frames. Per flow, PVM and SVM datagrams are matched
// FIFO by equal compared bytes; a PVM datagram is released once it and every PVM
// datagram of its flow that arrived before it are matched.
//
// Owns the datagram fields of a connection record (the pvm/svm lists of a datagram
// flow, unmatched_pvm/unmatched_svm, Held::matched) and their invariants: PVM datagrams
// leave in arrival order; unmatched_* count the unmatched datagrams held per side. The
// records are the table's, the frames the held store's, reassembled bytes the fragment
// table's; normalization rules (for UDP) are TcpStream's normalizer, read here.
#pragma once

#include <cstdint>
#include <memory>

#include "compare/checkpoint_state.h"
#include "compare/conn_table.h"
#include "compare/counters.h"
#include "compare/frag_table.h"
#include "compare/held_store.h"
#include "compare/normalize.h"
#include "compare/outcomes.h"
#include "compare/tuning.h"

namespace lockstep {

class DatagramCompare {
 public:
  DatagramCompare(const Tuning& t, ConnTable& conns, HeldStore& held, Outcomes& out,
                  const FragTable& frags, Counters& c,
                  const std::unique_ptr<Normalizer>& norm, DivergeDoor diverge)
      : t_(t), conns_(conns), held_(held), out_(out), frags_(frags), c_(c), norm_(norm),
        diverge_(diverge) {}

  // A datagram held as idx (Held::conn, payload_off/len and, for ICMP, seq set) of flow
  // ci: matched against the other side's, released in order, or held.
  void output(uint32_t ci, uint32_t idx, uint64_t now);
  // The bytes compared of a held datagram (in its frame, or in its reassembly buffer).
  const uint8_t* compared_bytes(const Held& h) const {
    if (h.reasm != kNil) return frags_.bytes(h.reasm) + h.payload_off;
    return h.data + h.payload_off;
  }

 private:
  void release_prefix(Conn& c);
  bool equal(const Held& a, const Held& b);
  bool norm_equal(const Held& a, const Held& b);

  const Tuning& t_;
  ConnTable& conns_;
  HeldStore& held_;
  Outcomes& out_;
  const FragTable& frags_;
  Counters& c_;
  const std::unique_ptr<Normalizer>& norm_;
  DivergeDoor diverge_;
};

}  // namespace lockstep
