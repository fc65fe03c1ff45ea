// The daemon's event log, for operators (`lockstepctl events`, `lockstepctl explain`):
// checkpoint requests with what the engine saw, completions with their duration,
// failovers, mode and configuration changes, drops by reason, the control plane's own
// events. A bounded ring: the oldest entries leave first and are counted. Every entry has
// a number (seq, from 1, never reused) and a wall-clock time, so that a follower asks
// for what came after the last number it saw. Thread-safe (one mutex; entries are
// appended on the control threads, never per packet).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "compare/types.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

// Wall-clock now, ns since the epoch.
uint64_t wall_now_ns();
// "2026-12-06T10:00:01.234Z" (UTC, milliseconds).
std::string format_wall(uint64_t wall_ns);
// A time as an operator writes it: RFC 3339 UTC ("2026-12-06T10:00:01Z", fraction and
// 'Z' optional), Unix seconds ("1796548801"), or an age before `now_wall` ("90s", "5m",
// "2h", "1d"). False for anything else.
bool parse_time(std::string_view s, uint64_t now_wall, uint64_t& out_wall);

// A checkpoint request as an event's fields: epoch, reason, flow, and what the engine
// saw (stream_offset, pvm_seq, pvm_hex, svm_hex, pvm_text, svm_text, line, frame_time,
// waiting, ack_lag) where it knows them. `clock_now` is the request's clock (t_ns and
// frame_ns) read at the same moment as `wall_now`.
Json checkpoint_request_json(const CheckpointRequest& r, uint64_t clock_now, uint64_t wall_now);

// Bytes as text: printable ASCII as is, \r \n \t escaped, other bytes as \xHH.
std::string printable(const uint8_t* p, size_t n);

// What an operator can do about a divergence that recurs: the normalization rule (or
// shipped set) that covers the differing field, from the reason, the flow's port and the
// line that differs; empty when none is known.
std::string suggest_rule(const Json& request);

// What grew in `now` since `last` (counters by name, as a `drops` event's by_reason: only
// those that grew, by how much); `last` becomes `now`.
Json counter_increase(std::map<std::string, uint64_t>& last, std::map<std::string, uint64_t> now);

class EventLog {
 public:
  explicit EventLog(size_t capacity = 4096);

  // Appends `fields` (an object; "seq", "time" and "event" are set here) as an entry of
  // `kind`; returns its seq.
  uint64_t append(std::string_view kind, Json fields);

  struct Query {
    uint64_t after_seq = 0;       // entries with a larger seq
    uint64_t since_wall_ns = 0;   // and at least this wall time
    size_t limit = 1000;
    std::vector<std::string> kinds;  // only these kinds (empty: all)
  };
  // {"events": [...oldest first], "last_seq": N, "lost": entries that left the ring}.
  // More than `limit` matches: with after_seq, the oldest `limit` (last_seq is then the
  // last one given, to continue from); without, the most recent `limit`.
  Json query(const Query& q) const;
  // The last n entries of `kind`, oldest first.
  std::vector<Json> last_of(std::string_view kind, size_t n) const;
  uint64_t last_seq() const;

 private:
  struct Entry {
    uint64_t seq;
    uint64_t wall_ns;
    std::string kind;
    Json json;
  };
  mutable std::mutex mu_;
  std::deque<Entry> ring_;
  size_t capacity_;
  uint64_t next_seq_ = 1;
  uint64_t lost_ = 0;
};

}  // namespace lockstep::ctrl
