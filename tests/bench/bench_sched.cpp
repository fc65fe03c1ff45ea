// Egress scheduler throughput, side by side with DPDK's rte_sched, in one run on one
// core. Both get the same pre-generated packet sequence (connection, class, length) on
// the same mbufs, in bursts of 32: enqueue the burst, dequeue up to 32, recycle what
// came out; at the end both are drained until every accepted packet is out. Both read
// the TSC for time (rte_sched inside its dequeue; lockstep's scheduler gets it as an
// argument, converted to ns once per burst) and both are timed with rdtsc around the
// whole loop, drain included.
//
// Policy, as close as rte_sched can express it: one port at 100 Gbit/s; 4 priority
// classes = rte_sched traffic classes TC0..TC3 (strict priority inside a pipe); one
// connection = one pipe, whose token bucket (1 Gbit/s) = the per-connection rate of
// lockstep's class; class ceilings = subport TC rates (100 Gbit/s). Rates do not limit
// (the offered load is far below them) so that both hand out every packet; both still
// run their token-bucket arithmetic for every packet. lockstep's classes also have a
// guaranteed rate (10 Gbit/s each), which rte_sched has no notion of.
//
//   bench_sched [packets-per-run, default 4194304] [runs, default 3]
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_sched.h>

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/cli.h"
#include "dataplane/qos/sched/scheduler.h"

namespace {

using lockstep::sched::ClassParams;
using lockstep::sched::Packet;
using lockstep::sched::PortParams;
using lockstep::sched::SchedConfig;
using lockstep::sched::Scheduler;

constexpr uint32_t kBurst = 32;
constexpr uint32_t kClasses = 4;
constexpr uint64_t kPortRate = 12'500'000'000ull;  // bytes/s: 100 Gbit/s
constexpr uint64_t kConnRate = 125'000'000ull;     // bytes/s: 1 Gbit/s
constexpr uint32_t kMbufs = 32767;

struct Seq {
  std::vector<uint32_t> conn;
  std::vector<uint8_t> cls;
  std::vector<uint16_t> len;
};

Seq make_seq(uint32_t n, uint32_t conns, uint64_t seed) {
  Seq s;
  s.conn.resize(n);
  s.cls.resize(n);
  s.len.resize(n);
  uint64_t x = seed;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t r = next();
    s.conn[i] = static_cast<uint32_t>(r % conns);
    // A connection belongs to one class (filters look at its 5-tuple): 10/20/30/40 %.
    const uint32_t c = static_cast<uint32_t>((s.conn[i] * 0x9e3779b9u) >> 16) % 10;
    s.cls[i] = static_cast<uint8_t>(c < 1 ? 0 : c < 3 ? 1 : c < 6 ? 2 : 3);
    s.len[i] = 64;
  }
  return s;
}

// A stack of free mbufs shared by both runs; refilled from the pool when a scheduler
// dropped (and freed) some.
struct MbufStack {
  rte_mempool* pool = nullptr;
  std::vector<rte_mbuf*> v;
  rte_mbuf* pop() {
    if (v.empty()) {
      rte_mbuf* m = rte_pktmbuf_alloc(pool);
      if (m == nullptr) {
        std::fprintf(stderr, "mbuf pool exhausted\n");
        std::exit(1);
      }
      return m;
    }
    rte_mbuf* m = v.back();
    v.pop_back();
    return m;
  }
};

struct Result {
  uint64_t cycles = 0;
  uint64_t out = 0;
  uint64_t dropped = 0;
  uint64_t evicted = 0;
};

// ---------------------------------------------------------------- rte_sched

rte_sched_port* make_rte_sched(uint32_t pipes) {
  static rte_sched_subport_profile_params sp;
  sp.tb_rate = kPortRate;
  sp.tb_size = 1'000'000;
  for (auto& r : sp.tc_rate) r = kPortRate;
  sp.tc_period = 10;

  rte_sched_port_params pp{};
  pp.name = "bench_sched";
  pp.socket = 0;
  pp.rate = kPortRate;
  pp.mtu = 1522;
  pp.frame_overhead = RTE_SCHED_FRAME_OVERHEAD_DEFAULT;
  pp.n_subports_per_port = 1;
  pp.subport_profiles = &sp;
  pp.n_subport_profiles = 1;
  pp.n_max_subport_profiles = 1;
  pp.n_pipes_per_subport = pipes;
  rte_sched_port* port = rte_sched_port_config(&pp);
  if (port == nullptr) {
    std::fprintf(stderr, "rte_sched_port_config failed\n");
    std::exit(1);
  }

  static rte_sched_pipe_params pipe;
  pipe.tb_rate = kConnRate;
  pipe.tb_size = 1'000'000;
  for (uint32_t tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; ++tc)  // unused TCs: 0
    pipe.tc_rate[tc] = (tc < kClasses || tc == RTE_SCHED_TRAFFIC_CLASS_BE) ? kConnRate : 0;
  pipe.tc_period = 40;
  pipe.tc_ov_weight = 1;
  for (auto& w : pipe.wrr_weights) w = 1;

  rte_sched_subport_params sub{};
  sub.n_pipes_per_subport_enabled = pipes;
  for (uint32_t tc = 0; tc < RTE_SCHED_TRAFFIC_CLASSES_PER_PIPE; ++tc)
    sub.qsize[tc] = (tc < kClasses || tc == RTE_SCHED_TRAFFIC_CLASS_BE) ? 64 : 0;
  sub.pipe_profiles = &pipe;
  sub.n_pipe_profiles = 1;
  sub.n_max_pipe_profiles = 1;
  sub.cman_params = nullptr;
  if (int rc = rte_sched_subport_config(port, 0, &sub, 0); rc != 0) {
    std::fprintf(stderr, "rte_sched_subport_config: %d\n", rc);
    std::exit(1);
  }
  for (uint32_t p = 0; p < pipes; ++p)
    if (int rc = rte_sched_pipe_config(port, 0, p, 0); rc != 0) {
      std::fprintf(stderr, "rte_sched_pipe_config(%u): %d\n", p, rc);
      std::exit(1);
    }
  return port;
}

Result run_rte_sched(const Seq& s, uint32_t pipes, MbufStack& st) {
  rte_sched_port* port = make_rte_sched(pipes);
  const uint32_t n = static_cast<uint32_t>(s.conn.size());
  rte_mbuf* in[kBurst];
  rte_mbuf* out[kBurst];
  Result r;
  uint64_t accepted = 0;
  const uint64_t t0 = rte_rdtsc();
  for (uint32_t i = 0; i < n; i += kBurst) {
    const uint32_t b = std::min(kBurst, n - i);
    for (uint32_t j = 0; j < b; ++j) {
      rte_mbuf* m = st.pop();
      m->pkt_len = s.len[i + j];
      m->data_len = s.len[i + j];
      rte_sched_port_pkt_write(port, m, 0, s.conn[i + j], s.cls[i + j], 0, RTE_COLOR_GREEN);
      in[j] = m;
    }
    const int e = rte_sched_port_enqueue(port, in, b);
    accepted += static_cast<uint64_t>(e);
    r.dropped += b - static_cast<uint32_t>(e);
    const int d = rte_sched_port_dequeue(port, out, kBurst);
    for (int j = 0; j < d; ++j) st.v.push_back(out[j]);
    r.out += static_cast<uint64_t>(d);
  }
  while (r.out < accepted) {
    const int d = rte_sched_port_dequeue(port, out, kBurst);
    for (int j = 0; j < d; ++j) st.v.push_back(out[j]);
    r.out += static_cast<uint64_t>(d);
  }
  r.cycles = rte_rdtsc() - t0;
  rte_sched_port_free(port);
  return r;
}

// ---------------------------------------------------------------- lockstep

Result run_lockstep(const Seq& s, uint32_t conns, MbufStack& st) {
  SchedConfig cfg;
  cfg.max_connections = conns * 2;  // the recommended sizing: twice the live connections
  cfg.max_packets = 65536;
  cfg.max_packet_bytes = 1518;
  Scheduler sch(cfg);
  PortParams port;
  port.rate = kPortRate;
  port.burst = 1'000'000;
  sch.set_port(port, 0);
  for (uint32_t c = 0; c < kClasses; ++c) {
    ClassParams p;
    p.prio = static_cast<uint8_t>(c);
    p.rate = kPortRate / 10;
    p.ceil = kPortRate;
    p.conn_rate = kConnRate;
    p.conn_burst = 1'000'000;
    p.burst = p.cburst = 1'000'000;
    p.limit = 65536;
    if (auto e = sch.add_class(static_cast<uint8_t>(c), p, 0); !e.empty()) {
      std::fprintf(stderr, "add_class: %s\n", e.c_str());
      std::exit(1);
    }
  }
  const uint32_t n = static_cast<uint32_t>(s.conn.size());
  const uint64_t hz = rte_get_tsc_hz();
  Packet in[kBurst];
  uint64_t out[kBurst];
  uint64_t dropped[kBurst];
  Result r;
  uint64_t accepted = 0;
  const uint64_t t0 = rte_rdtsc();
  auto now_ns = [&] {
    const uint64_t c = rte_rdtsc() - t0;
    return (c / hz) * 1'000'000'000ull + (c % hz) * 1'000'000'000ull / hz;
  };
  for (uint32_t i = 0; i < n; i += kBurst) {
    const uint32_t b = std::min(kBurst, n - i);
    for (uint32_t j = 0; j < b; ++j) {
      rte_mbuf* m = st.pop();
      m->pkt_len = s.len[i + j];
      m->data_len = s.len[i + j];
      in[j] = Packet{reinterpret_cast<uint64_t>(m), s.conn[i + j], s.len[i + j], s.cls[i + j]};
    }
    const uint64_t t = now_ns();
    const uint32_t nd = sch.enqueue_burst({in, b}, t, dropped);
    for (uint32_t j = 0; j < nd; ++j) rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(dropped[j]));
    accepted += b - nd;
    r.dropped += nd;
    const uint32_t d = sch.dequeue_burst(t, out);
    for (uint32_t j = 0; j < d; ++j) st.v.push_back(reinterpret_cast<rte_mbuf*>(out[j]));
    r.out += d;
  }
  while (r.out < accepted) {
    const uint32_t d = sch.dequeue_burst(now_ns(), out);
    for (uint32_t j = 0; j < d; ++j) st.v.push_back(reinterpret_cast<rte_mbuf*>(out[j]));
    r.out += d;
  }
  r.cycles = rte_rdtsc() - t0;
  r.evicted = sch.port_stats(now_ns()).ctr.conns_evicted;
  return r;
}

double mpps(uint64_t pkts, uint64_t cycles, uint64_t hz) {
  return static_cast<double>(pkts) / (static_cast<double>(cycles) / static_cast<double>(hz)) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t packets = 1u << 22;
  int runs = 3;
  CLI::App app{"lockstep's egress scheduler against DPDK's rte_sched on the same packets.",
               "bench_sched"};
  lockstep::cli::setup(app, {"[PACKETS [RUNS]]"});
  app.add_option("PACKETS", packets, "packets per run (default 4194304)")
      ->check(CLI::Range(1u, 1u << 30));
  app.add_option("RUNS", runs, "runs per case (default 3)")->check(CLI::Range(1, 100));
  if (int rc = lockstep::cli::parse(app, argc, argv, 2); rc >= 0) return rc;
  std::string prefix = "--file-prefix=bench_sched" + std::to_string(getpid());
  const char* eal[] = {"bench_sched", "--no-huge", "-m", "512", "--no-pci", prefix.c_str(),
                       "-l", "0", "--no-telemetry", "--log-level=lib.eal:error"};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char**>(eal)) < 0) {
    std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  MbufStack st;
  st.pool = rte_pktmbuf_pool_create("bench_sched", kMbufs, 256, 0, RTE_PKTMBUF_HEADROOM + 128,
                                    static_cast<int>(rte_socket_id()));
  if (st.pool == nullptr) {
    std::fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  for (uint32_t i = 0; i < 16384; ++i) st.v.push_back(st.pop());
  const uint64_t hz = rte_get_tsc_hz();

  std::printf("egress scheduler, 1 core, %u packets of 64 B per run, bursts of %u, best of %d runs\n",
              packets, kBurst, runs);
  std::printf("%-7s %-10s %12s %10s %12s %10s %7s %s\n", "conns", "scheduler", "Mpps",
              "cyc/pkt", "out", "dropped", "ratio", "");
  for (uint32_t conns : {4096u, 65536u}) {
    const Seq seq = make_seq(packets, conns, 0x9e3779b97f4a7c15ull ^ conns);
    Result best_r, best_l;
    for (int k = 0; k < runs; ++k) {
      const Result r = run_rte_sched(seq, conns, st);
      const Result l = run_lockstep(seq, conns, st);
      if (k == 0 || r.cycles < best_r.cycles) best_r = r;
      if (k == 0 || l.cycles < best_l.cycles) best_l = l;
    }
    const double mr = mpps(best_r.out, best_r.cycles, hz);
    const double ml = mpps(best_l.out, best_l.cycles, hz);
    std::printf("%-7u %-10s %12.2f %10.1f %12" PRIu64 " %10" PRIu64 "\n", conns, "rte_sched", mr,
                static_cast<double>(best_r.cycles) / static_cast<double>(best_r.out), best_r.out,
                best_r.dropped);
    std::printf("%-7u %-10s %12.2f %10.1f %12" PRIu64 " %10" PRIu64 " %6.2fx (evicted %" PRIu64 ")\n",
                conns, "lockstep", ml,
                static_cast<double>(best_l.cycles) / static_cast<double>(best_l.out), best_l.out,
                best_l.dropped, ml / mr, best_l.evicted);
  }
  rte_eal_cleanup();
  return 0;
}
