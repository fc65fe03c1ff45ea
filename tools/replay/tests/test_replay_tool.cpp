// lockstep-replay as its users drive it: a real process, real files, exit statuses and
// the one-line errors of the contract (issue 3), and the outputs of small scenarios.
// The path of the tool is the first argument (meson passes it).
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tools/replay/json_line.h"
#include "tools/replay/pcap_io.h"
#include "tools/replay/tests/capture_builder.h"

extern char** environ;

namespace lockstep::replay {
namespace {

namespace fs = std::filesystem;
using test::Endpoint;
using test::TestFrame;

std::string g_tool;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "replay-tool-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

struct Result {
  int rc = -1;
  std::string out, err;
};

Result run_tool(const TempDir& d, const std::vector<std::string>& args) {
  const std::string out_path = d.file("stdout.txt"), err_path = d.file("stderr.txt");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(g_tool.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  Result r;
  if (posix_spawn(&pid, g_tool.c_str(), &fa, nullptr, argv.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_file(out_path);
  r.err = test::read_file(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

// A one-line message on stderr, from the tool, naming `what`.
void expect_one_line_error(const Result& r, const std::string& what) {
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_EQ(r.err.rfind("lockstep-replay: ", 0), 0u) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
}

// ---- scenarios -------------------------------------------------------------------

const Endpoint kServer{0x0a000001, 80, 1};
const Endpoint kClient{0x0a000002, 40000, 2};
constexpr uint64_t kT0 = 1700000000000000000ull;  // a whole second, in ns
constexpr uint64_t us(uint64_t n) { return kT0 + n * 1000; }

struct Scenario {
  std::vector<TestFrame> ingress, pvm, svm;
};

// One HTTP-like exchange. Client ISN 100, PVM ISN 1000, SVM ISN 5000; the VMs send the
// same bytes, segmented differently. Nothing should diverge.
Scenario identical_tcp() {
  Scenario s;
  const std::string reply = "HTTP/1.0 200 OK\r\n\r\nhello world, same bytes from both";
  constexpr uint8_t kSyn = 0x02, kAck = 0x10, kPshAck = 0x18, kFinAck = 0x11;
  auto in = [&](uint64_t t, uint32_t seq, uint32_t ack, uint8_t fl, const std::string& p) {
    s.ingress.push_back({us(t), test::tcp_frame(kClient, kServer, seq, ack, fl, p)});
  };
  auto out = [&](std::vector<TestFrame>& v, uint64_t t, uint32_t seq, uint32_t ack, uint8_t fl,
                 const std::string& p) {
    v.push_back({us(t), test::tcp_frame(kServer, kClient, seq, ack, fl, p)});
  };
  in(1000, 100, 0, kSyn, "");
  out(s.pvm, 1100, 1000, 101, kSyn | kAck, "");
  out(s.svm, 1200, 5000, 101, kSyn | kAck, "");
  in(2000, 101, 1001, kAck, "");
  in(2100, 101, 1001, kPshAck, "GET /\r\n");
  const uint32_t r = static_cast<uint32_t>(reply.size());
  out(s.pvm, 3000, 1001, 108, kPshAck, reply.substr(0, 20));
  out(s.pvm, 3010, 1021, 108, kPshAck, reply.substr(20));
  out(s.svm, 3500, 5001, 108, kPshAck, reply.substr(0, 7));
  out(s.svm, 3510, 5008, 108, kPshAck, reply.substr(7, 20));
  out(s.svm, 3520, 5028, 108, kPshAck, reply.substr(27));
  out(s.pvm, 4000, 1001 + r, 108, kFinAck, "");
  out(s.svm, 4500, 5001 + r, 108, kFinAck, "");
  in(5000, 108, 1002 + r, kAck, "");
  in(5100, 108, 1002 + r, kFinAck, "");
  out(s.pvm, 5200, 1002 + r, 109, kAck, "");
  out(s.svm, 5300, 5002 + r, 109, kAck, "");
  return s;
}

// One UDP datagram each way that differs: a checkpoint must release the PVM's.
Scenario udp_mismatch() {
  Scenario s;
  s.pvm.push_back({us(1000), test::udp_frame(kServer, kClient, "answer: 42")});
  s.svm.push_back({us(1100), test::udp_frame(kServer, kClient, "answer: 43")});
  return s;
}

struct Files {
  std::string ingress, primary, secondary;
};

Files write_scenario(const TempDir& d, const Scenario& s, bool pcapng = false) {
  const std::string ext = pcapng ? ".pcapng" : ".pcap";
  auto write = [&](const std::string& name, const std::vector<TestFrame>& f) {
    test::write_file(d.file(name + ext), pcapng ? test::pcapng_bytes(f) : test::pcap_bytes(f));
    return d.file(name + ext);
  };
  return Files{write("ingress", s.ingress), write("primary", s.pvm), write("secondary", s.svm)};
}

std::vector<std::string> full_args(const TempDir& d, const Files& f, const std::string& tag) {
  return {"--primary",  f.primary,  "--secondary", f.secondary,
          "--ingress",  f.ingress,  "--released",  d.file("released" + tag + ".pcap"),
          "--svm-ingress", d.file("svm_ingress" + tag + ".pcap"),
          "--events",   d.file("events" + tag + ".jsonl")};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::vector<std::string> events_named(const std::vector<std::string>& lines, const std::string& e) {
  std::vector<std::string> out;
  for (const std::string& l : lines)
    if (l.find("\"event\":\"" + e + "\"") != std::string::npos) out.push_back(l);
  return out;
}

// The raw JSON text of a top-level number or string field.
std::string field(const std::string& line, const std::string& key) {
  const std::regex re("\"" + key + "\":(\"[^\"]*\"|[-0-9.]+)");
  std::smatch m;
  if (!std::regex_search(line, m, re)) return "<absent>";
  return m[1];
}

void expect_no_outputs(const TempDir& d) {
  for (const std::string& name : d.listing()) {
    EXPECT_EQ(name.find("released"), std::string::npos) << name;
    EXPECT_EQ(name.find("svm_ingress"), std::string::npos) << name;
    EXPECT_EQ(name.find("events"), std::string::npos) << name;
  }
}

// ---- usage ------------------------------------------------------------------------

TEST(ReplayTool, HelpPrintsUsage) {
  TempDir d;
  const Result r = run_tool(d, {"--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("usage: lockstep-replay --primary"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--checkpoint-latency-us"), std::string::npos);
}

TEST(ReplayTool, ListSettingsShowsTheTable) {
  TempDir d;
  const Result r = run_tool(d, {"--list-settings"});
  EXPECT_EQ(r.rc, 0) << r.err;
  for (const char* s : {"compare_timeout_us", "default: 100000", "[100, 60000000]", "mode",
                        "colo|buffer|passthrough", "policy_rules", "hybrid_quiet_ms"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(ReplayTool, UsageErrors) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  const std::string rel = d.file("released.pcap");
  expect_one_line_error(run_tool(d, {}), "missing --primary");
  expect_one_line_error(run_tool(d, {"--primary", f.primary, "--secondary", f.secondary}),
                        "missing --released");
  expect_one_line_error(run_tool(d, {"--primary", f.primary, "--released", rel}),
                        "missing --secondary");
  expect_one_line_error(run_tool(d, {"--bogus", "1"}), "unknown option '--bogus'");
  expect_one_line_error(run_tool(d, {"--primary"}), "--primary needs a value");
  expect_one_line_error(run_tool(d, {"stray"}), "unexpected argument 'stray'");
  expect_one_line_error(run_tool(d, {"--primary", f.primary, "--secondary", f.secondary,
                                     "--released", rel, "--checkpoint-latency-us", "1ms"}),
                        "--checkpoint-latency-us: Value 1ms not in range");
  expect_one_line_error(run_tool(d, {"--primary", f.primary, "--secondary", f.secondary,
                                     "--released", rel, "--set", "reorder_window"}),
                        "expected KEY=VALUE");
  expect_one_line_error(run_tool(d, {"--primary", f.primary, "--secondary", f.secondary,
                                     "--released", f.primary}),
                        "is also an input");
  expect_no_outputs(d);
}

TEST(ReplayTool, UnwritableOutputLeavesNoOtherOutput) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  std::vector<std::string> args = full_args(d, f, "");
  args[args.size() - 1] = d.file("no-such-dir/events.jsonl");
  expect_one_line_error(run_tool(d, args), "events.jsonl.tmp: cannot create");
  expect_no_outputs(d);
}

TEST(ReplayTool, EqualsFormAndOptionalOutputs) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  const Result r = run_tool(d, {"--primary=" + f.primary, "--secondary=" + f.secondary,
                                "--released=" + d.file("released.pcap"),
                                "--checkpoint-latency-us=0"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(d.file("released.pcap")));
  EXPECT_EQ(d.listing(), (std::vector<std::string>{"ingress.pcap", "primary.pcap",
                                                   "released.pcap", "secondary.pcap"}));
}

// ---- bad input files ----------------------------------------------------------------

class BadInput : public ::testing::Test {
 protected:
  void run_expecting(const std::string& bad_file, const std::string& what, bool as_primary) {
    const Files f = write_scenario(d_, identical_tcp());
    std::vector<std::string> args = full_args(d_, f, "");
    args[as_primary ? 1 : 3] = bad_file;
    const Result r = run_tool(d_, args);
    expect_one_line_error(r, bad_file + ": ");
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    expect_no_outputs(d_);
  }
  TempDir d_;
};

TEST_F(BadInput, MissingFile) {
  run_expecting(d_.file("does-not-exist.pcap"), "No such file", true);
}

TEST_F(BadInput, WrongLinkType) {
  const std::string p = d_.file("raw.pcap");
  test::write_file(p, test::pcap_bytes(identical_tcp().svm, false, 101));
  run_expecting(p, "link type", false);
}

TEST_F(BadInput, TruncatedPcap) {
  const std::string p = d_.file("cut.pcap");
  std::string bytes = test::pcap_bytes(identical_tcp().pvm);
  bytes.resize(bytes.size() - 3);
  test::write_file(p, bytes);
  run_expecting(p, "truncated", true);
}

TEST_F(BadInput, NotACapture) {
  const std::string p = d_.file("notes.pcap");
  test::write_file(p, "hello, this is text\n");
  run_expecting(p, "", false);
}

TEST_F(BadInput, UnreadableFile) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string p = d_.file("locked.pcap");
  test::write_file(p, test::pcap_bytes(identical_tcp().pvm));
  fs::permissions(p, fs::perms::none);
  run_expecting(p, "ermission", true);
}

// ---- settings -------------------------------------------------------------------------

TEST(ReplayTool, SetUnknownKeyNamesIt) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  std::vector<std::string> args = full_args(d, f, "");
  args.insert(args.end(), {"--set", "compare_timeout=5"});
  expect_one_line_error(run_tool(d, args), "compare_timeout");
  expect_no_outputs(d);
}

TEST(ReplayTool, SetBadValueNamesKeyAndRange) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  std::vector<std::string> args = full_args(d, f, "");
  args.insert(args.end(), {"--set", "reorder_window=64", "--set", "compare_timeout_us=5"});
  const Result r = run_tool(d, args);
  expect_one_line_error(r, "compare_timeout_us");
  EXPECT_NE(r.err.find("100"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("60000000"), std::string::npos) << r.err;
  expect_no_outputs(d);

  args = full_args(d, f, "");
  args.insert(args.end(), {"--set", "mode=fast"});
  const Result c = run_tool(d, args);
  expect_one_line_error(c, "mode");
  EXPECT_NE(c.err.find("passthrough"), std::string::npos) << c.err;
}

TEST(ReplayTool, ConfigFile) {
  TempDir d;
  const Files f = write_scenario(d, udp_mismatch());
  test::write_file(d.file("good.yaml"), "other: {x: 1}\nengine:\n  compare_timeout_us: 5000\n");
  test::write_file(d.file("bad.yaml"), "compare_timeout_us: 5000\nno_such_setting: 1\n");
  std::vector<std::string> args = full_args(d, f, "");
  args.insert(args.end(), {"--config", d.file("bad.yaml")});
  const Result bad = run_tool(d, args);
  expect_one_line_error(bad, d.file("bad.yaml"));
  EXPECT_NE(bad.err.find("no_such_setting"), std::string::npos) << bad.err;
  expect_no_outputs(d);

  args = full_args(d, f, "");
  args.insert(args.end(), {"--config", d.file("good.yaml"), "--set", "reorder_window=64"});
  const Result good = run_tool(d, args);
  ASSERT_EQ(good.rc, 0) << good.err;
  const auto start = events_named(lines_of(test::read_file(d.file("events.jsonl"))), "start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(field(start[0], "compare_timeout_us"), "\"5000\"");
  EXPECT_EQ(field(start[0], "reorder_window"), "\"64\"");
}

// ---- scenarios ------------------------------------------------------------------------

TEST(ReplayTool, IdenticalStreamsReleaseEveryPvmFrameInOrder) {
  TempDir d;
  const Scenario s = identical_tcp();
  const Files f = write_scenario(d, s);
  const Result r = run_tool(d, full_args(d, f, ""));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* name : {"released.pcap", "svm_ingress.pcap", "events.jsonl"}) {
    EXPECT_TRUE(fs::exists(d.file(name))) << name;
    EXPECT_FALSE(fs::exists(d.file(std::string(name) + ".tmp"))) << name;
  }
  Capture released;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("released.pcap"), released, err)) << err;
  ASSERT_EQ(released.frames.size(), s.pvm.size());
  for (size_t i = 0; i < s.pvm.size(); ++i) {
    EXPECT_EQ(std::vector<uint8_t>(released.data(i), released.data(i) + released.frames[i].caplen),
              s.pvm[i].bytes)
        << "released frame " << i;
    EXPECT_GE(released.frames[i].ts_ns, s.pvm[i].ts_ns) << "released before it was sent";
  }
  const auto lines = lines_of(test::read_file(d.file("events.jsonl")));
  ASSERT_FALSE(lines.empty());
  const std::string& summary = lines.back();
  EXPECT_EQ(field(summary, "event"), "\"summary\"");
  EXPECT_EQ(field(summary, "conservation"), "\"ok\"");
  EXPECT_EQ(field(summary, "contract"), "\"ok\"");
  EXPECT_EQ(field(summary, "pvm_in"), std::to_string(s.pvm.size()));
  EXPECT_EQ(field(summary, "svm_in"), std::to_string(s.svm.size()));
  EXPECT_EQ(field(summary, "released"), std::to_string(s.pvm.size()));
  EXPECT_EQ(field(summary, "checkpoints"), "0");
  EXPECT_EQ(field(summary, "held_at_end"), "0");
  EXPECT_EQ(field(summary, "svm_dropped"), "0");
  EXPECT_TRUE(events_named(lines, "checkpoint_request").empty());
  const auto releases = events_named(lines, "release");
  ASSERT_EQ(releases.size(), s.pvm.size());
  for (size_t i = 0; i < releases.size(); ++i)
    EXPECT_EQ(field(releases[i], "pvm_index"), std::to_string(i)) << releases[i];

  // The SVM got every client frame, its ACKs moved into its own sequence space.
  Capture to_svm;
  ASSERT_TRUE(read_capture(d.file("svm_ingress.pcap"), to_svm, err)) << err;
  ASSERT_EQ(to_svm.frames.size(), s.ingress.size());
  auto ack_of = [](const uint8_t* p) {
    const uint8_t* a = p + 14 + 20 + 8;
    return uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
  };
  for (size_t i = 1; i < s.ingress.size(); ++i)  // the SYN acknowledges nothing
    EXPECT_EQ(ack_of(to_svm.data(i)), ack_of(s.ingress[i].bytes.data()) + 4000) << "frame " << i;
}

TEST(ReplayTool, OutputIsDeterministicAndPcapngReadsTheSame) {
  TempDir d;
  const Files f = write_scenario(d, identical_tcp());
  ASSERT_EQ(run_tool(d, full_args(d, f, "-1")).rc, 0);
  ASSERT_EQ(run_tool(d, full_args(d, f, "-2")).rc, 0);
  TempDir ng;
  const Files g = write_scenario(ng, identical_tcp(), true);
  ASSERT_EQ(run_tool(ng, full_args(d, g, "-ng")).rc, 0);
  for (const char* name : {"released", "svm_ingress", "events"}) {
    const std::string ext = std::string(name) == "events" ? ".jsonl" : ".pcap";
    const std::string one = test::read_file(d.file(name + std::string("-1") + ext));
    EXPECT_FALSE(one.empty()) << name;
    EXPECT_EQ(one, test::read_file(d.file(name + std::string("-2") + ext))) << name;
    EXPECT_EQ(one, test::read_file(d.file(name + std::string("-ng") + ext))) << name;
  }
}

TEST(ReplayTool, MismatchCheckpointCompletesAfterTheLatency) {
  TempDir d;
  const Scenario s = udp_mismatch();
  const Files f = write_scenario(d, s);
  std::vector<std::string> args = full_args(d, f, "");
  args.insert(args.end(), {"--checkpoint-latency-us", "500"});
  const Result r = run_tool(d, args);
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto lines = lines_of(test::read_file(d.file("events.jsonl")));
  const auto req = events_named(lines, "checkpoint_request");
  const auto done = events_named(lines, "checkpoint_done");
  ASSERT_EQ(req.size(), 1u);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(field(req[0], "epoch"), field(done[0], "epoch"));
  EXPECT_EQ(field(req[0], "flow"), "\"udp 10.0.0.1:80 <-> 10.0.0.2:40000\"");
  // What differs: "answer: 42" and "answer: 43" differ at payload offset 9, shown with
  // the 8 bytes before it; the PVM's datagram (at 1 ms) waited for its match.
  EXPECT_EQ(field(req[0], "reason"), "\"deadline\"");
  EXPECT_EQ(field(req[0], "waiting"), "\"pvm\"");
  EXPECT_EQ(field(req[0], "stream_offset"), "9");
  EXPECT_EQ(field(req[0], "shown_before"), "8");
  EXPECT_EQ(field(req[0], "pvm_hex"), "\"6e737765723a203432\"");  // "nswer: 42"
  EXPECT_EQ(field(req[0], "svm_hex"), "\"6e737765723a203433\"");
  EXPECT_EQ(field(req[0], "frame_t_us"), format_us(s.pvm[0].ts_ns));
  EXPECT_EQ(std::stod(field(done[0], "t_us")) - std::stod(field(req[0], "t_us")), 500.0);
  EXPECT_EQ(field(done[0], "released"), "1");
  EXPECT_EQ(field(done[0], "dropped_secondary"), "1");
  const auto rel = events_named(lines, "release");
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(field(rel[0], "reason"), "\"checkpoint\"");
  EXPECT_EQ(field(rel[0], "pvm_index"), "0");
  EXPECT_EQ(field(rel[0], "t_us"), field(done[0], "t_us"));
  const std::string& summary = lines.back();
  EXPECT_EQ(field(summary, "checkpoints"), "1");
  EXPECT_EQ(field(summary, "released"), "1");
  EXPECT_EQ(field(summary, "conservation"), "\"ok\"");
  Capture released;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("released.pcap"), released, err)) << err;
  ASSERT_EQ(released.frames.size(), 1u);
  EXPECT_EQ(format_us(released.frames[0].ts_ns), field(done[0], "t_us"));
}

TEST(ReplayTool, EmptyInputsAreFine) {
  TempDir d;
  const Files f = write_scenario(d, Scenario{});
  const Result r = run_tool(d, full_args(d, f, ""));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto lines = lines_of(test::read_file(d.file("events.jsonl")));
  ASSERT_EQ(lines.size(), 2u);  // start, summary
  EXPECT_EQ(field(lines.back(), "pvm_in"), "0");
}

}  // namespace
}  // namespace lockstep::replay

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH-TO-lockstep-replay [gtest flags]\n", argv[0]);
    return 2;
  }
  lockstep::replay::g_tool = argv[1];
  return RUN_ALL_TESTS();
}
