// The workers' side of `capture start`: per port role, a bounded byte ring that the
// workers copy captured frames into (what a port received, what lockstepd hands to its
// tx burst) and one thread (dataplane/daemon/capture.*) drains into a pcapng file.
//
// While a port is not captured its slot in g_capture_tap is null: the rx path and each
// tx burst test one pointer and go on. While it is, a burst takes the ring's lock once
// to reserve one record per frame, copies the bytes (cut at snaplen) outside the lock
// and commits each record; nothing is allocated per frame. A frame that does not fit is
// counted (dropped_full) and never affects the frame itself. A tx record is reserved
// and filled before the burst (the device owns the mbuf afterwards) and committed after
// it: the frames the device took are kept, those it refused for good are skipped.
//
// Ring layout: records at 8-byte aligned offsets, each a CaptureRecord then the bytes.
// A record never wraps: fewer than sizeof(CaptureRecord) bytes left before the end are
// skipped by both sides; more than that are covered by a record in state `skip`.
#pragma once

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace lockstep::dp {

enum CaptureDir : uint8_t { kCaptureRx = 1, kCaptureTx = 2 };

class UnitClassifier;

// `lockstepctl -g NAME capture start ROLE`: which frames of the role's ports are the
// guest's. A port only the guest uses: all of them; a port shared with other guests:
// those the worker's classifier gives to one of the guest's NICs (a client frame by its
// destination MAC/VLAN as it comes in, a frame to the clients by its source as it goes
// out; a VM's frame by its source as it comes in, by its destination as it goes to the
// VM), a broadcast or multicast when it goes to one of the guest's NICs (its VLAN);
// other ports: none. Made by the control side at `capture start` from the guests'
// NICs as they are then; read by the workers while the capture runs.
struct CaptureGuestFilter {
  static constexpr uint8_t kNone = 0, kAll = 1, kClassify = 2;
  struct Shared {
    std::shared_ptr<const UnitClassifier> cls;  // every live NIC on the port
    std::vector<uint16_t> unit_guest;           // the guest of each unit it names
    std::vector<int> vlans;                     // the guest's NICs' VLANs there (-1: any)
  };
  unsigned guest = 0;
  bool ext = false;  // the ext role: client frames in, frames to the clients out
  std::array<uint8_t, RTE_MAX_ETHPORTS> mode{};
  std::array<uint8_t, RTE_MAX_ETHPORTS> shared_at{};  // index into `shared`
  std::vector<Shared> shared;
  // No allocation: a mode lookup, and on a shared port one classifier lookup.
  bool wants(int port, const rte_mbuf* m, CaptureDir dir) const;
};

struct CaptureRecord {
  uint32_t state;  // kPending, kReady or kSkip (atomic access)
  uint32_t size;   // bytes in the ring, this header included, a multiple of 8
  uint64_t tsc;    // rte_rdtsc() when the burst was captured
  uint32_t orig_len;
  uint32_t cap_len;
  uint32_t gen;    // the capture it belongs to (CaptureRing::start)
  uint32_t dir;    // kCaptureRx or kCaptureTx
};
static_assert(sizeof(CaptureRecord) == 32);

class CaptureRing {
 public:
  static constexpr uint32_t kPending = 0, kReady = 1, kSkip = 2;
  static constexpr uint32_t kNone = UINT32_MAX;  // no record (the ring was full)

  // `bytes`: a power of two, at least 4096.
  explicit CaptureRing(size_t bytes);
  CaptureRing(const CaptureRing&) = delete;
  CaptureRing& operator=(const CaptureRing&) = delete;

  // Control side: a new capture (directions, snaplen; `filter`: one guest's frames only,
  // null: all; it must outlive every capture of the ring); records of earlier captures
  // still in the ring are skipped by consume(). Returns the new generation.
  uint32_t start(uint8_t dirs, uint32_t snaplen, const CaptureGuestFilter* filter = nullptr);

  // Worker side. Reserves and fills one record per frame in `pos` (kNone when full,
  // counted, or not the filtered guest's); returns how many were reserved. Records stay
  // pending until commit(). `port`: the port the burst was read from or is sent to.
  unsigned copy_burst(rte_mbuf* const* bufs, unsigned n, CaptureDir dir, uint64_t tsc,
                      uint32_t* pos, int port = -1);
  // Records pos[0..n): the first `keep` ready, the rest skipped.
  void commit(const uint32_t* pos, unsigned n, unsigned keep);
  bool wants(CaptureDir d) const { return (dirs_.load(std::memory_order_relaxed) & d) != 0; }

  // Consumer side (one thread): calls f(const CaptureRecord&, const uint8_t* bytes) for
  // each ready record of generation `gen`, in ring order, freeing the space as it goes.
  // Returns false when it stopped at a record still being filled.
  template <class F>
  bool consume(uint32_t gen, F&& f) {
    uint64_t t = tail_.load(std::memory_order_relaxed);
    const uint64_t h = head_.load(std::memory_order_acquire);
    bool whole = true;
    while (t < h) {
      const size_t pos = t & mask_;
      if (bytes_ - pos < sizeof(CaptureRecord)) {
        t += bytes_ - pos;
        continue;
      }
      auto* rec = reinterpret_cast<CaptureRecord*>(base() + pos);
      uint32_t st = std::atomic_ref<uint32_t>(rec->state).load(std::memory_order_acquire);
      if (st == kPending) {
        whole = false;
        break;
      }
      if (st == kReady && rec->gen == gen) f(*rec, base() + pos + sizeof(CaptureRecord));
      t += rec->size;
      tail_.store(t, std::memory_order_release);
    }
    tail_.store(t, std::memory_order_release);
    return whole;
  }

  uint64_t dropped_full() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t copied() const { return copied_.load(std::memory_order_relaxed); }

 private:
  uint8_t* base() { return reinterpret_cast<uint8_t*>(mem_.data()); }

  std::vector<uint64_t> mem_;  // 8-byte aligned
  size_t bytes_, mask_;
  rte_spinlock_t lock_;
  uint32_t gen_ = 0;                       // under lock_
  std::atomic<uint64_t> head_{0};          // reserved up to (producers, under lock_)
  alignas(64) std::atomic<uint64_t> tail_{0};  // consumed up to
  std::atomic<uint8_t> dirs_{0};
  std::atomic<const CaptureGuestFilter*> filter_{nullptr};
  std::atomic<uint32_t> snaplen_{65535};
  std::atomic<uint64_t> dropped_{0}, copied_{0};
};

// Per port role, the ring of the capture under way (null: none). dataplane/daemon/capture.*
// owns the rings; they live as long as the process's Capture.
struct CaptureTap {
  static constexpr unsigned kMaxRoles = 8;
  std::array<std::atomic<CaptureRing*>, kMaxRoles> ring{};
};
extern CaptureTap g_capture_tap;

// Worker side, rx: copies a burst received on `port` into the role's ring (when its
// capture takes received frames). Called only when the role's slot is not null.
void capture_burst(unsigned role, uint16_t port, rte_mbuf* const* bufs, uint16_t n);

}  // namespace lockstep::dp
