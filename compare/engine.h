// The compare engine (docs/design.md §5). One instance per worker thread, owned by that
// thread; no locks, no clock reads, no allocation on the per-frame path.
//
// Contract with the caller:
//   - push() (or push_burst(), a poll's RX burst at once, the same outcome) hands the
//     engine a frame with a side, an opaque handle and the time. The
//     bytes stay valid and unchanged (except by the engine) until the engine names the
//     handle in exactly one Action. Ingress bytes are those of the SVM-bound copy: the
//     engine may rewrite them (ack, SACK, TSecr, checksum) before forward_svm. SVM bytes
//     may be rewritten after a failover to the SVM (sequence numbers into PVM space).
//   - drain() returns the actions produced so far, in order. Every handle pushed gets
//     exactly one action, eventually; nothing is freed or lost silently.
//   - advance(now) fires deadlines; take_checkpoint_request() returns at most one
//     request per epoch; checkpoint_done(epoch) releases held PVM output, drops SVM
//     backlog and rebases every connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/counters.h"
#include "compare/settings.h"
#include "compare/types.h"

namespace lockstep {

class EngineImpl;

struct ConnInfo {
  FlowKey key;
  std::string state;         // "syn", "established", "closing", "closed", "datagram"
  uint64_t held_pvm = 0, held_svm = 0;
  uint64_t bytes_matched = 0;
  uint64_t last_seen_ns = 0;
  int64_t svm_seq_offset = 0;  // SVM ISN - PVM ISN (TCP), as a signed 32-bit value
  uint32_t divergences = 0;    // checkpoints its divergences asked for
};

class Engine {
 public:
  // Fails (nullptr, error filled) when the settings do not make a valid engine
  // (e.g. a policy rule that does not parse).
  static std::unique_ptr<Engine> create(const Settings& s, std::string& error);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Returns, for ingress frames, whether the caller should send the PVM copy (false after
  // failover to the SVM). For PVM/SVM frames the return value is meaningless.
  bool push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now_ns);

  // One frame of a burst.
  struct Input {
    Side side = Side::pvm;
    uint64_t handle = 0;
    uint8_t* data = nullptr;
    uint32_t len = 0;
  };
  // Frames parsed, hashed and prefetched together by push_burst.
  static constexpr size_t kBurstGroup = 32;
  // Frames received at one time (a poll's RX burst), with exactly the actions and counters
  // push() one by one, in order, would give. Per group of up to kBurstGroup frames, every
  // frame is parsed and its flow hashed first, the connection index buckets and then the
  // connections they name are prefetched, and only then are the frames processed: the
  // cache misses of a large table overlap instead of following one another. For ingress
  // frames, to_pvm[i] (when to_pvm is not empty) is what push() would return.
  void push_burst(std::span<const Input> frames, uint64_t now_ns, std::span<bool> to_pvm = {});

  // One RX burst for several engines at once (a port shared by guest NICs, where a burst
  // may carry one frame per engine): frame i goes to *engines[i]. The outcome is that of
  // push_burst on each engine with its frames in their order; the parsing, hashing and
  // prefetching of push_burst run across all the engines' frames, so that their cache
  // misses overlap, and the caller makes one call for the burst, not one per engine.
  static void push_burst_multi(std::span<Engine* const> engines, std::span<const Input> frames,
                               uint64_t now_ns, std::span<bool> to_pvm = {});

  // Fire every deadline at or before now.
  void advance(uint64_t now_ns);

  // Earliest pending deadline (held frame, fragment, linger, hybrid), or UINT64_MAX.
  uint64_t next_deadline() const;
  // next_deadline() <= now, cheaper: per poll, a bound answers (the held frames' timers
  // are walked only when it says one may be due).
  bool due(uint64_t now_ns) const;
  // A lower bound of next_deadline(), cheaper still (no walk). It stays a bound until the
  // engine is next pushed, advanced or told anything: a caller polling many engines keeps
  // it and asks due() only once it has passed.
  uint64_t deadline_bound() const;

  // Moves up to out.size() actions into out, returns how many.
  uint32_t drain(std::span<Action> out);

  // For a caller that serves many engines on one thread (a worker and its guests' NICs):
  // every engine attached to one Sink puts its actions in the sink's one queue, in the
  // order they are produced, each tagged with the engine's tag; tells the sink once when a
  // checkpoint request starts waiting (its tag in `requests`; take it with
  // take_checkpoint_request()); and keeps wake[tag] at its deadline_bound() after every
  // call that may change it. The caller then drains one queue a poll instead of visiting
  // every engine. An engine with a sink has nothing to drain() of its own. The caller
  // sizes `wake` (every tag an index) and empties the queue and `requests`.
  struct Sink {
    std::vector<Action> actions;
    std::vector<uint16_t> requests;
    std::vector<uint64_t> wake;
  };
  void attach_sink(Sink* sink, uint16_t tag);
  uint32_t pending_actions() const;

  std::optional<CheckpointRequest> take_checkpoint_request();
  void request_checkpoint(CheckpointReason reason, uint64_t now_ns);  // manual, periodic
  void checkpoint_done(uint64_t epoch, uint64_t now_ns);
  uint64_t epoch() const;
  bool checkpoint_outstanding() const;

  void failover(Survivor survivor, uint64_t now_ns);
  void set_mode(Mode m, uint64_t now_ns);
  Mode mode() const;

  // Applies a new settings snapshot live. Capacities fixed at creation
  // (max_connections, max_held_frames, frag_max_datagrams) cannot change: false + error.
  bool apply_settings(const Settings& s, std::string& error);
  const Settings& settings() const;

  // Shutdown: every held frame gets its action (PVM held output is released, as after a
  // checkpoint; SVM and ingress copies are dropped), counted.
  void flush_all(uint64_t now_ns);

  const Counters& counters() const;
  uint64_t held_frames() const;
  void list_connections(std::vector<ConnInfo>& out, size_t limit) const;

  // Bytes of engine memory per tracked connection slot (table entry + connection state),
  // and in total (fixed pools included).
  static size_t bytes_per_connection();
  size_t memory_bytes() const;

 private:
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace lockstep
