// Per-worker, per-port transmit buffer: frames are added in order and sent in bursts;
// a full queue is retried a bounded number of times, then what is left is freed and
// counted. Owned by one worker, used with that worker's own tx queue. While the port
// is captured (`capture start`, capture_tap.h), each burst is copied before it goes to
// the device and the copies of the frames it took are kept.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <array>
#include <cstdint>

#include "dataplane/edge/capture_tap.h"
#include "dataplane/edge/stats.h"

namespace lockstep::dp {

inline constexpr unsigned kTxBufferSize = 64;

class TxBuffer {
 public:
  void init(int port, uint16_t queue, uint32_t retries, PortCounters* counters,
            uint64_t* drop_counter, std::atomic<CaptureRing*>* capture = nullptr) {
    capture_ = capture;
    port_ = port;
    queue_ = queue;
    retries_ = retries;
    counters_ = counters;
    drop_counter_ = drop_counter;
  }
  bool valid() const { return port_ >= 0; }

  void add(rte_mbuf* m) {
    if (n_ == kTxBufferSize) flush();
    bufs_[n_++] = m;
  }

  void flush() {
    if (n_ == 0) return;
    if (port_ < 0) {  // no port for this role: nothing can be sent
      free_from(0);
      return;
    }
    uint16_t sent = 0;
    uint32_t attempts = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n_; ++i) bytes += bufs_[i]->pkt_len;
    CaptureRing* cap = capture_ != nullptr ? capture_->load(std::memory_order_acquire) : nullptr;
    std::array<uint32_t, kTxBufferSize> cap_pos;
    if (cap != nullptr) [[unlikely]] {
      if (cap->wants(kCaptureTx))
        cap->copy_burst(bufs_.data(), n_, kCaptureTx, rte_rdtsc(), cap_pos.data(), port_);
      else
        cap = nullptr;
    }
    for (;;) {
      sent += rte_eth_tx_burst(static_cast<uint16_t>(port_), queue_, bufs_.data() + sent,
                               static_cast<uint16_t>(n_ - sent));
      if (sent == n_ || attempts++ >= retries_) break;
      ++counters_->tx_retries;
    }
    if (cap != nullptr) cap->commit(cap_pos.data(), n_, sent);
    for (uint16_t i = sent; i < n_; ++i) bytes -= bufs_[i]->pkt_len;
    counters_->tx += sent;
    counters_->tx_bytes += bytes;
    free_from(sent);
  }

 private:
  void free_from(uint16_t first) {
    uint16_t lost = static_cast<uint16_t>(n_ - first);
    if (lost) {
      rte_pktmbuf_free_bulk(bufs_.data() + first, lost);
      counters_->tx_dropped += lost;
      *drop_counter_ += lost;
    }
    n_ = 0;
  }

  std::array<rte_mbuf*, kTxBufferSize> bufs_{};
  uint16_t n_ = 0;
  int port_ = -1;
  uint16_t queue_ = 0;
  uint32_t retries_ = 0;
  PortCounters* counters_ = nullptr;
  uint64_t* drop_counter_ = nullptr;
  std::atomic<CaptureRing*>* capture_ = nullptr;  // the port's capture slot
};

}  // namespace lockstep::dp
