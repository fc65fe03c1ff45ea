// bench_normalize: compare cost per 1448 B TCP pair with the shipped HTTP rules active
// (normalize_rules=@http, port 80) side by side with no rules, in one run (issue 6
// target: at most 30 % more time per pair), and memory per connection with rules.
//
// Same method as bench_compare: frames built before the timed loop, one PVM and one SVM
// frame per flow, connections opened by a handshake; each iteration writes the next
// stream offset into the two frames, pushes PVM then SVM, drains the two actions.
// Payloads:
//   body   1448 bytes of body text, equal on both VMs: the cost rules add to every pair
//          (the tails that keep the last max_span bytes; nothing is scanned while the
//          bytes are equal)
//   date   each segment is an HTTP response head + body whose Date differs between the
//          VMs: one span pair resolved per segment (two window scans), the worst case
//          of a server answering one small response per segment
// Printed at the end: cpu ns per pair for each, the ratio to no rules, and bytes per
// connection (engine slot + normalization slot with its two Hyperscan streams).
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "tests/support/frame_builder.h"

namespace lockstep::test {
namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void patch32(uint8_t* field, uint8_t* csum, uint32_t v) {
  uint32_t old = load_be32(field);
  uint32_t sum = static_cast<uint16_t>(~load_be16(csum));
  sum += static_cast<uint16_t>(~(old >> 16)) + static_cast<uint16_t>(~old & 0xffff);
  sum += (v >> 16) + (v & 0xffff);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  store_be16(csum, static_cast<uint16_t>(~sum));
  store_be32(field, v);
}

constexpr size_t kTcpSeqOff = 14 + 20 + 4;
constexpr size_t kTcpCsumOff = 14 + 20 + 16;
constexpr size_t kPayload = 1448;

enum class Payload { body, date };

Bytes payload_of(Payload kind, bool svm, uint32_t flow) {
  std::string text;
  if (kind == Payload::date) {
    text = std::string("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 14 Nov 2023 22:13:") +
           (svm ? "21" : "20") +
           " GMT\r\nContent-Type: text/html\r\nContent-Length: 1200\r\nLast-Modified: Mon, "
           "13 Nov 2023 09:00:00 GMT\r\nConnection: keep-alive\r\nAccept-Ranges: bytes\r\n\r\n";
  }
  Bytes b(text.begin(), text.end());
  Bytes body = stream_bytes(flow, 0, kPayload);
  for (auto& ch : body) ch = static_cast<uint8_t>('a' + ch % 26);  // text, no CR/LF
  b.insert(b.end(), body.begin(), body.begin() + static_cast<ptrdiff_t>(kPayload - b.size()));
  return b;
}

struct FlowFrames {
  Bytes pvm, svm;
  uint32_t pvm_seq0 = 0, svm_seq0 = 0;
  uint32_t round = 0;
};

class Rig {
 public:
  Rig(const std::string& rules, Payload kind, uint32_t flows) {
    Settings s;
    std::string err;
    if (!Settings::defaults().with_all({{"normalize_rules", rules}}, s, err))
      throw std::runtime_error(err);
    engine_ = Engine::create(s, err);
    if (!engine_) throw std::runtime_error(err);
    actions_.resize(256);
    flows_.resize(flows);
    for (uint32_t i = 0; i < flows; ++i) build_flow(i, kind);
    drain_all();
    if (engine_->held_frames() != 0) throw std::runtime_error("setup left frames held");
  }

  uint32_t pair(uint32_t flow) {
    FlowFrames& f = flows_[flow];
    uint32_t off = f.round * static_cast<uint32_t>(kPayload);
    ++f.round;
    patch32(f.pvm.data() + kTcpSeqOff, f.pvm.data() + kTcpCsumOff, f.pvm_seq0 + off);
    patch32(f.svm.data() + kTcpSeqOff, f.svm.data() + kTcpCsumOff, f.svm_seq0 + off);
    now_ += 100;
    engine_->push(Side::pvm, handle_++, f.pvm.data(), static_cast<uint32_t>(f.pvm.size()), now_);
    engine_->push(Side::svm, handle_++, f.svm.data(), static_cast<uint32_t>(f.svm.size()), now_);
    if ((++pairs_ & 31) == 0) engine_->advance(now_);
    return engine_->drain(actions_);
  }

  const Engine& engine() const { return *engine_; }

 private:
  void drain_all() {
    while (engine_->drain(actions_) == actions_.size()) {
    }
  }
  void push_setup(Side side, Bytes frame) {
    setup_frames_.push_back(std::move(frame));
    Bytes& b = setup_frames_.back();
    engine_->push(side, handle_++, b.data(), static_cast<uint32_t>(b.size()), now_);
  }
  void build_flow(uint32_t i, Payload kind) {
    Conversation::Params p;
    p.client = ip4_host(0x0a000000u + (i >> 8) * 256 + 1);
    p.client_port = static_cast<uint16_t>(10000 + (i & 0xff));
    p.pvm_isn = 0x10000000u + i * 7919u;
    p.svm_isn = 0xfff00000u + i * 104729u;
    Conversation c(p);
    push_setup(Side::ingress, c.client_syn());
    push_setup(Side::pvm, c.vm_synack(Vm::pvm));
    push_setup(Side::svm, c.vm_synack(Vm::svm));
    push_setup(Side::ingress, c.client_handshake_ack());
    FlowFrames& f = flows_[i];
    f.pvm = c.vm_data(Vm::pvm, 0, payload_of(kind, false, i));
    f.svm = c.vm_data(Vm::svm, 0, payload_of(kind, true, i));
    f.pvm_seq0 = c.vm_seq(Vm::pvm, 0);
    f.svm_seq0 = c.vm_seq(Vm::svm, 0);
    if ((i & 1023) == 1023) {
      drain_all();
      setup_frames_.clear();
    }
  }

  std::unique_ptr<Engine> engine_;
  std::vector<Action> actions_;
  std::vector<FlowFrames> flows_;
  std::vector<Bytes> setup_frames_;
  uint64_t now_ = 1'000'000'000;
  uint64_t handle_ = 1;
  uint64_t pairs_ = 0;
};

struct Figure {
  double cpu_ns = 0;
  double bytes_per_conn = 0;
  uint64_t spans = 0;
};
std::map<std::string, Figure>& figures() {
  static std::map<std::string, Figure> f;
  return f;
}

void run(benchmark::State& state, const std::string& label, const std::string& rules,
         Payload kind) {
  const uint32_t flows = static_cast<uint32_t>(state.range(0));
  Rig rig(rules, kind, flows);
  uint32_t flow = 0;
  uint64_t bad = 0, pairs = 0;
  double cpu0 = thread_cpu_ns();
  for (auto _ : state) {
    bad += rig.pair(flow) != 2;
    if (++flow == flows) flow = 0;
    ++pairs;
  }
  double cpu1 = thread_cpu_ns();
  const Counters& c = rig.engine().counters();
  if (bad) state.SkipWithError("pairs not matched (actions != 2)");
  if (c.checkpoint_requests != 0) state.SkipWithError("checkpoint requested");
  const double cpu = pairs ? (cpu1 - cpu0) / static_cast<double>(pairs) : 0;
  uint64_t spans = 0;
  for (const auto& [k, v] : c.flatten()) {
    if (k.rfind("normalize.", 0) == 0 && k.size() > 6 && k.substr(k.size() - 6) == ".spans")
      spans += v;
  }
  const double norm_per_conn =
      c.normalize_conns ? static_cast<double>(c.normalize_state_bytes) /
                              static_cast<double>(c.normalize_conns)
                        : 0.0;
  state.counters["cpu_ns_per_pair"] = cpu;
  state.counters["spans_per_pair"] = pairs ? static_cast<double>(spans) / static_cast<double>(pairs) : 0;
  state.counters["norm_bytes_per_conn"] = norm_per_conn;
  state.counters["engine_bytes_per_conn"] = static_cast<double>(Engine::bytes_per_connection());
  state.SetItemsProcessed(static_cast<int64_t>(pairs));
  state.SetBytesProcessed(static_cast<int64_t>(pairs * kPayload));
  Figure& f = figures()[label + "/" + std::to_string(flows)];
  f.cpu_ns = cpu;
  f.bytes_per_conn = norm_per_conn + static_cast<double>(Engine::bytes_per_connection());
  f.spans = spans;
}

void BM_NoRules_Body(benchmark::State& s) { run(s, "no rules, body", "", Payload::body); }
void BM_HttpRules_Body(benchmark::State& s) { run(s, "@http, body", "@http", Payload::body); }
void BM_HttpRules_DateDiffers(benchmark::State& s) {
  run(s, "@http, Date differs", "@http", Payload::date);
}

BENCHMARK(BM_NoRules_Body)->Arg(1)->Arg(1024)->MinTime(0.5);
BENCHMARK(BM_HttpRules_Body)->Arg(1)->Arg(1024)->MinTime(0.5);
BENCHMARK(BM_HttpRules_DateDiffers)->Arg(1)->Arg(1024)->MinTime(0.5);

}  // namespace
}  // namespace lockstep::test

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  using lockstep::test::figures;
  std::printf("\nbench_normalize: 1448 B TCP pairs, thread CPU ns per pair (target: rules <= 1.30 x no rules)\n");
  for (const char* flows : {"1", "1024"}) {
    auto base = figures().find(std::string("no rules, body/") + flows);
    if (base == figures().end() || base->second.cpu_ns <= 0) continue;
    for (const auto& [k, f] : figures()) {
      if (k.substr(k.rfind('/') + 1) != flows) continue;
      std::printf("  %-28s flows=%-5s %8.1f ns/pair  x%.2f  spans=%llu  bytes/conn=%.0f\n",
                  k.substr(0, k.rfind('/')).c_str(), flows, f.cpu_ns,
                  f.cpu_ns / base->second.cpu_ns, static_cast<unsigned long long>(f.spans),
                  f.bytes_per_conn);
    }
  }
  return 0;
}
