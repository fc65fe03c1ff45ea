// The order in which the replay feeds frames to the engine: the inputs merged by
// timestamp, ties broken ingress, then primary, then secondary. Each file keeps its own
// order (the merge takes the head of each file), so a capture whose timestamps step back
// is not reordered; its frame is fed at the current virtual time instead, because the
// engine's clock never goes back.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "compare/types.h"

namespace lockstep::replay {

struct MergedFrame {
  uint64_t t_ns = 0;   // virtual time of the push: max(timestamp, previous t_ns)
  uint32_t index = 0;  // index of the frame in its file
  Side side = Side::pvm;
};

// ts[s] holds the timestamps of side s's file (index by static_cast<size_t>(Side)).
std::vector<MergedFrame> merge_by_time(std::span<const std::vector<uint64_t>, 3> ts);

}  // namespace lockstep::replay
