// The replay loop: feeds merged capture frames to one compare engine in virtual time,
// plays the checkpointer (each request completes a fixed latency later), and turns the
// engine's actions into output frames and event lines.
//
// Time: before a frame stamped t is pushed, every checkpoint completion and engine
// deadline at or before t happens, in time order (a completion first when both fall on
// the same nanosecond). After the last frame, virtual time runs on from deadline to
// completion until the engine holds nothing and no checkpoint is outstanding.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "tools/replay/merge.h"
#include "tools/replay/output_file.h"
#include "tools/replay/pcap_io.h"

namespace lockstep::replay {

struct Sinks {
  PcapWriter* released = nullptr;     // required
  PcapWriter* svm_ingress = nullptr;  // optional
  OutputFile* events = nullptr;       // optional
};

struct ReplayResult {
  uint64_t end_ns = 0;
  uint64_t held_frames_at_end = 0;
  bool drained = true;        // false: frames still held with no deadline left to fire
  std::string conservation;   // empty when pvm/svm/ingress conservation holds
  std::string contract;       // empty when every handle got exactly one valid action
};

class Replayer {
 public:
  // caps: indexed by Side (ingress, pvm, svm); an absent ingress file is an empty Capture.
  Replayer(Engine& engine, std::array<Capture*, 3> caps, uint64_t checkpoint_latency_ns,
           Sinks sinks);

  ReplayResult run(const std::vector<MergedFrame>& order);

 private:
  struct PendingCheckpoint {
    uint64_t due_ns;
    uint64_t epoch;
  };
  struct Tally {  // what one checkpoint completion produced
    uint64_t epoch = 0;
    uint64_t released = 0;
    uint64_t dropped_secondary = 0;
  };

  void run_until(uint64_t t);          // completions and deadlines at or before t
  void deliver_checkpoint();
  void after_step(Tally* tally);       // drain actions, take requests, note mode changes
  void collect_actions();
  void handle_action(const Action& a);
  void take_requests();
  void emit(const std::string& line);
  void write_start_line();
  void write_summary(ReplayResult& r);

  Engine& engine_;
  std::array<Capture*, 3> caps_;
  uint64_t latency_ns_;
  Sinks sinks_;

  uint64_t now_ = 0;
  uint64_t stuck_steps_ = 0;
  std::deque<PendingCheckpoint> pending_;
  std::vector<Action> actions_;
  std::array<Action, 512> drain_buf_{};
  std::vector<uint64_t> pvm_push_ns_;
  std::array<std::vector<uint8_t>, 3> fate_;  // 0 pushed-or-not, 1 acted upon
  uint64_t pushed_ = 0, acted_ = 0, duplicate_actions_ = 0, bad_handles_ = 0;
  uint64_t bad_reasons_ = 0, wrong_kind_ = 0;
  Mode mode_ = Mode::colo;
  bool engine_stuck_ = false;
};

// Handles name a frame: its side in the upper bits, its index in its file below.
inline uint64_t make_handle(Side s, uint32_t index) {
  return (static_cast<uint64_t>(s) << 32) | index;
}

}  // namespace lockstep::replay
