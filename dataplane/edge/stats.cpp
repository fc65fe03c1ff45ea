#include "dataplane/edge/stats.h"

#include <cstdio>
#include <sstream>

namespace lockstep::dp {
namespace {

constexpr std::string_view kDropNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_DP_DROPS(LOCKSTEP_X)
#undef LOCKSTEP_X
};

void add(PortCounters& a, const PortCounters& b) {
  a.rx += b.rx;
  a.rx_bytes += b.rx_bytes;
  a.tx += b.tx;
  a.tx_bytes += b.tx_bytes;
  a.tx_dropped += b.tx_dropped;
  a.tx_retries += b.tx_retries;
}

}  // namespace

std::string_view to_string(DpDrop d) {
  auto i = static_cast<unsigned>(d);
  return i < kDpDropCount ? kDropNames[i] : "?";
}

GuestStats& GuestStats::operator+=(const GuestStats& o) {
  engine += o.engine;
  held_frames += o.held_frames;
  frames += o.frames;
  checkpoint_requests_posted += o.checkpoint_requests_posted;
  checkpoints_applied += o.checkpoints_applied;
  del_released += o.del_released;
  del_dropped += o.del_dropped;
  return *this;
}

WorkerStats& WorkerStats::operator+=(const WorkerStats& o) {
  if (guests.size() < o.guests.size()) guests.resize(o.guests.size());
  for (size_t g = 0; g < o.guests.size(); ++g) guests[g] += o.guests[g];
  for (unsigned i = 0; i < kPortRoleCount; ++i) add(port[i], o.port[i]);
  for (unsigned i = 0; i < kDpDropCount; ++i) drops[i] += o.drops[i];
  frames += o.frames;
  steered_out += o.steered_out;
  busy_cycles += o.busy_cycles;
  idle_cycles += o.idle_cycles;
  polls += o.polls;
  checkpoint_requests_posted += o.checkpoint_requests_posted;
  checkpoints_applied += o.checkpoints_applied;
  settings_applied += o.settings_applied;
  settings_refused += o.settings_refused;
  engine += o.engine;
  held_frames += o.held_frames;
  return *this;
}

void StatsSlot::publish(const WorkerStats& s) {
  uint32_t q = seq_.load(std::memory_order_relaxed);
  seq_.store(q + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  data_ = s;
  std::atomic_thread_fence(std::memory_order_release);
  seq_.store(q + 2, std::memory_order_release);
}

WorkerStats StatsSlot::read() const {
  for (;;) {
    uint32_t a = seq_.load(std::memory_order_acquire);
    if (a & 1) continue;
    WorkerStats copy = data_;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) == a) return copy;
  }
}

std::string Report::text() const {
  std::ostringstream o;
  const auto& t = total;
  o << "lockstepd counters\n";
  o << "  port      rx          tx          tx_dropped  link_up link_down dev_missed\n";
  for (unsigned i = 0; i < kPortRoleCount; ++i) {
    if (!has_port[i]) continue;
    char line[160];
    std::snprintf(line, sizeof line, "  %-8s %-11llu %-11llu %-11llu %-7llu %-9llu %llu\n",
                  std::string(to_string(static_cast<PortRole>(i))).c_str(),
                  static_cast<unsigned long long>(t.port[i].rx),
                  static_cast<unsigned long long>(t.port[i].tx),
                  static_cast<unsigned long long>(t.port[i].tx_dropped),
                  static_cast<unsigned long long>(link_up[i]),
                  static_cast<unsigned long long>(link_down[i]),
                  static_cast<unsigned long long>(dev_imissed[i] + dev_rx_nombuf[i]));
    o << line;
  }
  o << "  engine: pvm_in " << t.engine.pvm_in << ", released " << t.engine.released_pvm()
    << ", held " << t.held_frames << ", svm_in " << t.engine.svm_in << ", bytes_compared "
    << t.engine.bytes_compared << ", connections " << t.engine.conns_created << "\n";
  o << "  checkpoints: requested " << checkpoint_requests << ", coalesced "
    << checkpoint_coalesced << ", done " << checkpoints_done << "\n";
  for (unsigned i = 0; i < kDpDropCount; ++i)
    if (t.drops[i]) o << "  drop " << kDropNames[i] << ": " << t.drops[i] << "\n";
  if (guests.size() > 1) {
    for (const auto& g : guests) {
      o << "  guest " << g.name << " (" << g.nics << " nic" << (g.nics == 1 ? "" : "s")
        << "): pvm_in " << g.stats.engine.pvm_in << ", released " << g.stats.engine.released_pvm()
        << ", held " << g.stats.held_frames << ", checkpoints requested " << g.checkpoint_requests
        << ", done " << g.checkpoints_done << "\n";
    }
  }
  for (size_t w = 0; w < workers.size(); ++w) {
    const auto& s = workers[w];
    double cpp = s.frames ? static_cast<double>(s.busy_cycles) / static_cast<double>(s.frames) : 0;
    o << "  worker " << w << ": frames " << s.frames << ", busy_cycles " << s.busy_cycles
      << ", idle_cycles " << s.idle_cycles << ", cycles/frame " << static_cast<uint64_t>(cpp)
      << "\n";
  }
  o << "  pool: " << pool_avail << "/" << pool_size << " mbufs free\n";
  std::string law = t.engine.conservation_error();
  if (!law.empty()) o << "  conservation: " << law << "\n";
  return o.str();
}

std::string Report::json() const {
  std::ostringstream o;
  auto kv = [&](std::string_view k, uint64_t v, bool comma = true) {
    o << '"' << k << "\":" << v << (comma ? "," : "");
  };
  auto ports = [&](const WorkerStats& s) {
    o << "\"ports\":{";
    bool first = true;
    for (unsigned i = 0; i < kPortRoleCount; ++i) {
      if (!has_port[i]) continue;
      if (!first) o << ',';
      first = false;
      const auto& p = s.port[i];
      o << '"' << to_string(static_cast<PortRole>(i)) << "\":{";
      kv("rx", p.rx);
      kv("rx_bytes", p.rx_bytes);
      kv("tx", p.tx);
      kv("tx_bytes", p.tx_bytes);
      kv("tx_dropped", p.tx_dropped);
      kv("tx_retries", p.tx_retries);
      kv("link_up", link_up[i]);
      kv("link_down", link_down[i]);
      kv("queue_state", queue_state[i]);
      kv("dev_imissed", dev_imissed[i]);
      kv("dev_ierrors", dev_ierrors[i]);
      kv("dev_rx_nombuf", dev_rx_nombuf[i]);
      kv("dev_oerrors", dev_oerrors[i], false);
      o << '}';
    }
    o << "},\"drops\":{";
    for (unsigned i = 0; i < kDpDropCount; ++i) kv(kDropNames[i], s.drops[i], i + 1 < kDpDropCount);
    o << "},";
  };
  o << '{';
  ports(total);
  o << "\"engine\":{";
  auto flat = total.engine.flatten();
  for (size_t i = 0; i < flat.size(); ++i) kv(flat[i].first, flat[i].second, i + 1 < flat.size());
  o << "},\"checkpoints\":{";
  kv("requested", checkpoint_requests);
  kv("coalesced", checkpoint_coalesced);
  kv("done", checkpoints_done, false);
  o << "},\"workers\":[";
  for (size_t w = 0; w < workers.size(); ++w) {
    const auto& s = workers[w];
    o << (w ? "," : "") << '{';
    kv("frames", s.frames);
    kv("steered_out", s.steered_out);
    kv("busy_cycles", s.busy_cycles);
    kv("idle_cycles", s.idle_cycles);
    kv("polls", s.polls);
    kv("held_frames", s.held_frames, false);
    o << '}';
  }
  o << "],\"guests\":[";
  for (size_t g = 0; g < guests.size(); ++g) {
    const auto& gr = guests[g];
    o << (g ? "," : "") << "{\"name\":\"" << gr.name << "\",";
    kv("nics", gr.nics);
    kv("epoch", gr.epoch);
    kv("checkpoint_requests", gr.checkpoint_requests);
    kv("checkpoint_coalesced", gr.checkpoint_coalesced);
    kv("checkpoints_done", gr.checkpoints_done);
    kv("held_frames", gr.stats.held_frames);
    kv("frames", gr.stats.frames);
    if (gr.removed) {
      kv("del_released", gr.stats.del_released);
      kv("del_dropped", gr.stats.del_dropped);
    }
    o << "\"engine\":{";
    auto gflat = gr.stats.engine.flatten();
    for (size_t i = 0; i < gflat.size(); ++i) kv(gflat[i].first, gflat[i].second, i + 1 < gflat.size());
    o << "}}";
  }
  o << "],";
  kv("held_frames", total.held_frames);
  kv("released", total.engine.released_pvm());
  kv("pool_size", pool_size);
  kv("pool_avail", pool_avail);
  kv("tsc_hz", tsc_hz, false);
  o << "}\n";
  return o.str();
}

}  // namespace lockstep::dp
