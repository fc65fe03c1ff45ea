#include "dataplane/capture.h"

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <time.h>

#include <chrono>
#include <cstring>

namespace lockstep::dp {
namespace {

constexpr unsigned kRingSize = 4096;
constexpr unsigned kPoolSize = 4095;
constexpr uint32_t kLinkEthernet = 1;

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }  // host order, as pcap allows
void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

bool write_header(std::FILE* f, uint32_t snaplen) {
  uint8_t h[24];
  put32(h, 0xa1b2c3d4);  // microsecond timestamps
  put16(h + 4, 2);
  put16(h + 6, 4);
  put32(h + 8, 0);
  put32(h + 12, 0);
  put32(h + 16, snaplen);
  put32(h + 20, kLinkEthernet);
  return std::fwrite(h, 1, sizeof h, f) == sizeof h;
}

}  // namespace

Capture::~Capture() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (unsigned r = 0; r < kRoleCount; ++r) {
    if (act_[r].on) finish(r);
    if (rings_[r] != nullptr) {
      drain(r, false);
      rte_ring_free(rings_[r]);
    }
  }
  g_capture_tap.pool.store(nullptr);
  rte_mempool_free(pool_);
}

bool Capture::start(const ctrl::CaptureRequest& req, ctrl::Json& result, std::string& error) {
  Role role;
  if (!role_from_string(req.port, role)) {
    error = "capture: unknown port '" + req.port + "' (ext, pvm, svm, host or link)";
    return false;
  }
  const auto r = static_cast<unsigned>(role);
  if (dp_.plan().port[r] < 0) {
    error = "capture: this lockstepd has no " + req.port + " port";
    return false;
  }
  if (req.snaplen < 64) {
    error = "capture: snaplen below 64 bytes";
    return false;
  }
  std::lock_guard lock(mu_);
  if (act_[r].on) {
    error = "capture: already capturing " + req.port + " into " + act_[r].path;
    return false;
  }
  if (pool_ == nullptr) {
    pool_ = rte_pktmbuf_pool_create("ls_capture", kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    SOCKET_ID_ANY);
    if (pool_ == nullptr) {
      error = std::string("capture: cannot create its mbuf pool: ") + rte_strerror(rte_errno);
      return false;
    }
    g_capture_tap.pool.store(pool_, std::memory_order_release);
  }
  if (rings_[r] == nullptr) {
    std::string name = "ls_cap_" + req.port;
    rings_[r] = rte_ring_create(name.c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (rings_[r] == nullptr) {
      error = std::string("capture: cannot create its ring: ") + rte_strerror(rte_errno);
      return false;
    }
  }
  drain(r, false);  // copies left from a previous capture
  Active a;
  a.path = req.path.empty() ? "lockstep-" + req.port + ".pcap" : req.path;
  a.f = std::fopen(a.path.c_str(), "wb");
  if (a.f == nullptr || !write_header(a.f, req.snaplen)) {
    error = "capture: cannot write " + a.path + ": " + std::strerror(errno);
    if (a.f) std::fclose(a.f);
    return false;
  }
  a.on = true;
  a.max_bytes = req.max_bytes;
  a.bytes = 24;
  a.dropped_at_start = g_capture_tap.dropped.load();
  act_[r] = a;
  g_capture_tap.snaplen.store(req.snaplen);
  g_capture_tap.ring[r].store(rings_[r], std::memory_order_release);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  result = {{"port", req.port}, {"path", a.path}, {"max_bytes", a.max_bytes}, {"snaplen", req.snaplen}};
  return true;
}

bool Capture::stop(const std::string& port, ctrl::Json& result, std::string& error) {
  std::lock_guard lock(mu_);
  result = ctrl::Json::array();
  for (unsigned r = 0; r < kRoleCount; ++r) {
    if (!port.empty() && port != to_string(static_cast<Role>(r))) continue;
    if (!act_[r].on) continue;
    result.push_back(finish(r));
  }
  if (result.empty()) {
    error = port.empty() ? "capture: none under way" : "capture: not capturing " + port;
    return false;
  }
  if (result.size() == 1) result = ctrl::Json(result[0]);
  return true;
}

ctrl::Json Capture::finish(unsigned r) {
  auto& a = act_[r];
  g_capture_tap.ring[r].store(nullptr, std::memory_order_release);
  drain(r, a.f != nullptr && !a.full);
  if (a.f) std::fclose(a.f);
  ctrl::Json j = {{"port", to_string(static_cast<Role>(r))},
                  {"path", a.path},
                  {"frames", a.frames},
                  {"bytes", a.bytes},
                  {"copies_dropped", g_capture_tap.dropped.load() - a.dropped_at_start},
                  {"stopped_at_max_bytes", a.full}};
  a = Active{};
  return j;
}

// Writes (or frees) what the role's ring holds; mu_ held.
void Capture::drain(unsigned r, bool write) {
  if (rings_[r] == nullptr) return;
  auto& a = act_[r];
  void* objs[64];
  unsigned n;
  while ((n = rte_ring_sc_dequeue_burst(rings_[r], objs, 64, nullptr)) > 0) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    for (unsigned i = 0; i < n; ++i) {
      auto* m = static_cast<rte_mbuf*>(objs[i]);
      uint32_t len = m->pkt_len;
      if (write && !a.full && a.f != nullptr) {
        if (a.bytes + 16 + len > a.max_bytes) {
          a.full = true;  // bounded: the file ends here
          g_capture_tap.ring[r].store(nullptr, std::memory_order_release);
        } else {
          uint8_t rec[16];
          put32(rec, static_cast<uint32_t>(ts.tv_sec));
          put32(rec + 4, static_cast<uint32_t>(ts.tv_nsec / 1000));
          put32(rec + 8, len);
          put32(rec + 12, len);  // the copy was already cut at snaplen
          std::fwrite(rec, 1, sizeof rec, a.f);
          for (rte_mbuf* s = m; s != nullptr; s = s->next)
            std::fwrite(rte_pktmbuf_mtod(s, const uint8_t*), 1, s->data_len, a.f);
          a.bytes += 16 + len;
          ++a.frames;
        }
      }
      rte_pktmbuf_free(m);
    }
  }
  if (write && a.f) std::fflush(a.f);
}

void Capture::run() {
  while (!stop_.load()) {
    {
      std::lock_guard lock(mu_);
      for (unsigned r = 0; r < kRoleCount; ++r)
        if (act_[r].on) drain(r, true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace lockstep::dp
