// The engine's parts wired as EngineImpl wires them, without the engine: for the unit
// tests of one part (test_held_store, test_conn_table, test_frag, test_tcp_stream,
// test_datagram). Divergences the compare parts report are recorded, not acted on;
// actions are drained into a vector.
#pragma once

#include <cstdint>
#include <vector>

#include "compare/checkpoint_state.h"
#include "compare/conn_table.h"
#include "compare/counters.h"
#include "compare/datagram.h"
#include "compare/frag_table.h"
#include "compare/held_store.h"
#include "compare/outcomes.h"
#include "compare/parse.h"
#include "compare/settings.h"
#include "compare/tcp_stream.h"
#include "compare/tuning.h"

namespace lockstep::test {

struct Divergence {
  uint32_t ci;
  CheckpointReason reason;
  uint32_t frame;
};

inline Settings small_settings(uint64_t max_conns = 64, uint64_t max_held = 256,
                               uint64_t frag_max = 8) {
  Settings s = Settings::defaults();
  s.max_connections = max_conns;
  s.max_held_frames = max_held;
  s.frag_max_datagrams = frag_max;
  return s;
}

struct PartsRig {
  explicit PartsRig(const Settings& s = small_settings())
      : settings(s),
        t(Tuning::from(s)),
        cp(c, s.hybrid_threshold),
        held(s.max_held_frames, c, cp),
        frags(s.frag_max_datagrams, t, held, out, c),
        out(held, frags, c),
        conns(static_cast<uint32_t>(s.max_connections), c, cp),
        tcp(t, conns, held, out, c, cp, DivergeDoor{this, &PartsRig::record}),
        dgram(t, conns, held, out, frags, c, tcp.normalizer(),
              DivergeDoor{this, &PartsRig::record}) {}
  PartsRig(const PartsRig&) = delete;
  PartsRig& operator=(const PartsRig&) = delete;

  static void record(void* self, uint32_t ci, CheckpointReason reason, uint64_t, uint32_t frame) {
    auto* r = static_cast<PartsRig*>(self);
    r->conns[ci].diverged = true;  // what the engine does first
    r->divergences.push_back({ci, reason, frame});
  }

  std::vector<Action> drain() {
    std::vector<Action> v(out.pending());
    v.resize(out.drain(v));
    return v;
  }

  static ParsedFrame parse(const std::vector<uint8_t>& frame) {
    ParsedFrame f;
    parse_frame(frame.data(), static_cast<uint32_t>(frame.size()), f);
    return f;
  }

  Settings settings;
  Tuning t;
  Counters c;
  CheckpointState cp;
  HeldStore held;
  FragTable frags;
  Outcomes out;
  ConnTable conns;
  TcpStream tcp;
  DatagramCompare dgram;
  std::vector<Divergence> divergences;
};

}  // namespace lockstep::test
