// SVM streams that went through QEMU's filter-rewriter (the SVM host of every documented
// COLO setup). filter-rewriter moves the SVM's segments into the PVM's sequence space
// (th_seq -= SVM_ISN - PVM_ISN) for connections the client opened, but only segments
// whose (SYN, ACK) bits are exactly ACK: the SVM's SYN/ACK keeps the SVM's own ISN.
// The engine learns seq_offset = SVM_ISN - PVM_ISN from the two SYN/ACKs and would then
// translate data that is already translated.
//
// SynAligner gives the engine a consistent view: it remembers the PVM's SYN/ACK sequence
// number per connection and rewrites the SVM's SYN/ACK to it (TCP checksum patched), so
// the learned offset is 0 and the rewritten data compares as is. Connections the VM
// opens (a SYN without ACK) are left alone, as filter-rewriter leaves them: the engine
// learns their offset itself. An SVM SYN/ACK whose PVM counterpart has not been seen yet
// is reported as `wait`; the caller holds the SVM input for at most compare_timeout and
// then passes it unchanged (`give_up`).
//
// Fixed capacity: a 4-way set-associative table (power of two slots); a full set
// replaces one of its entries (counted). Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <vector>

#include "compare/flow_key.h"

namespace lockstep::chardev {

enum class AlignVerdict : uint8_t {
  pass,       // not an SVM SYN/ACK (or nothing to change): push as is
  aligned,    // the SVM SYN/ACK now carries the PVM's ISN
  wait,       // the PVM's SYN/ACK of this connection has not been seen yet
};

#define LOCKSTEP_ALIGN_COUNTERS(X)                                                  \
  X(pvm_synacks, "PVM SYN/ACKs remembered")                                        \
  X(svm_synacks_aligned, "SVM SYN/ACKs given the PVM's ISN")                       \
  X(svm_synacks_waited, "SVM SYN/ACKs that arrived before the PVM's (held)")       \
  X(svm_synacks_unaligned, "SVM SYN/ACKs passed unchanged: no PVM SYN/ACK in time") \
  X(table_replaced, "remembered ISNs replaced by a colliding connection")

struct AlignCounters {
#define LOCKSTEP_X(name, help) uint64_t name = 0;
  LOCKSTEP_ALIGN_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
};

class SynAligner {
 public:
  explicit SynAligner(uint32_t capacity = 65536);

  // Every PVM frame (Ethernet, no vnet header).
  void on_pvm(const uint8_t* frame, uint32_t len);
  // Every SVM frame; may rewrite the frame's TCP sequence number and checksum.
  // `retry`: the frame got `wait` before and is looked at again (not counted twice).
  AlignVerdict on_svm(uint8_t* frame, uint32_t len, bool retry = false);
  // The caller gave up waiting for the PVM's SYN/ACK of a frame that got `wait`.
  void give_up() { ++c_.svm_synacks_unaligned; }

  const AlignCounters& counters() const { return c_; }

 private:
  struct Slot {
    FlowKey key;
    uint32_t isn = 0;
    bool used = false;
  };
  static constexpr uint64_t kWays = 4;
  std::vector<Slot> slots_;
  uint64_t mask_;
  uint64_t victim_ = 0;
  AlignCounters c_;
};

}  // namespace lockstep::chardev
