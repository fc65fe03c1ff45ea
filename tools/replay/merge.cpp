#include "tools/replay/merge.h"

#include <array>

namespace lockstep::replay {

std::vector<MergedFrame> merge_by_time(std::span<const std::vector<uint64_t>, 3> ts) {
  // Side's enumerators are declared ingress, pvm, svm: the tie order.
  static_assert(static_cast<int>(Side::ingress) < static_cast<int>(Side::pvm));
  static_assert(static_cast<int>(Side::pvm) < static_cast<int>(Side::svm));
  std::vector<MergedFrame> out;
  out.reserve(ts[0].size() + ts[1].size() + ts[2].size());
  std::array<size_t, 3> head{};
  uint64_t now = 0;
  for (;;) {
    int best = -1;
    for (int s = 0; s < 3; ++s) {
      if (head[s] >= ts[s].size()) continue;
      if (best < 0 || ts[s][head[s]] < ts[best][head[best]]) best = s;
    }
    if (best < 0) break;
    const uint64_t t = ts[best][head[best]];
    if (t > now) now = t;
    out.push_back(MergedFrame{now, static_cast<uint32_t>(head[best]), static_cast<Side>(best)});
    ++head[best];
  }
  return out;
}

}  // namespace lockstep::replay
