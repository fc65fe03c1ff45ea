// `lockstepctl events` and `lockstepctl explain`: the daemon's event log (event_log.h)
// as JSON, with a ready-made text form in "text" that lockstepctl prints as is.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>

#include "ctrl/commands.h"

namespace lockstep::ctrl {

namespace {

constexpr size_t kDefaultExplain = 20;
constexpr size_t kMaxExplain = 1000;
constexpr size_t kMaxEvents = 4096;

bool parse_count(std::string_view s, size_t max, size_t& out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || v == 0 || v > max) {
    return false;
  }
  out = static_cast<size_t>(v);
  return true;
}

std::string scalar(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// One line per event: TIME #SEQ EVENT key=value...
std::string events_text(const Json& events) {
  std::string out;
  for (const Json& e : events) {
    out += e.value("time", "-") + "  #" + scalar(e.value("seq", Json(0))) + "  " +
           e.value("event", "?");
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (it.key() == "time" || it.key() == "seq" || it.key() == "event") continue;
      out += "  " + it.key() + "=" + scalar(it.value());
    }
    out += '\n';
  }
  return out;
}

std::string explain_text(const Json& j) {
  std::string out;
  const size_t n = j.value("requests", 0u);
  if (n == 0) return "no checkpoint requests in the event log\n";
  out += std::to_string(n) + " checkpoint request" + (n == 1 ? "" : "s") + " (" +
         j.value("from", "") + " .. " + j.value("to", "") + ")";
  if (j.contains("done") && j["done"].value("count", 0u) > 0) {
    const Json& d = j["done"];
    char buf[96];
    std::snprintf(buf, sizeof buf, ", duration mean %.3f ms, max %.3f ms", d["mean_ms"].get<double>(),
                  d["max_ms"].get<double>());
    out += ", " + scalar(d["count"]) + " completed" + buf;
  }
  out += "\n";
  for (const Json& g : j["groups"]) {
    out += "\n" + scalar(g["count"]) + " x " + g.value("reason", "?");
    if (g.contains("flow")) out += "  " + scalar(g["flow"]);
    out += "  (last " + g.value("last_time", "-") + ")\n";
    const Json& ex = g["last"];
    if (ex.contains("stream_offset")) out += "  stream offset " + scalar(ex["stream_offset"]) + "\n";
    if (ex.contains("line")) out += "  line   " + scalar(ex["line"]) + "\n";
    if (ex.contains("pvm_text")) {
      out += "  pvm    " + scalar(ex["pvm_text"]) + "\n";
      out += "  svm    " + scalar(ex["svm_text"]) + "\n";
      const size_t before = ex.value("shown_before", 0u);
      // A caret under the first differing byte (escapes widen the text before it).
      const std::string pvm = ex.value("pvm_hex", "");
      std::string lead;
      for (size_t i = 0; i < before && 2 * i + 1 < pvm.size(); ++i) {
        const uint8_t b = static_cast<uint8_t>(std::stoul(pvm.substr(2 * i, 2), nullptr, 16));
        lead += printable(&b, 1);
      }
      out += "         " + std::string(lead.size(), ' ') + "^\n";
    }
    if (ex.contains("waiting")) out += "  the " + scalar(ex["waiting"]) + " frame waited for its match\n";
    if (ex.contains("ack_lag")) out += "  the SVM acknowledged " + scalar(ex["ack_lag"]) + " client bytes less than the PVM\n";
    if (g.contains("hint")) out += "  hint: " + scalar(g["hint"]) + "\n";
  }
  return out;
}

// The read-only socket (mode 0666 when configured) shows why, not what: the guests'
// bytes in an explanation stay on the admin socket.
constexpr const char* kPayloadFields[] = {"pvm_hex", "svm_hex", "pvm_text", "svm_text", "line"};
void strip_payload(Json& event) {
  for (const char* k : kPayloadFields) event.erase(k);
}

}  // namespace

Json explain_json(const EventLog& log, size_t n, bool with_bytes) {
  std::vector<Json> reqs;
  for (Json& r : log.last_of("checkpoint_request", kMaxEvents)) {
    if (r.value("coalesced", false)) continue;
    if (!with_bytes) strip_payload(r);
    reqs.push_back(std::move(r));
  }
  if (reqs.size() > n) reqs.erase(reqs.begin(), reqs.end() - static_cast<ptrdiff_t>(n));
  Json j;
  j["requests"] = reqs.size();
  if (!reqs.empty()) {
    j["from"] = reqs.front().value("time", "");
    j["to"] = reqs.back().value("time", "");
  }
  // Groups by reason and flow, the most frequent first (ties: the most recent first).
  std::map<std::pair<std::string, std::string>, Json> groups;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Json& r = reqs[i];
    Json& g = groups[{r.value("reason", ""), r.value("flow", "")}];
    if (g.is_null()) {
      g = {{"reason", r.value("reason", "")}, {"count", 0}, {"first_time", r.value("time", "")}};
      if (r.contains("flow")) g["flow"] = r["flow"];
    }
    g["count"] = g["count"].get<uint64_t>() + 1;
    g["last_time"] = r.value("time", "");
    g["last"] = r;
    g["order"] = i;
    const std::string hint = suggest_rule(r);
    if (!hint.empty()) g["hint"] = hint;
  }
  std::vector<Json> sorted;
  for (auto& [k, g] : groups) sorted.push_back(std::move(g));
  std::sort(sorted.begin(), sorted.end(), [](const Json& a, const Json& b) {
    if (a["count"] != b["count"]) return a["count"].get<uint64_t>() > b["count"].get<uint64_t>();
    return a["order"].get<uint64_t>() > b["order"].get<uint64_t>();
  });
  Json arr = Json::array();
  for (Json& g : sorted) {
    g.erase("order");
    arr.push_back(std::move(g));
  }
  j["groups"] = std::move(arr);
  // Completions: how long checkpoints took.
  uint64_t count = 0;
  double sum = 0, max = 0;
  for (const Json& d : log.last_of("checkpoint_done", n)) {
    if (!d.contains("duration_ms")) continue;
    const double ms = d["duration_ms"].get<double>();
    ++count;
    sum += ms;
    max = std::max(max, ms);
  }
  j["done"] = {{"count", count}, {"mean_ms", count ? sum / static_cast<double>(count) : 0.0},
               {"max_ms", max}};
  j["text"] = explain_text(j);
  return j;
}

void register_event_commands(CommandRegistry& reg, ControlPlane& cp) {
  reg.add({"events", "[--since TIME] [--after SEQ] [--kind KIND]... [--limit N]",
           "the event log: checkpoint requests (with the differing bytes) and completions, "
           "failovers, mode and config changes, drops; TIME: RFC 3339, Unix seconds or an age "
           "(90s, 5m, 2h); `lockstepctl events -f` follows",
           0, -1, false, [&cp](const CommandContext& ctx, const Args& a) {
             EventLog::Query q;
             q.limit = 200;
             for (size_t i = 0; i < a.size(); ++i) {
               const bool has_value = i + 1 < a.size();
               if (a[i] == "--since" && has_value) {
                 if (!parse_time(a[i + 1], wall_now_ns(), q.since_wall_ns)) {
                   return CommandResult::failure("--since takes an RFC 3339 time, Unix seconds "
                                                 "or an age like 90s, 5m, 2h (got '" + a[i + 1] + "')");
                 }
               } else if (a[i] == "--after" && has_value) {
                 auto [p, ec] = std::from_chars(a[i + 1].data(), a[i + 1].data() + a[i + 1].size(),
                                                q.after_seq);
                 if (ec != std::errc{} || p != a[i + 1].data() + a[i + 1].size()) {
                   return CommandResult::failure("--after takes an event number (seq)");
                 }
               } else if (a[i] == "--kind" && has_value) {
                 q.kinds.push_back(a[i + 1]);
               } else if (a[i] == "--limit" && has_value) {
                 if (!parse_count(a[i + 1], kMaxEvents, q.limit)) {
                   return CommandResult::failure("--limit takes a number in 1.." +
                                                 std::to_string(kMaxEvents));
                 }
               } else {
                 return CommandResult::failure("unknown or incomplete argument '" + a[i] +
                                               "' (usage: events [--since TIME] [--after SEQ] "
                                               "[--kind KIND]... [--limit N])");
               }
               ++i;
             }
             Json j = cp.log->query(q);
             if (ctx.read_only) {
               for (Json& e : j["events"]) strip_payload(e);
             }
             j["text"] = events_text(j["events"]);
             return CommandResult::success(j);
           }});
  reg.add({"explain", "[N]",
           "the last N checkpoint requests (default 20) by reason and flow: where the VMs' "
           "output differs, the bytes, and the normalization rule that would cover it",
           0, 1, false, [&cp](const CommandContext& ctx, const Args& a) {
             size_t n = kDefaultExplain;
             if (!a.empty() && !parse_count(a[0], kMaxExplain, n)) {
               return CommandResult::failure("N is a number in 1.." + std::to_string(kMaxExplain));
             }
             return CommandResult::success(explain_json(*cp.log, n, !ctx.read_only));
           }});
}

}  // namespace lockstep::ctrl
