// libFuzzer target: the compare engine fed interleaved PVM / SVM / ingress frame streams
// and control operations decoded from the input. Checks the engine's contract with its
// caller: every handle gets exactly one action, with a kind that fits its side, frames
// without an action are exactly the held ones, and the conservation law holds after
// every step and after flush_all.
//
// Input format (see make-corpus.py, which writes seeds in it):
//   byte 0, 1: configuration (settings variant, see make_settings)
//   then records: op (1 byte), length (2 bytes, big endian, low 14 bits used),
//                 time delta (2 bytes, big endian, units of 10 us), `length` bytes.
//   op & 0x0f: 0 push PVM, 1 push SVM, 2 push ingress, 3 push to PVM then the same bytes
//              to SVM, 4 the same SVM first, 5 advance, 6 complete the outstanding
//              checkpoint request, 7 request a checkpoint, 8 set mode (op >> 4),
//              9 failover (op >> 4 & 1: survivor), 10 apply a settings variant (op >> 4),
//              11..15: aliases of 0, 1, 3, 2, 5 (frames dominate real traffic).
//   Non-push records carry their bytes too (normally none); they are skipped.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/engine.h"

namespace {

using lockstep::Action;
using lockstep::ActionKind;
using lockstep::Engine;
using lockstep::Settings;
using lockstep::Side;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "fuzz_engine: %s %s\n", what, detail.c_str());
  std::abort();
}

void set(Settings& s, const char* name, const std::string& value) {
  Settings next;
  std::string err;
  if (!s.with(name, value, next, err)) fail("settings:", err);
  s = next;
}

constexpr std::array<const char*, 4> kRules = {
    "",
    "udp:53=pass",
    "tcp:22=drop;icmp=pass;icmpv6=pass",
    "ip@10.0.0.0/8=compare;udp=drop",
};

// Small capacities so that full tables, windows and held-frame limits are reachable.
Settings make_settings(uint8_t a, uint8_t b) {
  Settings s = Settings::defaults();
  set(s, "max_connections", "32");
  set(s, "max_held_frames", "128");
  set(s, "reorder_window", "8");
  set(s, "frag_max_datagrams", "4");
  set(s, "idle_timeout_ms", "1000");
  set(s, "closed_linger_ms", std::to_string(b & 0x10 ? 0 : 200));
  set(s, "datagram_reorder_slack", std::to_string(b >> 6));
  static constexpr std::array<const char*, 4> kModes = {"colo", "colo", "buffer", "passthrough"};
  set(s, "mode", kModes[a & 3]);
  set(s, "malformed_policy", (a & 4) ? "pass" : "drop");
  static constexpr std::array<const char*, 4> kPolicy = {"pass", "compare", "drop", "pass"};
  set(s, "non_ip_policy", kPolicy[(a >> 3) & 3]);
  set(s, "hybrid", (a & 0x20) ? "true" : "false");
  set(s, "translate_timestamps", (a & 0x40) ? "false" : "true");
  set(s, "hold_svm_ingress", (a & 0x80) ? "false" : "true");
  static constexpr std::array<const char*, 4> kDefault = {"compare", "compare", "pass", "drop"};
  set(s, "default_policy", kDefault[b & 3]);
  set(s, "policy_rules", kRules[(b >> 2) & 3]);
  set(s, "nd_policy", (b & 0x20) ? "compare" : "pass");
  return s;
}

// Live-settings variant: only keys that may change after creation.
Settings variant(const Settings& base, uint8_t v) {
  Settings s = base;
  set(s, "default_policy", (v & 1) ? "pass" : "compare");
  set(s, "policy_rules", kRules[(v >> 1) & 3]);
  set(s, "compare_timeout_us", (v & 8) ? "1000" : "100000");
  return s;
}

class Harness {
 public:
  explicit Harness(Engine& e) : e_(e) {}

  void push(Side side, std::span<const uint8_t> bytes) {
    const uint64_t h = next_handle_++;
    Live& l = live_[h];
    l.side = side;
    l.bytes.reserve(bytes.size() + 1);  // non-null data() even for an empty frame
    l.bytes.assign(bytes.begin(), bytes.end());
    e_.push(side, h, l.bytes.data(), static_cast<uint32_t>(l.bytes.size()), now_);
  }

  void tick(uint16_t dt) { now_ += uint64_t{dt} * 10'000; }
  uint64_t now() const { return now_; }

  void take_request() {
    if (pending_epoch_) return;
    if (const auto r = e_.take_checkpoint_request()) pending_epoch_ = r->epoch;
  }
  void complete_checkpoint() {
    take_request();
    if (!pending_epoch_) return;
    e_.checkpoint_done(*pending_epoch_, now_);
    pending_epoch_.reset();
  }

  // Drains every action; checks each against the frame it names.
  void drain() {
    std::array<Action, 64> buf;
    for (;;) {
      const uint32_t n = e_.drain(buf);
      if (n > buf.size()) fail("drain returned more than the span");
      if (n == 0) break;
      for (uint32_t i = 0; i < n; ++i) check_action(buf[i]);
    }
    if (e_.pending_actions() != 0) fail("actions pending after drain");
  }

  void check_invariants() {
    const std::string err = e_.counters().conservation_error();
    if (!err.empty()) fail("conservation:", err);
    if (e_.held_frames() != live_.size()) {
      fail("held frames differ from frames without an action:",
           std::to_string(e_.held_frames()) + " vs " + std::to_string(live_.size()));
    }
  }

  void finish() {
    e_.flush_all(now_);
    drain();
    if (!live_.empty()) {
      fail("frames without an action after flush_all:", std::to_string(live_.size()));
    }
    check_invariants();
  }

 private:
  struct Live {
    Side side = Side::pvm;
    std::vector<uint8_t> bytes;
  };

  void check_action(const Action& a) {
    const auto it = live_.find(a.handle);
    if (it == live_.end()) fail("action for an unknown or finished handle:", std::to_string(a.handle));
    const Side side = it->second.side;
    if (a.side != side) fail("action side differs from the pushed side");
    bool fits = false;
    switch (side) {
      case Side::ingress:
        fits = a.kind == ActionKind::forward_svm || a.kind == ActionKind::drop;
        break;
      case Side::pvm:
        fits = a.kind == ActionKind::release || a.kind == ActionKind::drop;
        break;
      case Side::svm:
        fits = a.kind == ActionKind::free || a.kind == ActionKind::drop ||
               a.kind == ActionKind::release;
        break;
    }
    if (!fits) fail("action kind does not fit the side");
    if (a.kind == ActionKind::drop && a.reason >= lockstep::kDropReasonCount) fail("drop reason");
    if (a.kind == ActionKind::release && a.reason >= lockstep::kReleaseReasonCount) {
      fail("release reason");
    }
    live_.erase(it);
  }

  Engine& e_;
  std::map<uint64_t, Live> live_;
  uint64_t next_handle_ = 1;
  uint64_t now_ = 1'000'000'000;
  std::optional<uint64_t> pending_epoch_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Settings settings = make_settings(data[0], data[1]);
  std::string err;
  std::unique_ptr<Engine> engine = Engine::create(settings, err);
  if (!engine) fail("Engine::create:", err);
  Harness h(*engine);
  bool failed_over = false;

  size_t pos = 2;
  while (size - pos >= 5) {
    const uint8_t op_byte = data[pos];
    const size_t want = ((size_t{data[pos + 1]} << 8) | data[pos + 2]) & 0x3fff;
    const uint16_t dt = static_cast<uint16_t>((data[pos + 3] << 8) | data[pos + 4]);
    pos += 5;
    const size_t len = want < size - pos ? want : size - pos;
    const std::span<const uint8_t> bytes(data + pos, len);
    pos += len;
    h.tick(dt);

    static constexpr std::array<uint8_t, 16> kOp = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                    0, 1, 3, 2, 5};
    const uint8_t arg = op_byte >> 4;
    switch (kOp[op_byte & 0x0f]) {
      case 0:
        h.push(Side::pvm, bytes);
        break;
      case 1:
        h.push(Side::svm, bytes);
        break;
      case 2:
        h.push(Side::ingress, bytes);
        break;
      case 3:
        h.push(Side::pvm, bytes);
        h.push(Side::svm, bytes);
        break;
      case 4:
        h.push(Side::svm, bytes);
        h.push(Side::pvm, bytes);
        break;
      case 5:
        engine->advance(h.now());
        break;
      case 6:
        h.complete_checkpoint();
        break;
      case 7:
        engine->request_checkpoint(lockstep::CheckpointReason::manual, h.now());
        break;
      case 8: {
        static constexpr std::array<lockstep::Mode, 3> kModes = {
            lockstep::Mode::colo, lockstep::Mode::buffer, lockstep::Mode::passthrough};
        engine->set_mode(kModes[arg % 3], h.now());
        break;
      }
      case 9:
        if (!failed_over) {
          failed_over = true;
          engine->failover((arg & 1) ? lockstep::Survivor::secondary
                                     : lockstep::Survivor::primary,
                           h.now());
        }
        break;
      case 10: {
        std::string apply_err;
        if (!engine->apply_settings(variant(settings, arg), apply_err)) {
          fail("apply_settings refused a live-changeable variant:", apply_err);
        }
        break;
      }
      default:
        break;
    }
    h.take_request();
    h.drain();
    h.check_invariants();
  }
  h.finish();
  return 0;
}
