#include "dataplane/edge/capture_tap.h"

#include <rte_cycles.h>

#include <algorithm>
#include <cstring>

#include "dataplane/edge/worker.h"

namespace lockstep::dp {

CaptureTap g_capture_tap;

bool CaptureGuestFilter::wants(int port, const rte_mbuf* m, CaptureDir dir) const {
  if (port < 0 || port >= RTE_MAX_ETHPORTS) return false;
  const uint8_t md = mode[static_cast<unsigned>(port)];
  if (md != kClassify) return md == kAll;
  const Shared& sh = shared[shared_at[static_cast<unsigned>(port)]];
  const auto* f = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t len = rte_pktmbuf_data_len(m);
  if (len < 14) return false;
  // Client frames in and VM-bound frames out are told by their destination.
  const bool by_destination = ext == (dir == kCaptureRx);
  if (by_destination && (f[0] & 1)) {  // broadcast/multicast: flooded to every NIC of its VLAN
    const int vid = UnitClassifier::vlan_of(f, len);
    for (int v : sh.vlans)
      if (v < 0 || v == vid) return true;
    return false;
  }
  const int u = sh.cls->lookup(f, len, by_destination);
  return u >= 0 && static_cast<size_t>(u) < sh.unit_guest.size() && sh.unit_guest[u] == guest;
}

CaptureRing::CaptureRing(size_t bytes) : mem_(bytes / 8), bytes_(bytes), mask_(bytes - 1) {
  rte_spinlock_init(&lock_);
}

uint32_t CaptureRing::start(uint8_t dirs, uint32_t snaplen, const CaptureGuestFilter* filter) {
  rte_spinlock_lock(&lock_);
  uint32_t g = ++gen_;
  filter_.store(filter, std::memory_order_relaxed);
  snaplen_.store(snaplen, std::memory_order_relaxed);
  dirs_.store(dirs, std::memory_order_relaxed);
  rte_spinlock_unlock(&lock_);
  return g;
}

unsigned CaptureRing::copy_burst(rte_mbuf* const* bufs, unsigned n, CaptureDir dir, uint64_t tsc,
                                 uint32_t* pos, int port) {
  const uint32_t snaplen = snaplen_.load(std::memory_order_relaxed);
  unsigned reserved = 0;
  uint64_t full = 0;
  rte_spinlock_lock(&lock_);
  const uint32_t gen = gen_;
  const CaptureGuestFilter* filter = filter_.load(std::memory_order_relaxed);  // under lock_, as gen
  uint64_t h = head_.load(std::memory_order_relaxed);
  const uint64_t t = tail_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i) {
    if (filter != nullptr && !filter->wants(port, bufs[i], dir)) {  // another guest's
      pos[i] = kNone;
      continue;
    }
    const uint32_t cap = std::min(bufs[i]->pkt_len, snaplen);
    const uint64_t size = (sizeof(CaptureRecord) + cap + 7) & ~uint64_t{7};
    const size_t at = h & mask_;
    const uint64_t pad = bytes_ - at < size ? bytes_ - at : 0;  // never wrap a record
    if (h + pad + size - t > bytes_) {
      pos[i] = kNone;
      ++full;
      continue;
    }
    if (pad >= sizeof(CaptureRecord)) {
      auto* skip = reinterpret_cast<CaptureRecord*>(base() + at);
      skip->size = static_cast<uint32_t>(pad);
      std::atomic_ref<uint32_t>(skip->state).store(kSkip, std::memory_order_relaxed);
    }
    h += pad;
    auto* rec = reinterpret_cast<CaptureRecord*>(base() + (h & mask_));
    std::atomic_ref<uint32_t>(rec->state).store(kPending, std::memory_order_relaxed);
    rec->size = static_cast<uint32_t>(size);
    rec->tsc = tsc;
    rec->orig_len = bufs[i]->pkt_len;
    rec->cap_len = cap;
    rec->gen = gen;
    rec->dir = dir;
    pos[i] = static_cast<uint32_t>(h & mask_);
    h += size;
    ++reserved;
  }
  head_.store(h, std::memory_order_release);
  rte_spinlock_unlock(&lock_);
  // The bytes, outside the lock (the records are ours until committed).
  for (unsigned i = 0; i < n; ++i) {
    if (pos[i] == kNone) continue;
    auto* rec = reinterpret_cast<CaptureRecord*>(base() + pos[i]);
    uint8_t* dst = base() + pos[i] + sizeof(CaptureRecord);
    const void* src = rte_pktmbuf_read(bufs[i], 0, rec->cap_len, dst);
    if (src != dst) std::memcpy(dst, src, rec->cap_len);
  }
  if (full) dropped_.fetch_add(full, std::memory_order_relaxed);
  return reserved;
}

void CaptureRing::commit(const uint32_t* pos, unsigned n, unsigned keep) {
  uint64_t kept = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (pos[i] == kNone) continue;
    auto* rec = reinterpret_cast<CaptureRecord*>(base() + pos[i]);
    std::atomic_ref<uint32_t>(rec->state).store(i < keep ? kReady : kSkip, std::memory_order_release);
    kept += i < keep;
  }
  if (kept) copied_.fetch_add(kept, std::memory_order_relaxed);
}

void capture_burst(unsigned role, uint16_t port, rte_mbuf* const* bufs, uint16_t n) {
  CaptureRing* ring = g_capture_tap.ring[role].load(std::memory_order_acquire);
  if (ring == nullptr || !ring->wants(kCaptureRx)) return;
  const uint64_t tsc = rte_rdtsc();
  uint32_t pos[64];
  for (uint16_t first = 0; first < n; first += 64) {
    unsigned k = std::min<unsigned>(64, n - first);
    ring->copy_burst(bufs + first, k, kCaptureRx, tsc, pos, port);
    ring->commit(pos, k, k);
  }
}

}  // namespace lockstep::dp
