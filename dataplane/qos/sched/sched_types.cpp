#include "dataplane/qos/sched/sched_types.h"

namespace lockstep::sched {
namespace {
constexpr std::string_view kRoleNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_SCHED_ROLES(LOCKSTEP_X)
#undef LOCKSTEP_X
};
constexpr std::string_view kDropNames[] = {
#define LOCKSTEP_X(name, help) #name,
    LOCKSTEP_SCHED_DROPS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
constexpr std::string_view kDropHelp[] = {
#define LOCKSTEP_X(name, help) help,
    LOCKSTEP_SCHED_DROPS(LOCKSTEP_X)
#undef LOCKSTEP_X
};
}  // namespace

std::string_view to_string(TrafficRole r) {
  const auto i = static_cast<unsigned>(r);
  return i < kTrafficRoleCount ? kRoleNames[i] : std::string_view("?");
}

bool traffic_role_from_string(std::string_view s, TrafficRole& out) {
  for (unsigned i = 0; i < kTrafficRoleCount; ++i)
    if (kRoleNames[i] == s) {
      out = static_cast<TrafficRole>(i);
      return true;
    }
  return false;
}

std::string_view to_string(Drop d) {
  const auto i = static_cast<unsigned>(d);
  return i < kDropCount ? kDropNames[i] : std::string_view("?");
}

std::string_view help_of(Drop d) {
  const auto i = static_cast<unsigned>(d);
  return i < kDropCount ? kDropHelp[i] : std::string_view("?");
}

}  // namespace lockstep::sched
