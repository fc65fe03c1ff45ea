// lockstep-replay's parts that need no engine: reading captures (pcap, pcapng, damaged
// and foreign files), writing pcap through a temporary, the merge order, JSON lines and
// the YAML config reader.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/replay/json_line.h"
#include "tools/replay/merge.h"
#include "tools/replay/options.h"
#include "tools/replay/pcap_io.h"
#include "tools/replay/tests/capture_builder.h"

namespace lockstep::replay {
namespace {

namespace fs = std::filesystem;
using test::Endpoint;
using test::TestFrame;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "replay-io-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

std::vector<TestFrame> sample_frames() {
  const Endpoint a{0x0a000001, 80, 1}, b{0x0a000002, 40000, 2};
  return {
      {1000000000000, test::tcp_frame(a, b, 1, 2, 0x12, "")},
      {1000000001000, test::tcp_frame(a, b, 2, 2, 0x18, "hello")},
      {1000000002000, test::udp_frame(a, b, "odd-length!")},
  };
}

void expect_same(const std::vector<TestFrame>& want, const Capture& got) {
  ASSERT_EQ(got.frames.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got.frames[i].ts_ns, want[i].ts_ns) << "frame " << i;
    ASSERT_EQ(got.frames[i].caplen, want[i].bytes.size()) << "frame " << i;
    EXPECT_EQ(got.frames[i].wirelen, want[i].bytes.size()) << "frame " << i;
    EXPECT_EQ(std::vector<uint8_t>(got.data(i), got.data(i) + got.frames[i].caplen), want[i].bytes)
        << "frame " << i;
  }
}

TEST(ReadCapture, PcapMicroseconds) {
  TempDir d;
  const auto frames = sample_frames();
  test::write_file(d.file("a.pcap"), test::pcap_bytes(frames));
  Capture c;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("a.pcap"), c, err)) << err;
  expect_same(frames, c);
}

TEST(ReadCapture, PcapNanoseconds) {
  TempDir d;
  auto frames = sample_frames();
  frames[1].ts_ns += 7;  // sub-microsecond part must survive
  test::write_file(d.file("a.pcap"), test::pcap_bytes(frames, true));
  Capture c;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("a.pcap"), c, err)) << err;
  expect_same(frames, c);
}

TEST(ReadCapture, Pcapng) {
  TempDir d;
  const auto frames = sample_frames();
  test::write_file(d.file("a.pcapng"), test::pcapng_bytes(frames));
  Capture c;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("a.pcapng"), c, err)) << err;
  expect_same(frames, c);
}

TEST(ReadCapture, EmptyCaptureIsValid) {
  TempDir d;
  test::write_file(d.file("a.pcap"), test::pcap_bytes({}));
  Capture c;
  std::string err;
  ASSERT_TRUE(read_capture(d.file("a.pcap"), c, err)) << err;
  EXPECT_TRUE(c.frames.empty());
}

TEST(ReadCapture, MissingFileNamesIt) {
  TempDir d;
  Capture c;
  std::string err;
  EXPECT_FALSE(read_capture(d.file("nope.pcap"), c, err));
  EXPECT_EQ(err.rfind(d.file("nope.pcap") + ": ", 0), 0u) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST(ReadCapture, WrongLinkTypeNamesIt) {
  TempDir d;
  test::write_file(d.file("sll.pcap"), test::pcap_bytes(sample_frames(), false, 113));
  Capture c;
  std::string err;
  EXPECT_FALSE(read_capture(d.file("sll.pcap"), c, err));
  EXPECT_EQ(err.rfind(d.file("sll.pcap") + ": ", 0), 0u) << err;
  EXPECT_NE(err.find("link type"), std::string::npos) << err;
  EXPECT_NE(err.find("113"), std::string::npos) << err;
}

TEST(ReadCapture, TruncatedRecordIsAnError) {
  TempDir d;
  std::string bytes = test::pcap_bytes(sample_frames());
  bytes.resize(bytes.size() - 5);  // the last frame's data is cut short
  test::write_file(d.file("cut.pcap"), bytes);
  Capture c;
  std::string err;
  EXPECT_FALSE(read_capture(d.file("cut.pcap"), c, err));
  EXPECT_EQ(err.rfind(d.file("cut.pcap") + ": ", 0), 0u) << err;
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  EXPECT_NE(err.find("frame 2"), std::string::npos) << err;
}

TEST(ReadCapture, TruncatedRecordHeaderIsAnError) {
  TempDir d;
  std::string bytes = test::pcap_bytes(sample_frames());
  const size_t first_two = 24 + 16 + sample_frames()[0].bytes.size() + 16 +
                           sample_frames()[1].bytes.size();
  bytes.resize(first_two + 6);  // half a record header
  test::write_file(d.file("cut.pcap"), bytes);
  Capture c;
  std::string err;
  EXPECT_FALSE(read_capture(d.file("cut.pcap"), c, err));
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
}

TEST(ReadCapture, TruncatedPcapngIsAnError) {
  TempDir d;
  std::string bytes = test::pcapng_bytes(sample_frames());
  bytes.resize(bytes.size() - 10);
  test::write_file(d.file("cut.pcapng"), bytes);
  Capture c;
  std::string err;
  EXPECT_FALSE(read_capture(d.file("cut.pcapng"), c, err));
  EXPECT_EQ(err.rfind(d.file("cut.pcapng") + ": ", 0), 0u) << err;
}

TEST(ReadCapture, ShortFileAndNonCaptureAreErrors) {
  TempDir d;
  test::write_file(d.file("short.pcap"), std::string("\xd4\xc3\xb2\xa1\x02\x00", 6));
  test::write_file(d.file("text.pcap"), "this is not a capture file at all\n");
  test::write_file(d.file("empty.pcap"), "");
  for (const char* name : {"short.pcap", "text.pcap", "empty.pcap"}) {
    Capture c;
    std::string err;
    EXPECT_FALSE(read_capture(d.file(name), c, err)) << name;
    EXPECT_EQ(err.rfind(d.file(name) + ": ", 0), 0u) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

TEST(PcapWriter, WritesNanosecondPcapOnlyOnCommit) {
  TempDir d;
  const std::string out = d.file("out.pcap");
  auto frames = sample_frames();
  frames[2].ts_ns += 123;
  PcapWriter w;
  std::string err;
  ASSERT_TRUE(w.open(out, err)) << err;
  for (const TestFrame& f : frames)
    w.write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
            static_cast<uint32_t>(f.bytes.size()));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::exists(out + ".tmp"));
  ASSERT_TRUE(w.commit(err)) << err;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_EQ(w.frames_written(), 3u);
  EXPECT_EQ(test::read_file(out), test::pcap_bytes(frames, true, 1).replace(16, 4, "\x00\x00\x04\x00", 4));
  Capture c;
  ASSERT_TRUE(read_capture(out, c, err)) << err;
  expect_same(frames, c);
}

TEST(PcapWriter, DiscardLeavesNothing) {
  TempDir d;
  const std::string out = d.file("out.pcap");
  {
    PcapWriter w;
    std::string err;
    ASSERT_TRUE(w.open(out, err)) << err;
    const auto f = sample_frames()[0];
    w.write(f.ts_ns, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), 0);
  }  // destroyed without commit
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(PcapWriter, UnwritableDirectoryIsAnError) {
  TempDir d;
  PcapWriter w;
  std::string err;
  EXPECT_FALSE(w.open(d.file("no/such/dir/out.pcap"), err));
  EXPECT_NE(err.find("out.pcap.tmp"), std::string::npos) << err;
}

std::vector<MergedFrame> merge(std::vector<uint64_t> ingress, std::vector<uint64_t> pvm,
                               std::vector<uint64_t> svm) {
  const std::array<std::vector<uint64_t>, 3> ts{std::move(ingress), std::move(pvm),
                                                std::move(svm)};
  return merge_by_time(ts);
}

std::string order_of(const std::vector<MergedFrame>& m) {
  std::string s;
  for (const MergedFrame& f : m) {
    s += "ips"[static_cast<int>(f.side)];
    s += std::to_string(f.index);
    s += '@';
    s += std::to_string(f.t_ns);
    s += ' ';
  }
  return s;
}

TEST(Merge, ByTimeThenIngressPrimarySecondary) {
  EXPECT_EQ(order_of(merge({5, 10}, {5, 7, 10}, {1, 5, 10})),
            "s0@1 i0@5 p0@5 s1@5 p1@7 i1@10 p2@10 s2@10 ");
}

TEST(Merge, StableWithinAFileAndClockNeverGoesBack) {
  // The primary's file steps back in time: its frames keep file order, and the frame
  // stamped 4 (at the head now, the earliest) goes next, fed at the current time 10.
  EXPECT_EQ(order_of(merge({}, {10, 4, 20}, {12})), "p0@10 p1@10 s0@12 p2@20 ");
  EXPECT_EQ(order_of(merge({15}, {10, 30}, {20, 5})), "p0@10 i0@15 s0@20 s1@20 p1@30 ");
  EXPECT_EQ(order_of(merge({}, {3, 3, 3}, {})), "p0@3 p1@3 p2@3 ");
  EXPECT_TRUE(merge({}, {}, {}).empty());
}

TEST(JsonLine, FieldsInOrderAndEscaped) {
  const std::string l = JsonLine()
                            .num("a", 18446744073709551615ull)
                            .str("s", "q\"b\\n\n\t\x01")
                            .time_us("t_us", 1234567)
                            .raw("o", JsonLine().num("x", 0).object())
                            .line();
  EXPECT_EQ(l,
            "{\"a\":18446744073709551615,\"s\":\"q\\\"b\\\\n\\n\\t\\u0001\",\"t_us\":1234.567,"
            "\"o\":{\"x\":0}}\n");
  EXPECT_EQ(JsonLine().object(), "{}");
}

TEST(JsonLine, MicrosecondsExactFromNanoseconds) {
  EXPECT_EQ(format_us(0), "0");
  EXPECT_EQ(format_us(1000), "1");
  EXPECT_EQ(format_us(1500), "1.5");
  EXPECT_EQ(format_us(1050), "1.05");
  EXPECT_EQ(format_us(1001), "1.001");
  EXPECT_EQ(format_us(1700000000123456789ull), "1700000000123456.789");
}

#ifdef LOCKSTEP_REPLAY_HAVE_YAML
using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ConfigYaml, TopLevelKeys) {
  TempDir d;
  test::write_file(d.file("c.yaml"), "compare_timeout_us: 5000\nmode: buffer\nhybrid: true\n");
  Pairs p;
  std::string err;
  ASSERT_TRUE(load_config_pairs(d.file("c.yaml"), p, err)) << err;
  EXPECT_EQ(p, (Pairs{{"compare_timeout_us", "5000"}, {"mode", "buffer"}, {"hybrid", "true"}}));
}

TEST(ConfigYaml, EngineSectionOnly) {
  TempDir d;
  test::write_file(d.file("c.yaml"),
                   "ports:\n  ext: net_ring0\nengine:\n  policy_rules: \"udp:53=pass\"\n"
                   "  reorder_window: 64\n");
  Pairs p;
  std::string err;
  ASSERT_TRUE(load_config_pairs(d.file("c.yaml"), p, err)) << err;
  EXPECT_EQ(p, (Pairs{{"policy_rules", "udp:53=pass"}, {"reorder_window", "64"}}));
}

TEST(ConfigYaml, EmptyFileSetsNothing) {
  TempDir d;
  test::write_file(d.file("c.yaml"), "");
  Pairs p;
  std::string err;
  ASSERT_TRUE(load_config_pairs(d.file("c.yaml"), p, err)) << err;
  EXPECT_TRUE(p.empty());
}

TEST(ConfigYaml, ErrorsNameTheFile) {
  TempDir d;
  test::write_file(d.file("list.yaml"), "- a\n- b\n");
  test::write_file(d.file("nested.yaml"), "reorder_window:\n  x: 1\n");
  test::write_file(d.file("broken.yaml"), "a: [1, 2\n");
  for (const char* name : {"list.yaml", "nested.yaml", "broken.yaml", "missing.yaml"}) {
    Pairs p;
    std::string err;
    EXPECT_FALSE(load_config_pairs(d.file(name), p, err)) << name;
    EXPECT_EQ(err.rfind(d.file(name) + ": ", 0), 0u) << err;
  }
}
#endif

}  // namespace
}  // namespace lockstep::replay
