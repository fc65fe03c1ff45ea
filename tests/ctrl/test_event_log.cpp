// The operator's event log (ctrl/event_log.h) and `events` / `explain` through the
// command registry: numbering, the bounded ring, time filters, the text of a checkpoint
// request's bytes, grouping, and the rule an explanation suggests.
#include <gtest/gtest.h>

#include "ctrl/commands.h"
#include "ctrl/event_log.h"
#include "ctrl/metrics.h"

namespace lockstep::ctrl {
namespace {

CheckpointRequest http_date_request(uint64_t epoch, uint16_t server_port) {
  CheckpointRequest r;
  r.epoch = epoch;
  r.reason = CheckpointReason::payload_mismatch;
  r.has_flow = true;
  r.flow.proto = 6;
  r.flow.port_lo = server_port;
  r.flow.port_hi = 41000;
  r.t_ns = 5'000'000'000;
  r.frame_ns = 4'999'000'000;
  DivergenceDetail& d = r.detail;
  d.has_offset = true;
  d.stream_offset = 46;
  const std::string pvm = "10:00:01 GMT\r\n", svm = "10:00:02 GMT\r\n";
  const std::string line = "Date: Sun, 06 Dec 2026 10:00:0";
  std::copy(pvm.begin(), pvm.end(), d.pvm.begin());
  std::copy(svm.begin(), svm.end(), d.svm.begin());
  std::copy(line.begin(), line.end(), d.line.begin());
  d.pvm_len = static_cast<uint8_t>(pvm.size());
  d.svm_len = static_cast<uint8_t>(svm.size());
  d.line_len = static_cast<uint8_t>(line.size());
  d.shown_before = 7;
  return r;
}

TEST(EventLog, NumbersEntriesAndForgetsTheOldestCountingThem) {
  EventLog log(3);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(log.append("mode", {{"i", i}}), uint64_t(i + 1));
  Json j = log.query({});
  ASSERT_EQ(j["events"].size(), 3u);
  EXPECT_EQ(j["events"][0]["seq"], 3);
  EXPECT_EQ(j["events"][0]["i"], 2);
  EXPECT_EQ(j["events"][0]["event"], "mode");
  EXPECT_EQ(j["last_seq"], 5);
  EXPECT_EQ(j["lost"], 2);
  EventLog::Query after;
  after.after_seq = 4;
  EXPECT_EQ(log.query(after)["events"].size(), 1u) << "a follower asks for what came after";
  EventLog::Query two;
  two.limit = 2;
  Json recent = log.query(two);
  ASSERT_EQ(recent["events"].size(), 2u);
  EXPECT_EQ(recent["events"][1]["seq"], 5) << "without --after: the most recent";
  two.after_seq = 2;
  Json page = log.query(two);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["seq"], 3) << "after a seq: the oldest first";
  EXPECT_EQ(page["last_seq"], 4) << "a follower continues after the last one given";
  EventLog::Query kinds;
  kinds.kinds = {"failover"};
  EXPECT_EQ(log.query(kinds)["events"].size(), 0u);
}

TEST(EventLog, EntriesCarryWallClockTime) {
  EventLog log;
  log.append("start", {});
  const std::string t = log.query({})["events"][0]["time"];
  ASSERT_EQ(t.size(), 24u) << t;  // 2026-12-06T10:00:01.234Z
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t.back(), 'Z');
  uint64_t parsed = 0;
  ASSERT_TRUE(parse_time(t, wall_now_ns(), parsed));
  EXPECT_LE(parsed, wall_now_ns());
  EXPECT_GT(parsed + 60'000'000'000ull, wall_now_ns());
  EventLog::Query future;
  future.since_wall_ns = wall_now_ns() + 3'600'000'000'000ull;
  EXPECT_TRUE(log.query(future)["events"].empty());
}

TEST(EventLog, ParsesTheTimesOperatorsWrite) {
  const uint64_t now = 1'796'548'801ull * 1'000'000'000;  // 2026-12-06T09:20:01Z
  uint64_t t = 0;
  ASSERT_TRUE(parse_time("2026-12-06T09:20:01Z", now, t));
  EXPECT_EQ(t, now);
  ASSERT_TRUE(parse_time("2026-12-06T09:20:01.5", now, t));
  EXPECT_EQ(t, now + 500'000'000);
  ASSERT_TRUE(parse_time("1796548801", now, t));
  EXPECT_EQ(t, now);
  ASSERT_TRUE(parse_time("90s", now, t));
  EXPECT_EQ(t, now - 90'000'000'000ull);
  ASSERT_TRUE(parse_time("2h", now, t));
  EXPECT_EQ(t, now - 7200'000'000'000ull);
  EXPECT_EQ(format_wall(now), "2026-12-06T09:20:01.000Z");
  for (const char* bad : {"", "yesterday", "5x", "2026-13-01T00:00:00Z", "2026-12-06T13:20",
                          "-5m", "99999999999999999999", "2026-12-06T13:20:01.Z"}) {
    EXPECT_FALSE(parse_time(bad, now, t)) << bad;
  }
}

TEST(EventLog, CheckpointRequestAsJsonShowsBytesAsTextAndHex) {
  const CheckpointRequest r = http_date_request(7, 80);
  // The request's clock reads 6 s when the wall clock reads `wall`.
  const uint64_t wall = 1'796'548'801ull * 1'000'000'000;
  Json j = checkpoint_request_json(r, 6'000'000'000, wall);
  EXPECT_EQ(j["epoch"], 7);
  EXPECT_EQ(j["reason"], "payload_mismatch");
  EXPECT_EQ(j["stream_offset"], 46);
  EXPECT_EQ(j["pvm_text"], "10:00:01 GMT\\r\\n");
  EXPECT_EQ(j["svm_text"], "10:00:02 GMT\\r\\n");
  EXPECT_EQ(j["pvm_hex"], "31303a30303a303120474d540d0a");
  EXPECT_EQ(j["line"], "Date: Sun, 06 Dec 2026 10:00:0");
  EXPECT_EQ(j["request_time"], "2026-12-06T09:20:00.000Z");
  EXPECT_EQ(j["frame_time"], "2026-12-06T09:19:59.999Z");
  EXPECT_EQ(printable(reinterpret_cast<const uint8_t*>("a\x01\xff\\"), 4), "a\\x01\\xff\\\\");
}

TEST(EventLog, SuggestsTheRuleThatCoversTheDifferingField) {
  const uint64_t wall = wall_now_ns();
  Json on80 = checkpoint_request_json(http_date_request(1, 80), 6'000'000'000, wall);
  EXPECT_NE(suggest_rule(on80).find("http_date"), std::string::npos) << suggest_rule(on80);
  EXPECT_NE(suggest_rule(on80).find("normalize_rules=@http"), std::string::npos);
  Json on8443 = checkpoint_request_json(http_date_request(1, 8443), 6'000'000'000, wall);
  EXPECT_NE(suggest_rule(on8443).find("'@http tcp:8443'"), std::string::npos)
      << suggest_rule(on8443);
  Json deadline = on80;
  deadline["reason"] = "deadline";
  EXPECT_EQ(suggest_rule(deadline), "") << "no rule makes a late SVM on time";
  Json other = on80;
  other["line"] = "X-Served-By: web-1";
  EXPECT_NE(suggest_rule(other).find("X-Served-By:"), std::string::npos) << suggest_rule(other);
}

TEST(EventLog, ExplainGroupsByReasonAndFlowMostFrequentFirst) {
  EventLog log;
  const uint64_t wall = wall_now_ns();
  for (uint64_t e = 0; e < 3; ++e) {
    Json j = checkpoint_request_json(http_date_request(e, 80), 6'000'000'000, wall);
    j["coalesced"] = false;
    log.append("checkpoint_request", j);
    log.append("checkpoint_done", {{"epoch", e}, {"duration_ms", 10.0 * double(e + 1)}});
  }
  CheckpointRequest late;
  late.reason = CheckpointReason::deadline;
  Json lj = checkpoint_request_json(late, 1, wall);
  lj["coalesced"] = false;
  log.append("checkpoint_request", lj);
  lj["coalesced"] = true;  // another worker's request of the same epoch: not counted
  log.append("checkpoint_request", lj);

  Json j = explain_json(log, 20);
  EXPECT_EQ(j["requests"], 4);
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["reason"], "payload_mismatch");
  EXPECT_EQ(j["groups"][0]["count"], 3);
  EXPECT_EQ(j["groups"][1]["reason"], "deadline");
  EXPECT_EQ(j["done"]["count"], 3);
  EXPECT_DOUBLE_EQ(j["done"]["max_ms"].get<double>(), 30.0);
  const std::string text = j["text"];
  EXPECT_NE(text.find("3 x payload_mismatch"), std::string::npos) << text;
  EXPECT_NE(text.find("pvm    10:00:01 GMT"), std::string::npos) << text;
  EXPECT_NE(text.find("hint: the HTTP header 'Date:'"), std::string::npos) << text;
  // The caret sits under the first differing byte (7 bytes shown before it).
  const size_t pvm_line = text.find("pvm    ");
  const size_t caret_line = text.find("^", pvm_line);
  const size_t line_start = text.rfind('\n', caret_line) + 1;
  EXPECT_EQ(caret_line - line_start, std::string("  pvm    10:00:0").size()) << text;
  EXPECT_EQ(explain_json(log, 1)["requests"], 1) << "the last N only";
  // The read-only socket: why, without the guests' bytes.
  Json ro = explain_json(log, 20, false);
  EXPECT_EQ(ro["groups"][0]["count"], 3);
  EXPECT_FALSE(ro["groups"][0]["last"].contains("pvm_hex")) << ro;
  EXPECT_FALSE(ro["groups"][0]["last"].contains("line")) << ro;
  EXPECT_EQ(ro["text"].get<std::string>().find("10:00:01"), std::string::npos) << ro["text"];
  EXPECT_EQ(explain_json(EventLog(), 5)["text"], "no checkpoint requests in the event log\n");
}

TEST(Metrics, LatencyHistogramIsCumulativeInSeconds) {
  LatencyHist h{};
  h[0] = 2;    // < 1 us
  h[10] = 3;   // < 1024 us
  h[kLatencyBuckets - 1] = 1;
  std::vector<MetricSample> out;
  append_latency_histogram(out, "lockstep_x_seconds", "x", h, 5'000'000, {{"worker", "0"}});
  const std::string text = prometheus_text(out);
  EXPECT_NE(text.find("# TYPE lockstep_x_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lockstep_x_seconds_bucket{worker=\"0\",le=\"1e-06\"} 2\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("lockstep_x_seconds_bucket{worker=\"0\",le=\"0.001024\"} 5\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("lockstep_x_seconds_bucket{worker=\"0\",le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("lockstep_x_seconds_sum{worker=\"0\"} 0.005"),
            std::string::npos) << text;
  EXPECT_NE(text.find("lockstep_x_seconds_count{worker=\"0\"} 6\n"), std::string::npos);
  EXPECT_EQ(text.find("# TYPE lockstep_x_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace lockstep::ctrl
