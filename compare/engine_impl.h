// The compare engine behind engine.h: the conductor between its parts. Not part of the
// public API.
//
// One EngineImpl per worker thread; it and its parts belong to that thread. The parts,
// each with its own header, state and invariants:
//   checkpoint_state.h  epoch, the outstanding request, mode, failover, hybrid ring
//   held_store.h        the held-frame pool, its FIFO lists, per-frame deadlines
//   outcomes.h          the action queue and the count of every frame's fate
//   conn_table.h        connection records, index, LRU, linger and expiry
//   frag_table.h        IP reassembly
//   tcp_stream.h        TCP byte-stream compare, ACK progress, translation, rules
//   datagram.h          FIFO datagram compare
// The engine owns the settings, the counters and the policy table, parses and
// classifies each frame (engine.cpp), hands it to the part that compares it, and does
// what spans the parts: checkpoints, modes, failover and flushing (engine_epoch.cpp),
// and explaining a divergence (explain.cpp). Memory is sized at creation; nothing grows
// on the per-frame path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/checkpoint_state.h"
#include "compare/conn_table.h"
#include "compare/counters.h"
#include "compare/datagram.h"
#include "compare/engine.h"
#include "compare/frag_table.h"
#include "compare/held_store.h"
#include "compare/outcomes.h"
#include "compare/parse.h"
#include "compare/policy.h"
#include "compare/tcp_stream.h"
#include "compare/tuning.h"

namespace lockstep {

class EngineImpl {
 public:
  EngineImpl(const Settings& s, PolicyTable policy);
  EngineImpl(const EngineImpl&) = delete;
  EngineImpl& operator=(const EngineImpl&) = delete;

  // engine.cpp: frames and time.
  bool push(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now);
  void push_burst(std::span<const Engine::Input> in, uint64_t now, std::span<bool> to_pvm);
  // A frame's flow key and hash, computed before its dispatch (a burst).
  struct Keyed {
    FlowKey key;
    uint64_t hash = 0;
  };
  // The phases of a burst, one frame at a time (push_burst, Engine::push_burst_multi).
  // A frame staged: parsed, its flow hashed, its index bucket prefetched.
  struct Staged {
    ParsedFrame frame;
    Keyed flow;
    bool keyed;
  };
  void stage(const Engine::Input& in, Staged& out) const {
    parse_stage(in, out);
    prefetch_bucket(out);
  }
  void prefetch(const Staged& s) const;
  // stage() in two halves, for bursts across engines whose lines are cold
  // (Engine::push_burst_multi): the line of this engine a frame reads first into the
  // cache, then the parse and hash (no engine state), then the index bucket.
  void prefetch_hot() const { __builtin_prefetch(conns_.hot_line()); }
  static void parse_stage(const Engine::Input& in, Staged& out);
  void prefetch_bucket(const Staged& s) const {
    if (s.keyed) conns_.prefetch(s.flow.hash);
  }
  bool process(const Engine::Input& in, const Staged& s, uint64_t now) {
    return dispatch(in.side, in.handle, in.data, in.len, now, s.frame, s.keyed ? &s.flow : nullptr);
  }
  void set_now(uint64_t now) { out_.set_now(now); }
  void advance(uint64_t now);
  uint64_t next_deadline() const;
  bool due(uint64_t now) const;
  uint64_t deadline_bound() const { return std::min(held_.earliest_bound(), other_deadline()); }
  uint32_t drain(std::span<Action> out) { return out_.drain(out); }
  uint32_t pending_actions() const { return out_.pending(); }
  bool apply_settings(const Settings& s, std::string& error);
  void list_connections(std::vector<ConnInfo>& out, size_t limit) const;
  size_t memory_bytes() const;
  void norm_install(std::unique_ptr<Normalizer> n) { tcp_.norm_install(std::move(n)); }

  // engine_epoch.cpp: checkpoints, modes, failover.
  std::optional<CheckpointRequest> take_checkpoint_request() {
    request_told_ = false;
    return cp_.take();
  }
  void attach_sink(Engine::Sink* sink, uint16_t tag) {
    sink_ = sink;
    tag_ = tag;
    out_.redirect(&sink->actions, tag);
    sync_sink();
  }
  // After every call that may change them: the sink's wake time and request list.
  void sync_sink() {
    if (sink_ == nullptr) return;
    sink_->wake[tag_] = deadline_bound();
    if (!request_told_ && cp_.waiting()) {
      sink_->requests.push_back(tag_);
      request_told_ = true;
    }
  }
  void request_checkpoint(CheckpointReason reason, const FlowKey* flow, uint64_t now) {
    cp_.request(reason, flow, now);
  }
  void checkpoint_done(uint64_t epoch, uint64_t now);
  void failover(Survivor s, uint64_t now);
  void set_mode(Mode m, uint64_t now);
  void flush_all(uint64_t now);

  uint64_t epoch() const { return cp_.epoch(); }
  bool outstanding() const { return cp_.outstanding(); }
  Mode mode() const { return cp_.mode; }
  const Settings& settings() const { return settings_; }
  const Counters& counters() const { return c_; }

 private:
  // Declaration order is construction order: every part after what it refers to.
  Settings settings_;
  Tuning t_;
  Counters c_;
  CheckpointState cp_;
  HeldStore held_;
  FragTable frags_;
  Outcomes out_;
  ConnTable conns_;
  TcpStream tcp_;
  DatagramCompare dgram_;
  PolicyTable policy_;
  uint32_t policy_gen_ = 1;
  Engine::Sink* sink_ = nullptr;  // Engine::attach_sink
  uint16_t tag_ = 0;
  bool request_told_ = false;     // the waiting request is in sink_->requests
  HeldList unowned_;             // PVM frames held without a connection (table full, buffer mode)
  std::vector<uint32_t> fired_;  // scratch for timer callbacks

  // Per-frame dispatch. `keyed`: the frame's flow key and hash computed beforehand (a
  // burst), or null.
  bool dispatch(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                const ParsedFrame& f, const Keyed* keyed);
  // The same, inlined into its callers in engine.cpp (push, push_burst, dispatch).
  [[gnu::always_inline]] inline bool dispatch_inline(Side side, uint64_t handle, uint8_t* data,
                                                     uint32_t len, uint64_t now,
                                                     const ParsedFrame& f, const Keyed* keyed);
  // Inlined into dispatch_inline: a call with seven arguments, its spills and stack
  // arguments cost about 30 instructions a frame.
  [[gnu::always_inline]] inline void on_pvm_svm(Side side, uint64_t handle, uint8_t* data,
                                                uint32_t len, uint64_t now, const ParsedFrame& f,
                                                const Keyed* keyed);
  bool classify(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                const ParsedFrame& f, const Keyed* keyed, FlowKey& key, uint64_t& hash,
                ConnKind& kind, PolicyAction& action);
  bool on_ingress(uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                  const ParsedFrame& f, const Keyed* keyed);
  void on_failed_over(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                      const ParsedFrame& f);
  void on_fragment(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now,
                   const ParsedFrame& f);
  void hold_without_conn(Side side, uint64_t handle, uint8_t* data, uint32_t len, uint64_t now);
  PolicyAction policy_of(Conn& c) {
    if (c.policy_gen != policy_gen_) {
      c.policy = policy_.lookup(c.key);
      c.policy_gen = policy_gen_;
    }
    return c.policy;
  }
  uint64_t other_deadline() const;  // fragments, hybrid mode: all but held frames

  // engine_epoch.cpp
  // `frame`: the held frame whose deadline fired (deadline, ack_divergence), else kNil.
  void diverge(uint32_t ci, CheckpointReason reason, uint64_t now, uint32_t frame = kNil);
  static void diverge_door(void* self, uint32_t ci, CheckpointReason reason, uint64_t now,
                           uint32_t frame) {
    static_cast<EngineImpl*>(self)->diverge(ci, reason, now, frame);
  }
  void release_all_held(ReleaseReason why);
  void hybrid_on_checkpoint(uint64_t now);

  // explain.cpp: what the request of a divergence on connection ci can say.
  void explain(uint32_t ci, CheckpointReason reason, uint32_t frame, CheckpointRequest& r) const;
};

}  // namespace lockstep
