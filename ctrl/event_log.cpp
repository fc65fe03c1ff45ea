#include "ctrl/event_log.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace lockstep::ctrl {

uint64_t wall_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string format_wall(uint64_t wall_ns) {
  const time_t secs = static_cast<time_t>(wall_ns / 1000000000);
  struct tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(wall_ns / 1000000 % 1000));
  return buf;
}

namespace {

bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// "YYYY-MM-DDTHH:MM:SS[.fff][Z]" (or a space for T), UTC.
bool parse_rfc3339(std::string_view s, uint64_t& out) {
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.remove_suffix(1);
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  uint64_t y, mo, d, h, mi, se;
  if (!parse_uint(s.substr(0, 4), y) || !parse_uint(s.substr(5, 2), mo) ||
      !parse_uint(s.substr(8, 2), d) || !parse_uint(s.substr(11, 2), h) ||
      !parse_uint(s.substr(14, 2), mi) || !parse_uint(s.substr(17, 2), se)) {
    return false;
  }
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    return false;
  }
  uint64_t frac_ns = 0;
  if (s.size() > 19) {
    if (s[19] != '.' || s.size() == 20 || s.size() > 29) return false;
    uint64_t scale = 100000000;
    for (char c : s.substr(20)) {
      if (c < '0' || c > '9') return false;
      frac_ns += static_cast<uint64_t>(c - '0') * scale;
      scale /= 10;
    }
  }
  struct tm tm{};
  tm.tm_year = static_cast<int>(y) - 1900;
  tm.tm_mon = static_cast<int>(mo) - 1;
  tm.tm_mday = static_cast<int>(d);
  tm.tm_hour = static_cast<int>(h);
  tm.tm_min = static_cast<int>(mi);
  tm.tm_sec = static_cast<int>(se);
  const time_t t = timegm(&tm);
  if (t < 0) return false;
  out = static_cast<uint64_t>(t) * 1000000000 + frac_ns;
  return true;
}

}  // namespace

bool parse_time(std::string_view s, uint64_t now_wall, uint64_t& out_wall) {
  if (s.empty()) return false;
  uint64_t v;
  if (parse_uint(s, v)) {
    if (v > UINT64_MAX / 1000000000) return false;
    out_wall = v * 1000000000;
    return true;
  }
  const char unit = s.back();
  const uint64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600
                         : unit == 'd' ? 86400 : 0;
  if (scale != 0 && parse_uint(s.substr(0, s.size() - 1), v)) {
    if (v > UINT64_MAX / 1000000000 / scale) return false;
    const uint64_t age = v * scale * 1000000000;
    out_wall = age < now_wall ? now_wall - age : 0;
    return true;
  }
  return parse_rfc3339(s, out_wall);
}

std::string printable(const uint8_t* p, size_t n) { return to_printable(p, n); }

Json checkpoint_request_json(const CheckpointRequest& r, uint64_t clock_now, uint64_t wall_now) {
  auto wall_of = [&](uint64_t t) {
    return format_wall(t <= clock_now ? wall_now - std::min(wall_now, clock_now - t)
                                      : wall_now + (t - clock_now));
  };
  Json j;
  j["epoch"] = r.epoch;
  j["reason"] = to_string(r.reason);
  if (r.has_flow) {
    j["flow"] = to_string(r.flow);
    j["proto"] = r.flow.proto;
    j["ports"] = {r.flow.port_lo, r.flow.port_hi};
  }
  if (r.t_ns != 0) j["request_time"] = wall_of(r.t_ns);
  if (r.frame_ns != 0) j["frame_time"] = wall_of(r.frame_ns);
  const DivergenceDetail& d = r.detail;
  if (d.has_offset) j["stream_offset"] = d.stream_offset;
  if (d.has_seq) j["pvm_seq"] = d.pvm_seq;
  if (d.pvm_len != 0 || d.svm_len != 0) {
    j["shown_before"] = d.shown_before;
    j["pvm_hex"] = to_hex(d.pvm.data(), d.pvm_len);
    j["svm_hex"] = to_hex(d.svm.data(), d.svm_len);
    j["pvm_text"] = printable(d.pvm.data(), d.pvm_len);
    j["svm_text"] = printable(d.svm.data(), d.svm_len);
  }
  if (d.line_len != 0) j["line"] = printable(d.line.data(), d.line_len);
  if (r.reason == CheckpointReason::deadline) j["waiting"] = to_string(d.waiting);
  if (d.ack_lag != 0) j["ack_lag"] = d.ack_lag;
  return j;
}

namespace {

bool http_port(uint64_t p) { return p == 80 || (p >= 8000 && p <= 8099); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

}  // namespace

std::string suggest_rule(const Json& request) {
  const std::string reason = request.value("reason", "");
  if (reason != "payload_mismatch" && reason != "datagram_mismatch") return {};
  uint64_t port = 0;  // the server's: the lower of the two well-known-looking ports
  if (request.contains("ports") && request["ports"].is_array() && request["ports"].size() == 2) {
    const uint64_t a = request["ports"][0].get<uint64_t>(), b = request["ports"][1].get<uint64_t>();
    port = std::min(a, b);
    if (http_port(a) || http_port(b)) port = http_port(a) ? a : b;
  }
  const std::string line = request.value("line", "");
  const bool tcp = request.value("proto", 0) == 6;
  struct Field {
    std::string_view header, rule;
  };
  static constexpr Field kHttp[] = {{"Date:", "http_date"},
                                    {"Expires:", "http_expires"},
                                    {"Age:", "http_age"},
                                    {"Last-Modified:", "http_last_modified"},
                                    {"X-Request-Id:", "http_request_id"},
                                    {"X-Correlation-Id:", "http_request_id"},
                                    {"X-Trace-Id:", "http_request_id"},
                                    {"X-Amzn-Trace-Id:", "http_request_id"}};
  const std::string sel = "tcp:" + std::to_string(port);
  if (tcp) {
    for (const Field& f : kHttp) {
      if (!starts_with_ci(line, f.header)) continue;
      std::string s = "the HTTP header '" + std::string(f.header) + "' differs: rule " +
                      std::string(f.rule) + " of the shipped set covers it: ";
      return s + (http_port(port) ? "lockstepctl config set normalize_rules=@http"
                                  : "lockstepctl config set normalize_rules='@http " + sel + "'");
    }
    const uint64_t offset = request.value("stream_offset", UINT64_MAX);
    const bool first_line = line.size() == offset || offset < 256;
    if (first_line && (port == 25 || port == 587))
      return "the SMTP greeting differs: lockstepctl config set normalize_rules=@smtp";
    if (first_line && port == 143)
      return "the IMAP greeting differs: lockstepctl config set normalize_rules=@imap";
    if (first_line && port == 110)
      return "the POP3 greeting differs: lockstepctl config set normalize_rules=@pop3";
  }
  if (!line.empty() && line.find(':') != std::string::npos) {
    const std::string name = line.substr(0, line.find(':') + 1);
    return "the field '" + name + "' differs; if two correct replicas choose it independently, "
           "a rule like 'NAME " + std::string(tcp ? "tcp:" : "udp:") + std::to_string(port) +
           " (?i)\\n" + name + "[^\\r\\n]*\\r' in normalize_rules covers it (docs/normalization.md)";
  }
  return {};
}

Json counter_increase(std::map<std::string, uint64_t>& last, std::map<std::string, uint64_t> now) {
  Json grew = Json::object();
  for (const auto& [k, v] : now) {
    auto it = last.find(k);
    const uint64_t before = it == last.end() ? 0 : it->second;
    if (v > before) grew[k] = v - before;
  }
  last = std::move(now);
  return grew;
}

EventLog::EventLog(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

uint64_t EventLog::append(std::string_view kind, Json fields) {
  const uint64_t wall = wall_now_ns();
  std::lock_guard lock(mu_);
  const uint64_t seq = next_seq_++;
  Json j = Json::object();
  j["seq"] = seq;
  j["time"] = format_wall(wall);
  j["event"] = kind;
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) {
      if (k != "seq" && k != "time" && k != "event") j[k] = std::move(v);
    }
  }
  ring_.push_back(Entry{seq, wall, std::string(kind), std::move(j)});
  while (ring_.size() > capacity_) {
    ring_.pop_front();
    ++lost_;
  }
  return seq;
}

Json EventLog::query(const Query& q) const {
  std::lock_guard lock(mu_);
  std::vector<const Entry*> match;
  for (const Entry& e : ring_) {
    if (e.seq <= q.after_seq || e.wall_ns < q.since_wall_ns) continue;
    if (!q.kinds.empty() &&
        std::find(q.kinds.begin(), q.kinds.end(), e.kind) == q.kinds.end()) {
      continue;
    }
    match.push_back(&e);
  }
  // Paging after a seq: the oldest first, so that a follower misses nothing; otherwise the
  // most recent `limit`.
  size_t from = 0, to = match.size();
  if (match.size() > q.limit) {
    if (q.after_seq != 0) to = q.limit;
    else from = match.size() - q.limit;
  }
  Json events = Json::array();
  for (size_t i = from; i < to; ++i) events.push_back(match[i]->json);
  // A follower continues after the last entry it was given (or the log's last one).
  const uint64_t last = to < match.size() ? match[to - 1]->seq : next_seq_ - 1;
  return {{"events", std::move(events)}, {"last_seq", last}, {"lost", lost_}};
}

std::vector<Json> EventLog::last_of(std::string_view kind, size_t n) const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < n; ++it) {
    if (it->kind == kind) out.push_back(it->json);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

uint64_t EventLog::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

}  // namespace lockstep::ctrl
