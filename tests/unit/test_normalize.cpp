// Payload normalization (issue 6): rule parsing, compile errors, TCP spans in streaming
// mode (split at different places, length-changing with ack translation after it),
// datagrams in block mode, live rule changes, bounds, and no rules = byte-exact.
//
// Every test drives a real Engine through the harness (real Hyperscan; nothing mocked).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "compare/normalize.h"
#include "compare/normalize_rules.h"
#include "tests/support/engine_harness.h"

namespace lockstep::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Conversation::Params port(uint16_t client_port) {
  Conversation::Params p;
  p.client_port = client_port;
  return p;
}

std::string response(const std::string& date, const std::string& body,
                     const std::string& extra = "") {
  return "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: " + date +
         "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + extra + "Connection: keep-alive\r\n\r\n" + body;
}

const std::string kDate0 = "Tue, 14 Nov 2023 22:13:20 GMT";
const std::string kDate1 = "Tue, 14 Nov 2023 22:13:21 GMT";

std::string body(size_t n, char seed = 'a') {
  std::string b;
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(seed + (i * 7) % 26));
  return b;
}

void finish(EngineHarness& h) {
  EXPECT_EQ(h.conservation(), "");
  EXPECT_EQ(h.check_contract(false), "");
  h.flush_all();
  EXPECT_EQ(h.conservation(), "") << "after flush_all";
  EXPECT_EQ(h.check_contract(true), "") << "after flush_all";
}

uint64_t flat(const Counters& c, const std::string& name) {
  for (const auto& [k, v] : c.flatten()) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// Sends `text` from one VM starting at stream offset `off`, cut at the given lengths
// (the rest in one segment). Returns the handles.
std::vector<uint64_t> send(EngineHarness& h, Conversation& c, Vm vm, uint64_t off,
                           const std::string& text, std::vector<size_t> cuts = {}) {
  std::vector<uint64_t> out;
  size_t pos = 0;
  for (size_t k = 0; pos < text.size(); ++k) {
    size_t n = k < cuts.size() ? cuts[k] : text.size() - pos;
    n = std::min(n, text.size() - pos);
    Bytes chunk = bytes_of(text.substr(pos, n));
    out.push_back(h.push(vm == Vm::pvm ? Side::pvm : Side::svm, c.vm_data(vm, off + pos, chunk)));
    pos += n;
  }
  return out;
}

void expect_all_matched(const EngineHarness& h, const std::vector<uint64_t>& pvm) {
  for (uint64_t x : pvm) EXPECT_EQ(describe(h, x), released_as(ReleaseReason::matched));
}

// ---------------------------------------------------------------------------------------
// rules as text

TEST(NormalizeRules, ParsesRulesSetsAndComments) {
  std::vector<NormRule> r;
  std::string err;
  ASSERT_TRUE(parse_norm_rules("# comment; with a semicolon\n"
                               "stamp tcp:8080,9000-9010@10.0.0.0/8 ts=[0-9]+\\;\n"
                               " ; @smtp tcp:2525",
                               r, err))
      << err;
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].name, "stamp");
  EXPECT_EQ(r[0].pattern, "ts=[0-9]+\\;");
  EXPECT_EQ(r[0].proto, kProtoTcp);
  EXPECT_EQ(r[1].name, "smtp_greeting");
  EXPECT_EQ(r[1].selector, "tcp:2525");
  FlowKey k;
  k.proto = kProtoTcp;
  k.port_lo = 9005;
  k.port_hi = 40000;
  k.addr_lo = IpAddr::v4(0x0a010203);
  k.addr_hi = IpAddr::v4(0xc0000201);
  EXPECT_TRUE(r[0].applies(k));
  k.port_lo = 9011;
  EXPECT_FALSE(r[0].applies(k));
  k.port_lo = 2525;
  EXPECT_TRUE(r[1].applies(k));
  k.proto = kProtoUdp;
  EXPECT_FALSE(r[1].applies(k));
  ASSERT_TRUE(parse_norm_rules("", r, err));
  EXPECT_TRUE(r.empty());
  ASSERT_TRUE(parse_norm_rules("@http", r, err)) << err;
  EXPECT_EQ(r.size(), 5u);
  for (const auto& s : shipped_norm_sets()) {
    ASSERT_TRUE(parse_norm_rules("@" + std::string(s.name), r, err)) << s.name << ": " << err;
    EXPECT_FALSE(r.empty()) << s.name;
  }
}

TEST(NormalizeRules, ErrorsNameTheItem) {
  std::vector<NormRule> r;
  std::string err;
  struct Bad {
    std::string text, expect;
  } cases[] = {
      {"a tcp:80", "expected 'NAME SELECTOR PATTERN'"},
      {"bad-name tcp:80 x", "must be 1-31 of"},
      {"a icmp:80 x", "protocol must be tcp or udp"},
      {"a tcp:99999 x", "bad selector"},
      {"a tcp:80@10.0.0.300 x", "bad selector"},
      {"a tcp:80 x;a tcp:81 y", "used twice"},
      {"@nosuch", "unknown rule set 'nosuch'"},
      {"@http tcp:80 extra", "takes nothing more"},
  };
  for (const auto& b : cases) {
    EXPECT_FALSE(parse_norm_rules(b.text, r, err)) << b.text;
    EXPECT_NE(err.find(b.expect), std::string::npos) << b.text << " -> " << err;
  }
  std::string many;
  for (int i = 0; i < 65; ++i) many += "r" + std::to_string(i) + " tcp x" + std::to_string(i) + ";";
  EXPECT_FALSE(parse_norm_rules(many, r, err));
  EXPECT_NE(err.find("more than 64"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------------------
// compile errors, at creation and live

TEST(Normalize, PatternThatFailsToCompileIsRefusedNamingTheRule) {
  Settings s;
  std::string err;
  ASSERT_TRUE(Settings::defaults().with("normalize_rules", "good tcp:80 ok\\r;broken tcp:80 (ab",
                                        s, err));
  EXPECT_EQ(Engine::create(s, err), nullptr);
  EXPECT_NE(err.find("normalize rule 'broken'"), std::string::npos) << err;
  EXPECT_NE(err.find("Hyperscan"), std::string::npos) << err;

  // Live: refused with the message, the engine keeps its rules.
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  Settings next;
  ASSERT_TRUE(h.engine().settings().with("normalize_rules", "empty tcp:80 x*", next, err));
  EXPECT_FALSE(h.engine().apply_settings(next, err));
  EXPECT_NE(err.find("normalize rule 'empty'"), std::string::npos) << err;
  EXPECT_EQ(h.engine().settings().normalize_rules, "@http");
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 0u);
}

// ---------------------------------------------------------------------------------------
// TCP

TEST(Normalize, NoRulesIsByteExact) {
  EngineHarness h;
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  send(h, c, Vm::pvm, 0, response(kDate0, body(300)));
  send(h, c, Vm::svm, 0, response(kDate1, body(300)));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::payload_mismatch);
  EXPECT_EQ(h.counters().normalize_conns, 0u);
  for (const auto& [k, v] : h.counters().flatten()) {
    EXPECT_EQ(k.rfind("normalize.", 0), std::string::npos) << k;
  }
  finish(h);
}

TEST(Normalize, DateAcrossASecondComparesEqual) {
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  Conversation c({});
  open_passive(h, c);
  auto p = send(h, c, Vm::pvm, 0, response(kDate0, body(300)));
  send(h, c, Vm::svm, 0, response(kDate1, body(300)));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 1u);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.bytes"), 1 + 6 + kDate0.size() + 1);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.offsets"), 0u);
  EXPECT_EQ(h.counters().normalize_conns, 1u);
  EXPECT_GT(h.counters().normalize_state_bytes, 0u);
  finish(h);
}

TEST(Normalize, FieldSplitAtDifferentPlacesOnBothSides) {
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  Conversation c({});
  open_passive(h, c);
  const std::string a = response(kDate0, body(2000)), b = response(kDate1, body(2000));
  const size_t d = a.find("Date:");
  // PVM cut inside the header name, SVM inside the value (and both cut the body).
  auto p = send(h, c, Vm::pvm, 0, a, {d + 2, 9, 700, 3});
  send(h, c, Vm::svm, 0, b, {d + 20, 1, 1, 1000});
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 1u);
  // The SVM first, then the PVM, one byte at a time around the field.
  Conversation c2(port(40001));
  open_passive(h, c2);
  std::vector<size_t> ones(80, 1);
  std::vector<size_t> cuts{d - 40};
  cuts.insert(cuts.end(), ones.begin(), ones.end());
  send(h, c2, Vm::svm, 0, b, cuts);
  auto p2 = send(h, c2, Vm::pvm, 0, a, {d + 5});
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p2);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 2u);
  finish(h);
}

TEST(Normalize, LengthChangingFieldShiftsTheOffsetForCompareAndAcks) {
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  Conversation c({});
  open_passive(h, c);
  const std::string b1 = body(3000);
  const std::string a = response(kDate0, b1, "Age: 9\r\n");
  const std::string s = response(kDate0, b1, "Age: 10\r\n");  // one byte longer
  ASSERT_EQ(s.size(), a.size() + 1);
  auto p = send(h, c, Vm::pvm, 0, a, {1448, 1448});
  send(h, c, Vm::svm, 0, s, {1000, 1000, 1000});
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p);
  EXPECT_EQ(flat(h.counters(), "normalize.http_age.offsets"), 1u);
  // A second response: both at their own offsets, must match byte for byte.
  const std::string r2 = response(kDate0, body(500, 'k'));
  auto p2 = send(h, c, Vm::pvm, a.size(), r2);
  send(h, c, Vm::svm, s.size(), r2);
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p2);
  // Client acks: past the Age span the SVM is one byte further on; before it, not.
  const size_t age_end = a.find("Age: 9\r") + 7;
  uint64_t late = h.push(Side::ingress, c.client_ack(0, a.size() + r2.size()));
  uint64_t early = h.push(Side::ingress, c.client_ack(0, age_end - 10));
  const ActionRecord* fl = h.action_of(late);
  const ActionRecord* fe = h.action_of(early);
  ASSERT_NE(fl, nullptr);
  ASSERT_NE(fe, nullptr);
  EXPECT_EQ(decode(fl->bytes).ack, c.vm_seq(Vm::svm, s.size() + r2.size()));
  EXPECT_EQ(decode(fe->bytes).ack, c.vm_seq(Vm::svm, age_end - 10));
  EXPECT_TRUE(verify_l4_checksum(fl->bytes));
  // A real difference after the span still diverges.
  auto p3 = send(h, c, Vm::pvm, a.size() + r2.size(), body(600, 'x'));
  send(h, c, Vm::svm, s.size() + r2.size(), body(600, 'y'));
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::payload_mismatch);
  finish(h);
}

TEST(Normalize, RealDifferenceNearTheEndWaitsForTheDeadline) {
  // Fewer than normalize_max_span bytes follow the difference: a span could still
  // cover it, so the verdict waits; the deadline ends the wait.
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  auto p = send(h, c, Vm::pvm, 0, response(kDate0, "hello"));
  send(h, c, Vm::svm, 0, response(kDate1, "HELLO"));
  EXPECT_EQ(h.checkpoints().size(), 0u);
  EXPECT_EQ(h.counters().normalize_deferred, 1u);
  h.advance_by(200 * kMs);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::deadline);
  // With a FIN after it on both sides nothing more can come: declared at once.
  h.complete_checkpoint();
  c.rebase_svm();
  Conversation c2(port(40002));
  open_passive(h, c2);
  const std::string a = response(kDate0, "hello"), b = response(kDate1, "HELLO");
  send(h, c2, Vm::pvm, 0, a);
  h.push(Side::pvm, c2.vm_fin(Vm::pvm, a.size()));
  send(h, c2, Vm::svm, 0, b);
  h.push(Side::svm, c2.vm_fin(Vm::svm, b.size()));
  ASSERT_EQ(h.checkpoints().size(), 2u);
  EXPECT_EQ(h.checkpoints()[1].req.reason, CheckpointReason::payload_mismatch);
  (void)p;
  finish(h);
}

TEST(Normalize, SpansOfDifferentRulesOrPositionsDoNotPair) {
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  h.set_auto_checkpoint(false);
  Conversation c({});
  open_passive(h, c);
  // Same bytes except the PVM says Date where the SVM says Expires (both normalized
  // fields, but of different rules): a real difference.
  std::string a = response(kDate0, body(600));
  std::string b = a;
  b.replace(b.find("Date:"), 5, "Xate:");
  send(h, c, Vm::pvm, 0, a);
  send(h, c, Vm::svm, 0, b);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::payload_mismatch);
  finish(h);
}

TEST(Normalize, SelectorAndPoolBounds) {
  // Rules for port 8080 only: a port-80 connection carries no state and compares
  // byte for byte.
  {
    EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http tcp:8080"}}));
    h.set_auto_checkpoint(false);
    Conversation c({});
    open_passive(h, c);
    send(h, c, Vm::pvm, 0, response(kDate0, body(600)));
    send(h, c, Vm::svm, 0, response(kDate1, body(600)));
    EXPECT_EQ(h.counters().normalize_conns, 0u);
    EXPECT_EQ(h.counters().normalize_state_bytes, 0u);
    EXPECT_EQ(h.checkpoints().size(), 1u);
    finish(h);
  }
  // One slot: the second connection is compared byte for byte (counted); when the
  // first expires its slot is free again.
  {
    EngineHarness h(EngineHarness::settings_with(
        {{"normalize_rules", "@http"}, {"normalize_max_conns", "1"}, {"closed_linger_ms", "0"}}));
    h.set_auto_checkpoint(false);
    Conversation c1({}), c2(port(40001));
    open_passive(h, c1);
    open_passive(h, c2);
    const std::string a = response(kDate0, body(600)), b = response(kDate1, body(600));
    send(h, c1, Vm::pvm, 0, a);
    send(h, c1, Vm::svm, 0, b);
    send(h, c2, Vm::pvm, 0, a);
    send(h, c2, Vm::svm, 0, b);
    EXPECT_EQ(h.counters().normalize_conns, 1u);
    EXPECT_EQ(h.counters().normalize_no_slot, 1u);
    EXPECT_EQ(h.checkpoints().size(), 1u);
    const uint64_t per_conn = h.counters().normalize_state_bytes;
    EXPECT_GT(per_conn, sizeof(NormConn));
    h.complete_checkpoint();
    c1.rebase_svm();
    h.push(Side::ingress, c1.client_fin(0, a.size()));
    h.push(Side::pvm, c1.vm_fin(Vm::pvm, a.size()));
    h.push(Side::svm, c1.vm_fin(Vm::svm, b.size()));
    h.advance_by(1000 * kMs);
    EXPECT_EQ(h.counters().normalize_conns, 0u);
    EXPECT_EQ(h.counters().normalize_state_bytes, 0u);
    finish(h);
  }
}

TEST(Normalize, LiveRuleChangeUnderTraffic) {
  EngineHarness h;
  Conversation c({});
  open_passive(h, c);
  uint64_t off = 0;
  auto round = [&](const std::string& date) {
    const std::string a = response(kDate0, body(400)), b = response(date, body(400));
    auto p = send(h, c, Vm::pvm, off, a, {100});
    send(h, c, Vm::svm, off, b, {250});
    off += a.size();
    h.run_until_idle();
    return p;
  };
  round(kDate1);
  ASSERT_EQ(h.checkpoints().size(), 1u) << "no rules: the Date costs a checkpoint";
  c.rebase_svm();
  // Rules on, live, between two segments of a response already half compared.
  const std::string a = response(kDate0, body(400)), b = response(kDate1, body(400));
  auto p = send(h, c, Vm::pvm, off, a.substr(0, 10));
  send(h, c, Vm::svm, off, b.substr(0, 10));
  Settings next;
  std::string err;
  ASSERT_TRUE(h.engine().settings().with("normalize_rules", "@http", next, err));
  ASSERT_TRUE(h.engine().apply_settings(next, err)) << err;
  auto p2 = send(h, c, Vm::pvm, off + 10, a.substr(10));
  send(h, c, Vm::svm, off + 10, b.substr(10));
  off += a.size();
  EXPECT_EQ(h.checkpoints().size(), 1u);
  expect_all_matched(h, p);
  expect_all_matched(h, p2);
  for (int i = 0; i < 3; ++i) expect_all_matched(h, round(kDate1));
  EXPECT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 4u);
  EXPECT_EQ(h.counters().normalize_compiles, 1u);
  // Another live change keeps the counters of rules that stay (by name).
  ASSERT_TRUE(h.engine().settings().with("normalize_rules", "@http;stamp tcp:80 ts=[0-9]+\\r",
                                         next, err));
  ASSERT_TRUE(h.engine().apply_settings(next, err)) << err;
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 4u);
  EXPECT_EQ(flat(h.counters(), "normalize.stamp.spans"), 0u);
  round(kDate1);
  EXPECT_EQ(h.checkpoints().size(), 1u);
  // Rules off again: byte for byte.
  ASSERT_TRUE(h.engine().settings().with("normalize_rules", "", next, err));
  ASSERT_TRUE(h.engine().apply_settings(next, err)) << err;
  round(kDate1);
  EXPECT_EQ(h.checkpoints().size(), 2u);
  finish(h);
}

TEST(Normalize, CheckpointRestartsTheStreams) {
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@http"}}));
  Conversation c({});
  open_passive(h, c);
  const std::string a = response(kDate0, body(400)), b = response(kDate1, body(400));
  send(h, c, Vm::pvm, 0, a);
  send(h, c, Vm::svm, 0, b);
  h.checkpoint_now();
  c.rebase_svm();
  // After the checkpoint both streams restart at the PVM's position; a Date in the
  // next response is normalized as before.
  auto p = send(h, c, Vm::pvm, a.size(), a, {30});
  send(h, c, Vm::svm, a.size(), b, {70});
  EXPECT_EQ(h.checkpoints().size(), 1u);
  expect_all_matched(h, p);
  EXPECT_EQ(flat(h.counters(), "normalize.http_date.spans"), 2u);
  finish(h);
}

TEST(Normalize, AnchoredGreetingOnlyAtTheStreamStart) {
  // smtp_greeting is '^220[ -][^\r\n]*\r': the server's first line, not a later one.
  Conversation::Params cp;
  cp.server_port = 25;
  EngineHarness h(EngineHarness::settings_with({{"normalize_rules", "@smtp"}}));
  h.set_auto_checkpoint(false);
  Conversation c(cp);
  open_passive(h, c);
  const std::string g1 = "220 mx.example.org ESMTP Exim 4.96 Tue, 14 Nov 2023 22:13:20 +0000\r\n";
  const std::string g2 = "220 mx.example.org ESMTP Exim 4.96 Tue, 14 Nov 2023 22:13:21 +0000\r\n";
  auto p = send(h, c, Vm::pvm, 0, g1);
  send(h, c, Vm::svm, 0, g2, {20, 30});
  EXPECT_EQ(h.checkpoints().size(), 0u);
  expect_all_matched(h, p);
  EXPECT_EQ(flat(h.counters(), "normalize.smtp_greeting.spans"), 1u);
  // The same line later in the stream is not a greeting: byte for byte.
  const std::string pad = body(400);
  send(h, c, Vm::pvm, g1.size(), pad + g1 + pad);
  send(h, c, Vm::svm, g1.size(), pad + g2 + pad);
  ASSERT_EQ(h.checkpoints().size(), 1u);
  EXPECT_EQ(h.checkpoints()[0].req.reason, CheckpointReason::payload_mismatch);
  finish(h);
}

// ---------------------------------------------------------------------------------------
// datagrams (block mode)

Bytes dgram(const std::string& payload) {
  return build_frame(udp_spec(ip4(198, 51, 100, 20), ip4(192, 0, 2, 10), 5353, 40000,
                              bytes_of(payload)));
}

TEST(Normalize, DatagramsPairSpansInOrder) {
  EngineHarness h(EngineHarness::settings_with(
      {{"normalize_rules", "ts udp:5353 ts=[0-9]+[ ];;id udp:5353 id=[a-f0-9]+/"}}));
  h.set_auto_checkpoint(false);
  uint64_t p1 = h.push(Side::pvm, dgram("hello ts=1700000000 id=abc/ end"));
  h.push(Side::svm, dgram("hello ts=1700000001 id=0123456/ end"));  // lengths differ
  EXPECT_EQ(describe(h, p1), released_as(ReleaseReason::matched));
  EXPECT_EQ(flat(h.counters(), "normalize.ts.spans"), 1u);
  EXPECT_EQ(flat(h.counters(), "normalize.id.offsets"), 1u);
  uint64_t p2 = h.push(Side::pvm, dgram("x ts=1 y"));
  h.push(Side::svm, dgram("x ts=2 z"));  // differs outside the span
  uint64_t p3 = h.push(Side::pvm, dgram("ts=1 id=a/"));
  h.push(Side::svm, dgram("id=a/ ts=1 "));  // spans in another order
  EXPECT_EQ(describe(h, p2), "none");
  EXPECT_EQ(describe(h, p3), "none");
  EXPECT_EQ(h.checkpoints().size(), 0u) << "within the slack so far";
  h.advance_by(200 * kMs);
  EXPECT_EQ(h.checkpoints().size(), 1u);
  finish(h);
}

TEST(Normalize, MemoryIsCountedAndBounded) {
  Settings s = EngineHarness::settings_with({{"normalize_rules", "@http"}});
  std::string err;
  auto plain = Engine::create(Settings::defaults(), err);
  auto with = Engine::create(s, err);
  ASSERT_TRUE(plain && with) << err;
  // The slot pool is sized at creation (normalize_max_conns); streams are counted
  // as they are opened.
  EXPECT_GE(with->memory_bytes(),
            plain->memory_bytes() + s.normalize_max_conns * sizeof(NormConn));
}

}  // namespace
}  // namespace lockstep::test
