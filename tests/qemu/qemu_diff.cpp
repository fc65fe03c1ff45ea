// Differential suite: QEMU's colo-compare and lockstep-colo on identical framed streams,
// for every pcap-fixture (T1-T16 of colo-anchors.md §6.1 are among them, t01..t16).
//
// Per case three instances run side by side, fed from one driver in the captures'
// relative timing:
//   qemu    QEMU 7.2's colo-compare (standalone, -machine none), SVM stream as
//           filter-rewriter delivers it (passive opens moved into the PVM's sequence space)
//   ls-rw   lockstep-colo filter_rewriter=on, the same rewritten SVM stream
//   ls-raw  lockstep-colo filter_rewriter=off, the SVM stream as captured (lockstep learns
//           the sequence offsets itself)
// Each DO_CHECKPOINT is answered with COLO_CHECKPOINT after 2 ms (coalesced).
//
// Checks (a failure names the case and what broke):
//   ls-raw  releases exactly the frames expect.json names, each once, in arrival order
//           per flow; no DO_CHECKPOINT where expect.json says none, at least one where
//           it says some; the engine's conservation law holds.
// Per-flow order is the PVM's arrival order of every frame of the flow, pure TCP ACKs
// included (docs/design.md §5.2): lockstep holds a pure ACK behind an earlier held frame of
// its flow and until the SVM's ACK reaches its own, so none may leave ahead of an
// earlier frame of its flow ("acks ahead" must be 0 for lockstep). QEMU releases pure
// ACKs on its own rules; for it the row only counts them.
//   ls-rw   releases every expected frame exactly once, per-flow order kept,
//           conservation holds; where QEMU is right (it released every expected frame
//           once, in per-flow order, and asked for a checkpoint exactly when lockstep's
//           expectation does), ls-rw released the same frames in the same per-flow order
//           and agrees on whether a checkpoint was needed.
// Where QEMU is not right the row says how (lost frames, reversed order, false or missed
// checkpoints, request storms) and what lockstep did instead.
//
// usage: qemu_diff --fixtures DIR --lockstep BIN [--out DIR] [CASE...]
// Exit 77 (skipped) when qemu-system-x86_64 is not installed.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "compare/flow_key.h"
#include "compare/parse.h"
#include "tests/qemu/colo_peer.h"
#include "tools/replay/pcap_io.h"

namespace fs = std::filesystem;
using lockstep::qtest::Instance;
using lockstep::qtest::now_ns;
using lockstep::qtest::Peer;
using Json = nlohmann::json;

namespace {

struct Ev {
  uint64_t t;
  bool svm;
  size_t idx;
};

std::string flow_of(const lockstep::ParsedFrame& p) {
  if (!p.is_ip()) return "l2/" + std::to_string(p.ethertype);
  if (p.is_fragment && !p.has_l4) return "frag/" + std::to_string(p.frag_id);
  return lockstep::to_string(lockstep::flow_key_of(p));
}

// filter-rewriter (QEMU net/filter-rewriter.c) as it treats the SVM's output: for a
// connection the client opened (the VMs answered with SYN/ACK) segments whose (SYN, ACK)
// bits are exactly ACK get th_seq -= SVM_ISN - PVM_ISN, checksum recomputed. Connections
// the VM opened are left alone.
void rewrite_like_filter_rewriter(const std::vector<std::vector<uint8_t>>& pvm,
                                  std::vector<std::vector<uint8_t>>& svm) {
  using namespace lockstep;
  std::map<std::string, uint32_t> pvm_isn, svm_isn;
  for (const auto& f : pvm) {
    ParsedFrame p;
    if (parse_frame(f.data(), uint32_t(f.size()), p) == ParseStatus::ok && p.is_tcp() &&
        (p.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
      pvm_isn[to_string(flow_key_of(p))] = p.seq;
    }
  }
  for (auto& f : svm) {
    ParsedFrame p;
    if (parse_frame(f.data(), uint32_t(f.size()), p) != ParseStatus::ok || !p.is_tcp()) continue;
    const std::string k = to_string(flow_key_of(p));
    if ((p.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
      svm_isn[k] = p.seq;
      continue;
    }
    if ((p.tcp_flags & (kTcpSyn | kTcpAck)) != kTcpAck) continue;
    auto a = pvm_isn.find(k);
    auto b = svm_isn.find(k);
    if (a == pvm_isn.end() || b == svm_isn.end() || a->second == b->second) continue;
    const uint32_t seq = p.seq - (b->second - a->second);
    store_be32(f.data() + p.l4_off + 4, seq);
    // Full TCP checksum over the pseudo-header (IPv4 or IPv6).
    const uint32_t l4len = p.l3_end - p.l4_off;
    uint8_t* cs = f.data() + p.l4_off + 16;
    cs[0] = cs[1] = 0;
    uint64_t sum = 0;
    auto add = [&](const uint8_t* d, size_t n) {
      for (size_t i = 0; i + 1 < n; i += 2) sum += load_be16(d + i);
      if (n & 1) sum += uint32_t{d[n - 1]} << 8;
    };
    if (p.src.is_v4()) {
      add(p.src.b.data() + 12, 4);
      add(p.dst.b.data() + 12, 4);
    } else {
      add(p.src.b.data(), 16);
      add(p.dst.b.data(), 16);
    }
    sum += kProtoTcp;
    sum += l4len;
    add(f.data() + p.l4_off, l4len);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    store_be16(cs, static_cast<uint16_t>(~sum));
  }
}

// What the order checks need to know of each PVM frame.
struct FrameInfo {
  std::string flow;
  bool pure_ack = false;  // TCP, no payload, no SYN/FIN/RST
};

FrameInfo frame_info(const std::vector<uint8_t>& f) {
  using namespace lockstep;
  ParsedFrame p;
  const bool tcp = parse_frame(f.data(), uint32_t(f.size()), p) == ParseStatus::ok && p.is_tcp();
  return {flow_of(p), tcp && p.payload_len == 0 && (p.tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) == 0};
}

struct Outcome {
  std::vector<size_t> released;  // PVM indices in release order
  size_t unknown = 0;            // frames that are no PVM frame (or a second copy)
  size_t dup = 0;
  uint64_t ckpt = 0, answered = 0;
  bool order_ok = true;
  size_t flows_reordered = 0;
  size_t acks_ahead = 0;         // pure ACKs released before an earlier frame of their flow
  std::string conservation = "-";
  bool hello_ok = false;
};

Outcome analyse(const std::vector<std::vector<uint8_t>>& pvm, const std::vector<FrameInfo>& info,
                Peer& peer) {
  Outcome o;
  std::unordered_map<std::string, std::vector<size_t>> by_bytes;
  for (size_t i = pvm.size(); i > 0; --i) {
    by_bytes[std::string(pvm[i - 1].begin(), pvm[i - 1].end())].push_back(i - 1);
  }
  std::vector<int> seen(pvm.size(), 0);
  for (const auto& f : peer.frames) {
    auto it = by_bytes.find(std::string(f.begin(), f.end()));
    if (it == by_bytes.end()) {
      ++o.unknown;
      continue;
    }
    if (it->second.empty()) {
      ++o.dup;
      continue;
    }
    const size_t i = it->second.back();
    it->second.pop_back();
    ++seen[i];
    o.released.push_back(i);
  }
  // Sequenced frames (everything but pure ACKs) in arrival order per flow.
  std::map<std::string, size_t> last;
  std::set<std::string> bad;
  for (size_t i : o.released) {
    if (info[i].pure_ack) continue;
    auto it = last.find(info[i].flow);
    if (it != last.end() && it->second > i) bad.insert(info[i].flow);
    last[info[i].flow] = i;
  }
  // Pure ACKs released ahead of an earlier frame of their flow.
  std::vector<bool> out(pvm.size(), false);
  for (size_t i : o.released) {
    if (info[i].pure_ack) {
      bool ahead = false;
      for (size_t j = 0; j < i && !ahead; ++j) ahead = !out[j] && info[j].flow == info[i].flow;
      o.acks_ahead += ahead;
    }
    out[i] = true;
  }
  o.flows_reordered = bad.size();
  o.order_ok = bad.empty();
  o.ckpt = peer.do_checkpoints();
  o.answered = peer.answered();
  return o;
}

// Per flow: the sequenced frames in release order, then the pure ACKs as a set.
std::map<std::string, std::vector<size_t>> per_flow(const Outcome& o, const std::vector<FrameInfo>& info) {
  std::map<std::string, std::vector<size_t>> seq, acks;
  for (size_t i : o.released) (info[i].pure_ack ? acks : seq)[info[i].flow].push_back(i);
  for (auto& [k, v] : acks) {
    std::sort(v.begin(), v.end());
    auto& s = seq[k];
    s.push_back(SIZE_MAX);  // separator
    s.insert(s.end(), v.begin(), v.end());
  }
  return seq;
}

std::string last_json_line(const std::string& log) {
  size_t end = log.size();
  while (end > 0) {
    size_t start = log.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    if (log.compare(start, 1, "{") == 0) return log.substr(start, end - start);
    if (start == 0) break;
    end = start - 1;
  }
  return {};
}

std::string cell(const Outcome& o, size_t expected_n) {
  char b[96];
  std::snprintf(b, sizeof b, "%5zu/%-5zu %-4s %5llu", o.released.size(), expected_n,
                o.order_ok ? "ok" : "REV", static_cast<unsigned long long>(o.ckpt));
  return b;
}

struct CaseResult {
  std::string name, row;
  std::vector<std::string> failures;
  bool skipped = false;
};

CaseResult run_case(const fs::path& dir, const std::string& qemu, const std::string& lockstep,
                    const fs::path& work) {
  CaseResult r;
  r.name = dir.filename().string();
  Json expect = Json::object();
  {
    std::ifstream f(dir / "expect.json");
    if (f) expect = Json::parse(f, nullptr, false);
    if (expect.is_discarded()) expect = Json::object();
  }
  if (expect.value("exit", 0) != 0) {
    r.skipped = true;
    r.row = "not a capture case (lockstep-replay rejects its input)";
    return r;
  }
  lockstep::replay::Capture pc, sc;
  std::string err;
  if (!lockstep::replay::read_capture((dir / "primary.pcap").string(), pc, err)) {
    r.skipped = true;
    r.row = "no readable primary.pcap";
    return r;
  }
  if (fs::exists(dir / "secondary.pcap") &&
      !lockstep::replay::read_capture((dir / "secondary.pcap").string(), sc, err)) {
    r.skipped = true;
    r.row = "unreadable secondary.pcap";
    return r;
  }
  std::vector<std::vector<uint8_t>> pvm, svm_raw;
  std::vector<Ev> evs;
  for (size_t i = 0; i < pc.frames.size(); ++i) {
    pvm.emplace_back(pc.data(i), pc.data(i) + pc.frames[i].caplen);
    evs.push_back({pc.frames[i].ts_ns, false, i});
  }
  for (size_t i = 0; i < sc.frames.size(); ++i) {
    svm_raw.emplace_back(sc.data(i), sc.data(i) + sc.frames[i].caplen);
    evs.push_back({sc.frames[i].ts_ns, true, i});
  }
  std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return a.t < b.t; });
  auto svm_rw = svm_raw;
  rewrite_like_filter_rewriter(pvm, svm_rw);
  std::vector<FrameInfo> flow;
  for (const auto& f : pvm) flow.push_back(frame_info(f));

  // Expectations (lockstep's intended behaviour, from the fixture).
  std::vector<bool> want(pvm.size(), true);
  if (expect.contains("released") && expect["released"].is_array()) {
    std::fill(want.begin(), want.end(), false);
    for (const auto& v : expect["released"]) {
      if (v.is_number_unsigned() && v.get<size_t>() < want.size()) want[v.get<size_t>()] = true;
    }
  }
  const size_t want_n = static_cast<size_t>(std::count(want.begin(), want.end(), true));
  bool exp_zero = false, exp_some = false;
  if (expect.contains("checkpoints")) {
    const Json& c = expect["checkpoints"];
    if (c.is_number()) (c.get<int>() == 0 ? exp_zero : exp_some) = true;
    if (c.is_object() && c.value("min", 0) >= 1) exp_some = true;
  }
  if (expect.contains("checkpoint_reasons") && expect["checkpoint_reasons"].empty()) exp_zero = true;

  std::vector<std::string> sets;
  uint64_t timeout_us = 100000;
  if (expect.contains("settings")) {
    for (auto& [k, v] : expect["settings"].items()) {
      sets.push_back("--set");
      sets.push_back(k + "=" + v.get<std::string>());
      if (k == "compare_timeout_us") timeout_us = std::stoull(v.get<std::string>());
    }
  }
  lockstep::qtest::QemuOptions qo;
  qo.compare_timeout_ms = static_cast<uint32_t>(std::max<uint64_t>(1, timeout_us / 1000));
  qo.expired_scan_cycle_ms = 100;

  const fs::path cdir = work / r.name;
  fs::create_directories(cdir);
  Instance iq{"qemu", cdir.string()}, irw{"ls-rw", cdir.string()}, iraw{"ls-raw", cdir.string()};
  auto props_rw = sets, props_raw = sets;
  props_rw.push_back("filter_rewriter=on");
  props_raw.push_back("filter_rewriter=off");
  if (!lockstep::qtest::start_qemu(iq, qemu, qo, err) ||
      !lockstep::qtest::start_lockstep(irw, lockstep, props_rw, err) ||
      !lockstep::qtest::start_lockstep(iraw, lockstep, props_raw, err)) {
    r.failures.push_back("start: " + err);
    return r;
  }
  Peer pq, prw, praw;
  Outcome oq, orw, oraw;
  bool ok = pq.connect(iq, false, err) && prw.connect(irw, false, err) && praw.connect(iraw, false, err);
  if (ok) {
    oq.hello_ok = pq.hello(err);
    orw.hello_ok = prw.hello(err);
    oraw.hello_ok = praw.hello(err);
    const uint64_t delay = 2'000'000;
    pq.start(delay, true);
    prw.start(delay, true);
    praw.start(delay, true);
    // One sender per instance, each in the captures' timing, so that a slow instance's
    // full socket does not delay what the others are fed.
    const uint64_t t0 = now_ns() + 30'000'000;
    const uint64_t base = evs.empty() ? 0 : evs.front().t;
    auto play = [&](Peer& p, const std::vector<std::vector<uint8_t>>& svm) {
      for (const Ev& e : evs) {
        lockstep::qtest::sleep_until_ns(t0 + (e.t - base));
        const auto& f = e.svm ? svm[e.idx] : pvm[e.idx];
        if (e.svm) p.send_svm(f.data(), uint32_t(f.size()));
        else p.send_pvm(f.data(), uint32_t(f.size()));
      }
    };
    std::thread sq([&] { play(pq, svm_rw); });
    std::thread srw([&] { play(prw, svm_rw); });
    play(praw, svm_raw);
    sq.join();
    srw.join();
    // Wait until every instance released what it should or went quiet (no output, no
    // notification) for a compare timeout plus QEMU's scan cycle and some slack.
    const uint64_t idle = timeout_us * 1000 + 100'000'000 + 150'000'000;
    const uint64_t cap = now_ns() + std::max<uint64_t>(5'000'000'000ull, 3 * idle);
    uint64_t all_done_since = 0;
    for (;;) {
      const uint64_t now = now_ns();
      auto settled = [&](Peer& p, size_t n) {
        return !p.answer_pending() && (p.released() >= n || now - p.last_activity_ns() > idle);
      };
      const bool done = settled(pq, pvm.size()) && settled(prw, want_n) && settled(praw, want_n);
      if (done && all_done_since == 0) all_done_since = now;
      if (!done) all_done_since = 0;
      if ((all_done_since != 0 && now - all_done_since > 60'000'000) || now > cap) break;
      usleep(5000);
    }
    pq.stop_reader();
    prw.stop_reader();
    praw.stop_reader();
  } else {
    r.failures.push_back(err);
  }
  lockstep::qtest::stop(iq);
  const std::string lrw = lockstep::qtest::stop(irw);
  const std::string lraw = lockstep::qtest::stop(iraw);
  if (!ok) return r;

  oq = [&] { auto h = oq.hello_ok; auto o = analyse(pvm, flow, pq); o.hello_ok = h; return o; }();
  orw = [&] { auto h = orw.hello_ok; auto o = analyse(pvm, flow, prw); o.hello_ok = h; return o; }();
  oraw = [&] { auto h = oraw.hello_ok; auto o = analyse(pvm, flow, praw); o.hello_ok = h; return o; }();
  for (const auto& [o, log] : {std::pair<Outcome*, const std::string*>{&orw, &lrw}, {&oraw, &lraw}}) {
    Json j = Json::parse(last_json_line(*log), nullptr, false);
    o->conservation = j.is_object() ? j.value("conservation", std::string("?")) : "no stats";
  }

  auto fail = [&](const std::string& who, const std::string& what) {
    r.failures.push_back(r.name + ": " + who + ": " + what);
  };
  auto check_set = [&](const Outcome& o, const std::string& who) {
    std::vector<int> n(pvm.size(), 0);
    for (size_t i : o.released) ++n[i];
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < pvm.size(); ++i) {
      if (want[i] && n[i] != 1) ++missing;
      if (!want[i] && n[i] != 0) ++extra;
    }
    if (missing) fail(who, std::to_string(missing) + " expected frames not released exactly once");
    if (extra) fail(who, std::to_string(extra) + " frames released that the fixture drops");
    if (o.unknown || o.dup) fail(who, std::to_string(o.unknown + o.dup) + " unknown or duplicate frames on outdev");
    if (!o.order_ok) fail(who, std::to_string(o.flows_reordered) + " flows released out of arrival order");
    if (o.acks_ahead) fail(who, std::to_string(o.acks_ahead) + " pure ACKs released ahead of an earlier frame of their flow");
    if (o.conservation != "ok") fail(who, "conservation: " + o.conservation);
    if (!o.hello_ok) fail(who, "no COLO_COMPARE_GET_XEN_INIT reply to the hello");
  };
  check_set(oraw, "lockstep(raw)");
  if (exp_zero && oraw.ckpt != 0) fail("lockstep(raw)", std::to_string(oraw.ckpt) + " DO_CHECKPOINT where none is expected");
  if (exp_some && oraw.ckpt == 0) fail("lockstep(raw)", "no DO_CHECKPOINT where the fixture expects one");
  check_set(orw, "lockstep(filter-rewriter)");

  // QEMU's verdict.
  std::vector<int> qn(pvm.size(), 0);
  for (size_t i : oq.released) ++qn[i];
  size_t q_lost = 0, q_extra = 0;
  for (size_t i = 0; i < pvm.size(); ++i) {
    if (want[i] && qn[i] == 0) ++q_lost;
    if (!want[i] && qn[i] != 0) ++q_extra;
  }
  const bool q_ck_right = exp_zero ? oq.ckpt == 0 : exp_some ? oq.ckpt > 0 : true;
  const bool q_right = q_lost == 0 && q_extra == 0 && oq.order_ok && oq.unknown + oq.dup == 0 && q_ck_right;
  std::string verdict;
  const bool storm = oq.ckpt > 3 && oq.ckpt > 3 * std::max<uint64_t>(1, oraw.ckpt);
  if (q_right) {
    verdict = storm ? "agree; qemu request storm" : "agree";
    if (per_flow(oq, flow) != per_flow(orw, flow)) {
      fail("lockstep(filter-rewriter)", "released frames or per-flow order differ from QEMU's where QEMU is right");
      verdict = "DIFFER";
    }
    if ((oq.ckpt == 0) != (orw.ckpt == 0)) {
      fail("lockstep(filter-rewriter)", "checkpoint decision differs from QEMU's where QEMU is right");
      verdict = "DIFFER";
    }
  } else {
    std::vector<std::string> w;
    if (q_lost) w.push_back("qemu lost " + std::to_string(q_lost));
    if (q_extra) w.push_back("qemu released " + std::to_string(q_extra) + " lockstep's policy drops");
    if (!oq.order_ok) w.push_back("qemu reordered " + std::to_string(oq.flows_reordered) + " flow(s)");
    if (exp_zero && oq.ckpt) w.push_back("qemu false checkpoint");
    if (exp_some && !oq.ckpt) w.push_back("qemu missed divergence");
    if (storm) w.push_back("qemu request storm");
    for (size_t i = 0; i < w.size(); ++i) verdict += (i ? "; " : "") + w[i];
    if (verdict.empty()) verdict = "qemu differs";
  }
  if (orw.acks_ahead + oraw.acks_ahead > 0) {
    verdict += "; acks ahead rw " + std::to_string(orw.acks_ahead) + " raw " + std::to_string(oraw.acks_ahead);
  }
  char b[512];
  std::snprintf(b, sizeof b, "%6zu %6zu | %s | %s | %s | %s", pvm.size(), svm_raw.size(),
                cell(oq, pvm.size()).c_str(), cell(orw, want_n).c_str(), cell(oraw, want_n).c_str(),
                verdict.c_str());
  r.row = b;
  if (r.failures.empty()) fs::remove_all(cdir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string fixtures, lockstep, out = "/tmp";
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fixtures" && i + 1 < argc) fixtures = argv[++i];
    else if (a == "--lockstep" && i + 1 < argc) lockstep = argv[++i];
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else only.push_back(a);
  }
  if (fixtures.empty() || lockstep.empty()) {
    std::fprintf(stderr, "usage: qemu_diff --fixtures DIR --lockstep BIN [--out DIR] [CASE...]\n");
    return 2;
  }
  const std::string qemu = lockstep::qtest::find_qemu();
  if (qemu.empty()) {
    std::printf("SKIP: qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86; "
                "or set QEMU_SYSTEM)\n");
    return 77;
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(fixtures)) {
    if (!e.is_directory() || !fs::exists(e.path() / "primary.pcap")) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), e.path().filename().string()) == only.end()) continue;
    cases.push_back(e.path());
  }
  std::sort(cases.begin(), cases.end());
  fs::path work = fs::path(out) / ("qemu-diff-" + std::to_string(getpid()));
  fs::create_directories(work);

  std::printf("QEMU colo-compare (%s) vs lockstep-colo, %zu cases\n", qemu.c_str(), cases.size());
  std::printf("columns per instance: released/expected, per-flow order, DO_CHECKPOINT messages\n");
  std::printf("qemu and ls-rw get the SVM stream as filter-rewriter delivers it; ls-raw gets it raw\n\n");
  std::printf("%-30s %6s %6s | %-22s | %-22s | %-22s | %s\n", "case", "pvm", "svm", "qemu", "lockstep (rw)",
              "lockstep (raw)", "verdict");
  size_t failed = 0, run = 0, agree = 0, weak = 0;
  std::vector<std::string> all_failures;
  for (const auto& c : cases) {
    const uint64_t t_case = now_ns();
    CaseResult r = run_case(c, qemu, lockstep, work);
    const double secs = double(now_ns() - t_case) / 1e9;
    if (r.skipped) {
      std::printf("%-30s skipped: %s\n", r.name.c_str(), r.row.c_str());
      continue;
    }
    ++run;
    if (r.row.find("| agree") != std::string::npos) ++agree;
    else ++weak;
    std::printf("%-30s %s%s (%.1f s)\n", r.name.c_str(), r.row.c_str(), r.failures.empty() ? "" : "  FAIL", secs);
    std::fflush(stdout);
    if (!r.failures.empty()) ++failed;
    for (auto& f : r.failures) all_failures.push_back(f);
  }
  std::printf("\n%zu cases run: QEMU right and lockstep agrees on %zu; QEMU weak on %zu (lockstep's "
              "outcome checked against the fixture); %zu failed\n", run, agree, weak, failed);
  for (const auto& f : all_failures) std::printf("FAIL %s\n", f.c_str());
  if (failed == 0) fs::remove_all(work);
  else std::printf("outputs kept under %s\n", work.c_str());
  return failed == 0 ? 0 : 1;
}
