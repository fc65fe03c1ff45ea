// bench_compare: cost of the compare engine per matched PVM/SVM pair, and memory per
// tracked connection (issue 2 targets: <= 150 ns per 64 B TCP pair at 1K flows, 400 ns
// at 64K flows, 500 ns per 1448 B pair, <= 512 bytes per idle tracked connection).
//
// Every frame is built before the timed loop: one PVM and one SVM frame per flow, each
// in its own buffer (as distinct mbufs would be), connections opened by a handshake.
// Each iteration takes the next flow (round robin, so at 64K flows every touch is
// cache-cold), writes the next stream offset into the two frames' sequence numbers
// (two 32-bit stores plus RFC 1624 checksum updates, a few ns, measured alone by
// BM_PatchOnly), pushes the PVM frame then the SVM frame, and drains the two actions.
// advance() runs every 32 pairs, as a worker would per burst. UDP frames need no patch.
//
// Printed per benchmark: ns_per_pair (wall), cpu_ns_per_pair (thread CPU time, the
// figure to read on a shared machine), cycles_per_pair (rdtsc, wall), bytes_per_conn
// (Engine::bytes_per_connection()), insns_per_pair (user-space instructions, when
// perf events are allowed: independent of other load), engine_bytes (memory_bytes() of the instance).
//
// Instruction counts without perf events: `bench_compare --fixed_pairs=N` skips Google
// Benchmark and runs every case for exactly N pairs (after one warm-up round over its
// flows) inside measured_pairs(), which callgrind can isolate, one dump per case:
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_pairs*'
//            --dump-after='lockstep::test::*measured_pairs*' bench_compare --fixed_pairs=20000
// Ir of dump k divided by N is the instructions per pair of case k (the order printed).
#include <benchmark/benchmark.h>

#include <time.h>

#if defined(__linux__)
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <chrono>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "compare/engine.h"
#include "tests/support/frame_builder.h"

namespace lockstep::test {
namespace {

// CPU time of this thread: on a shared machine wall time includes other tenants.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Instructions retired by this thread in user space (perf_event_open), when the kernel
// allows it: a figure that does not depend on how busy the machine is. -1 otherwise.
class InstructionCounter {
 public:
  InstructionCounter() {
#if defined(__linux__)
    perf_event_attr a{};
    a.type = PERF_TYPE_HARDWARE;
    a.size = sizeof(a);
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    fd_ = static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
#endif
  }
  ~InstructionCounter() {
#if defined(__linux__)
    if (fd_ >= 0) close(fd_);
#endif
  }
  InstructionCounter(const InstructionCounter&) = delete;
  InstructionCounter& operator=(const InstructionCounter&) = delete;
  int64_t read_now() const {
#if defined(__linux__)
    uint64_t v = 0;
    if (fd_ >= 0 && ::read(fd_, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v)))
      return static_cast<int64_t>(v);
#endif
    return -1;
  }

 private:
  int fd_ = -1;
};

uint64_t cycles() {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return 0;
#endif
}

// RFC 1624: HC' = ~(~HC + ~m + m') over the two 16-bit halves of a changed 32-bit field.
void patch32(uint8_t* field, uint8_t* csum, uint32_t v) {
  uint32_t old = load_be32(field);
  uint32_t sum = static_cast<uint16_t>(~load_be16(csum));
  sum += static_cast<uint16_t>(~(old >> 16)) + static_cast<uint16_t>(~old & 0xffff);
  sum += (v >> 16) + (v & 0xffff);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  store_be16(csum, static_cast<uint16_t>(~sum));
  store_be32(field, v);
}

struct FlowFrames {
  Bytes pvm, svm;
  uint32_t pvm_seq0 = 0, svm_seq0 = 0;  // sequence number of stream offset 0
  uint32_t round = 0;
};

constexpr size_t kTcpSeqOff = 14 + 20 + 4;   // Ethernet + IPv4 (no options) + ports
constexpr size_t kTcpCsumOff = 14 + 20 + 16;

class Rig {
 public:
  Rig(bool tcp, uint32_t flows, size_t payload) : tcp_(tcp), payload_(payload) {
    Settings s;
    std::string err;
    uint64_t cap = 65536;
    while (cap < 2ull * flows) cap *= 2;
    if (!Settings::defaults().with_all({{"max_connections", std::to_string(cap)}}, s, err))
      throw std::runtime_error(err);
    engine_ = Engine::create(s, err);
    if (!engine_) throw std::runtime_error(err);
    actions_.resize(256);
    flows_.resize(flows);
    for (uint32_t i = 0; i < flows; ++i) build_flow(i);
    drain_all();
    if (engine_->held_frames() != 0) throw std::runtime_error("setup left frames held");
  }

  // One matched pair; returns the number of actions drained (2 when all went well).
  uint32_t pair(uint32_t flow) {
    FlowFrames& f = flows_[flow];
    if (tcp_) {
      uint32_t off = f.round * static_cast<uint32_t>(payload_);
      ++f.round;
      patch32(f.pvm.data() + kTcpSeqOff, f.pvm.data() + kTcpCsumOff, f.pvm_seq0 + off);
      patch32(f.svm.data() + kTcpSeqOff, f.svm.data() + kTcpCsumOff, f.svm_seq0 + off);
    }
    now_ += 100;
    engine_->push(Side::pvm, handle_++, f.pvm.data(), static_cast<uint32_t>(f.pvm.size()), now_);
    engine_->push(Side::svm, handle_++, f.svm.data(), static_cast<uint32_t>(f.svm.size()), now_);
    if ((++pairs_ & 31) == 0) engine_->advance(now_);
    return engine_->drain(actions_);
  }

  // One RX burst of n PVM frames (flows first, first+1, ...), then one of their n SVM
  // copies, through push_burst (burst) or push() one by one in the same order. Returns
  // the actions drained (2 n when all went well).
  uint32_t bursts(uint32_t first, uint32_t n, bool burst) {
    const uint32_t nflows = static_cast<uint32_t>(flows_.size());
    now_ += 100;
    for (Side side : {Side::pvm, Side::svm}) {
      for (uint32_t j = 0; j < n; ++j) {
        FlowFrames& f = flows_[(first + j) % nflows];
        Bytes& b = side == Side::pvm ? f.pvm : f.svm;
        if (tcp_) {
          uint32_t off = f.round * static_cast<uint32_t>(payload_);
          if (side == Side::svm) ++f.round;
          patch32(b.data() + kTcpSeqOff, b.data() + kTcpCsumOff,
                  (side == Side::pvm ? f.pvm_seq0 : f.svm_seq0) + off);
        }
        in_[j] = {side, handle_++, b.data(), static_cast<uint32_t>(b.size())};
      }
      if (burst) {
        engine_->push_burst(std::span<const Engine::Input>(in_.data(), n), now_);
      } else {
        for (uint32_t j = 0; j < n; ++j) engine_->push(in_[j].side, in_[j].handle, in_[j].data, in_[j].len, now_);
      }
    }
    pairs_ += n;
    engine_->advance(now_);
    uint32_t got = 0;
    for (uint32_t k; (k = engine_->drain(actions_)) > 0;) got += k;
    return got;
  }

  void patch_only(uint32_t flow) {
    FlowFrames& f = flows_[flow];
    uint32_t off = f.round * static_cast<uint32_t>(payload_);
    ++f.round;
    patch32(f.pvm.data() + kTcpSeqOff, f.pvm.data() + kTcpCsumOff, f.pvm_seq0 + off);
    patch32(f.svm.data() + kTcpSeqOff, f.svm.data() + kTcpCsumOff, f.svm_seq0 + off);
  }

  const Engine& engine() const { return *engine_; }
  uint32_t flows() const { return static_cast<uint32_t>(flows_.size()); }

 private:
  void push_setup(Side side, Bytes frame) {
    setup_frames_.push_back(std::move(frame));
    Bytes& b = setup_frames_.back();
    engine_->push(side, handle_++, b.data(), static_cast<uint32_t>(b.size()), now_);
  }

  void drain_all() {
    while (engine_->drain(actions_) == actions_.size()) {
    }
  }

  void build_flow(uint32_t i) {
    IpAddr client = ip4_host(0x0a000000u + (i >> 8) * 256 + 1);  // 10.x.y.1
    uint16_t port = static_cast<uint16_t>(10000 + (i & 0xff));
    FlowFrames& f = flows_[i];
    Bytes payload = stream_bytes(i, 0, payload_);
    if (!tcp_) {
      FrameSpec s;
      s.src = ip4(198, 51, 100, 20);
      s.dst = client;
      s.proto = kProtoUdp;
      s.sport = 5000;
      s.dport = port;
      s.payload = payload;
      f.pvm = build_frame(s);
      s.ip_id = 0x4242;
      f.svm = build_frame(s);
      return;
    }
    Conversation::Params p;
    p.client = client;
    p.client_port = port;
    p.pvm_isn = 0x10000000u + i * 7919u;
    p.svm_isn = 0xfff00000u + i * 104729u;
    Conversation c(p);
    push_setup(Side::ingress, c.client_syn());
    push_setup(Side::pvm, c.vm_synack(Vm::pvm));
    push_setup(Side::svm, c.vm_synack(Vm::svm));
    push_setup(Side::ingress, c.client_handshake_ack());
    f.pvm = c.vm_data(Vm::pvm, 0, payload);
    f.svm = c.vm_data(Vm::svm, 0, payload);
    f.pvm_seq0 = c.vm_seq(Vm::pvm, 0);
    f.svm_seq0 = c.vm_seq(Vm::svm, 0);
    if ((i & 1023) == 1023) {
      drain_all();
      setup_frames_.clear();
    }
  }

  bool tcp_;
  size_t payload_;
  std::unique_ptr<Engine> engine_;
  std::vector<Action> actions_;
  std::vector<FlowFrames> flows_;
  std::vector<Bytes> setup_frames_;
  uint64_t now_ = 1'000'000'000;
  uint64_t handle_ = 1;
  uint64_t pairs_ = 0;
  std::array<Engine::Input, 64> in_{};
};

void run_pairs(benchmark::State& state, bool tcp, size_t payload) {
  const uint32_t flows = static_cast<uint32_t>(state.range(0));
  Rig rig(tcp, flows, payload);
  uint32_t flow = 0;
  uint64_t bad = 0, pairs = 0;
  InstructionCounter insns;
  int64_t i0 = insns.read_now();
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = thread_cpu_ns();
  uint64_t c0 = cycles();
  for (auto _ : state) {
    bad += rig.pair(flow) != 2;
    if (++flow == flows) flow = 0;
    ++pairs;
  }
  uint64_t c1 = cycles();
  double cpu1 = thread_cpu_ns();
  auto t1 = std::chrono::steady_clock::now();
  int64_t i1 = insns.read_now();
  if (bad) state.SkipWithError("pairs not matched (actions != 2)");
  if (rig.engine().counters().checkpoint_requests != 0) state.SkipWithError("checkpoint requested");
  double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  state.counters["ns_per_pair"] = pairs ? ns / static_cast<double>(pairs) : 0;
  state.counters["cpu_ns_per_pair"] = pairs ? (cpu1 - cpu0) / static_cast<double>(pairs) : 0;
  state.counters["cycles_per_pair"] =
      pairs ? static_cast<double>(c1 - c0) / static_cast<double>(pairs) : 0;
  if (i0 >= 0 && i1 >= 0 && pairs)
    state.counters["insns_per_pair"] = static_cast<double>(i1 - i0) / static_cast<double>(pairs);
  state.counters["bytes_per_conn"] = static_cast<double>(Engine::bytes_per_connection());
  state.counters["engine_bytes"] = static_cast<double>(rig.engine().memory_bytes());
  state.counters["conns"] = static_cast<double>(rig.engine().counters().conns_active);
  state.SetItemsProcessed(static_cast<int64_t>(pairs));
  state.SetBytesProcessed(static_cast<int64_t>(pairs * payload));
}

// 64 B TCP pairs in RX bursts of 32 (32 PVM frames of 32 flows, then their 32 SVM
// copies), through push_burst (`burst`) or push() per frame in the same order (`single`):
// the same work, side by side, per pair.
void run_bursts(benchmark::State& state, bool burst) {
  const uint32_t flows = static_cast<uint32_t>(state.range(0));
  constexpr uint32_t kN = 32;
  Rig rig(true, flows, 64);
  uint32_t flow = 0;
  uint64_t bad = 0, pairs = 0;
  double cpu0 = thread_cpu_ns();
  for (auto _ : state) {
    bad += rig.bursts(flow, kN, burst) != 2 * kN;
    flow = (flow + kN) % flows;
    pairs += kN;
  }
  double cpu1 = thread_cpu_ns();
  if (bad) state.SkipWithError("pairs not matched (actions != 2 per pair)");
  if (rig.engine().counters().checkpoint_requests != 0) state.SkipWithError("checkpoint requested");
  state.counters["cpu_ns_per_pair"] = pairs ? (cpu1 - cpu0) / static_cast<double>(pairs) : 0;
  state.SetItemsProcessed(static_cast<int64_t>(pairs));
}
void BM_TcpBurst64(benchmark::State& state) { run_bursts(state, true); }
void BM_TcpSingle64(benchmark::State& state) { run_bursts(state, false); }

void BM_TcpPair64(benchmark::State& state) { run_pairs(state, true, 64); }
void BM_TcpPair1448(benchmark::State& state) { run_pairs(state, true, 1448); }
void BM_UdpPair64(benchmark::State& state) { run_pairs(state, false, 64); }

// The frame patching the TCP benchmarks do per pair, without the engine.
void BM_PatchOnly(benchmark::State& state) {
  const uint32_t flows = static_cast<uint32_t>(state.range(0));
  Rig rig(true, flows, 64);
  uint32_t flow = 0;
  for (auto _ : state) {
    rig.patch_only(flow);
    if (++flow == flows) flow = 0;
  }
}

BENCHMARK(BM_TcpPair64)->Arg(1)->Arg(1024)->Arg(65536)->MinTime(1.0);
BENCHMARK(BM_TcpPair1448)->Arg(1)->Arg(1024)->MinTime(1.0);
BENCHMARK(BM_UdpPair64)->Arg(1)->Arg(1024)->MinTime(1.0);
BENCHMARK(BM_PatchOnly)->Arg(1024)->Arg(65536);
BENCHMARK(BM_TcpSingle64)->Arg(1024)->Arg(65536)->MinTime(1.0);
BENCHMARK(BM_TcpBurst64)->Arg(1024)->Arg(65536)->MinTime(1.0);

// Exactly n pairs, round robin from flow 0. Returns how many did not give two actions.
uint64_t round_robin_pairs(Rig& rig, uint64_t n) {
  uint64_t bad = 0;
  uint32_t flow = 0;
  for (uint64_t i = 0; i < n; ++i) {
    bad += rig.pair(flow) != 2;
    if (++flow == rig.flows()) flow = 0;
  }
  return bad;
}

// Out of line and apart (noipa: not merged as identical code), so that a profiler counts
// the measured pairs alone.
[[gnu::noipa]] uint64_t warm_up_pairs(Rig& rig, uint64_t n) { return round_robin_pairs(rig, n); }
[[gnu::noipa]] uint64_t measured_pairs(Rig& rig, uint64_t n) { return round_robin_pairs(rig, n); }

int run_fixed(uint64_t n) {
  struct Case {
    const char* name;
    bool tcp;
    uint32_t flows;
    size_t payload;
  };
  const Case cases[] = {
      {"TcpPair64/1", true, 1, 64},        {"TcpPair64/1024", true, 1024, 64},
      {"TcpPair64/65536", true, 65536, 64}, {"TcpPair1448/1", true, 1, 1448},
      {"TcpPair1448/1024", true, 1024, 1448}, {"UdpPair64/1", false, 1, 64},
      {"UdpPair64/1024", false, 1024, 64},
  };
  int rc = 0;
  for (const Case& c : cases) {
    Rig rig(c.tcp, c.flows, c.payload);
    uint64_t bad = warm_up_pairs(rig, std::max<uint64_t>(c.flows, 1000));
    bad += measured_pairs(rig, n);
    if (bad != 0 || rig.engine().counters().checkpoint_requests != 0) rc = 1;
    std::printf("%-18s %llu pairs%s\n", c.name, static_cast<unsigned long long>(n),
                bad ? " NOT MATCHED" : "");
  }
  return rc;
}

}  // namespace
}  // namespace lockstep::test

int main(int argc, char** argv) {
  constexpr std::string_view kFixed = "--fixed_pairs=";
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.substr(0, kFixed.size()) == kFixed) {
      return lockstep::test::run_fixed(std::stoull(std::string(a.substr(kFixed.size()))));
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
