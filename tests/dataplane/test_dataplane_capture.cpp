// `capture start|stop` in process, on net_ring ports stepped by the test: the pcapng
// file holds the frames a port received and those lockstepd sent on it, in order, with
// the right direction flags, lengths and bytes (checked by a pcapng reader written here,
// and by tshark when it is installed); --direction, --snaplen, max_bytes, a full capture
// ring (counted), frames the device refused (not in the file); files only by name, only
// in the capture directory, never overwritten, never through a symlink, mode 0640.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/daemon/capture.h"
#include "dataplane/edge/dataplane.h"
#include "tests/dataplane/eal_env.h"
#include "tests/dataplane/ring_rig.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using dp::Capture;
using dp::Config;
using dp::Dataplane;
using dp::PortRole;
using dptest::EalEnv;
using dptest::RingRig;
using test::Bytes;
using test::Conversation;
using test::Vm;

constexpr uint64_t kMs = 1000000;

// ---- an independent pcapng reader (little-endian files, as written on x86/arm64) ----

struct Iface {
  uint16_t linktype = 0;
  uint32_t snaplen = 0;
  std::string name;
  int tsresol = 6;  // the default when if_tsresol is absent
};
struct Packet {
  uint32_t iface = 0;
  uint64_t ts = 0;
  uint32_t cap_len = 0, orig_len = 0;
  uint32_t flags = 0;
  bool has_flags = false;
  Bytes data;
};
struct PcapNg {
  bool ok = false;
  std::string error;
  std::string userappl;
  std::vector<Iface> ifaces;
  std::vector<Packet> packets;
};

uint32_t rd32(const Bytes& b, size_t o) { return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | uint32_t(b[o + 3]) << 24; }
uint16_t rd16(const Bytes& b, size_t o) { return static_cast<uint16_t>(b[o] | b[o + 1] << 8); }

// Calls f(code, offset, length) for each option in [o, end); false if malformed.
template <class F>
bool options(const Bytes& b, size_t o, size_t end, F&& f) {
  while (o + 4 <= end) {
    uint16_t code = rd16(b, o), len = rd16(b, o + 2);
    if (code == 0) return true;
    if (o + 4 + len > end) return false;
    f(code, o + 4, len);
    o += 4 + ((len + 3u) & ~3u);
  }
  return o == end;
}

PcapNg read_pcapng(const std::string& path) {
  PcapNg r;
  std::ifstream in(path, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t o = 0;
  auto bad = [&](const std::string& e) {
    r.error = e + " at offset " + std::to_string(o);
    return r;
  };
  if (b.size() < 28 || rd32(b, 0) != 0x0A0D0D0A || rd32(b, 8) != 0x1A2B3C4D) return bad("no SHB");
  while (o < b.size()) {
    if (o + 12 > b.size()) return bad("truncated block header");
    uint32_t type = rd32(b, o), len = rd32(b, o + 4);
    if (len < 12 || len % 4 != 0 || o + len > b.size()) return bad("bad block length");
    if (rd32(b, o + len - 4) != len) return bad("trailing length differs");
    size_t body = o + 8, end = o + len - 4;
    if (type == 0x0A0D0D0A) {
      if (rd16(b, body + 4) != 1) return bad("SHB major version");
      if (!options(b, body + 16, end, [&](uint16_t c, size_t p, uint16_t n) {
            if (c == 4) r.userappl.assign(b.begin() + p, b.begin() + p + n);
          }))
        return bad("SHB options");
    } else if (type == 1) {
      Iface i;
      i.linktype = rd16(b, body);
      i.snaplen = rd32(b, body + 4);
      if (!options(b, body + 8, end, [&](uint16_t c, size_t p, uint16_t n) {
            if (c == 2) i.name.assign(b.begin() + p, b.begin() + p + n);
            if (c == 9 && n == 1) i.tsresol = b[p];
          }))
        return bad("IDB options");
      r.ifaces.push_back(i);
    } else if (type == 6) {
      Packet p;
      p.iface = rd32(b, body);
      p.ts = uint64_t{rd32(b, body + 4)} << 32 | rd32(b, body + 8);
      p.cap_len = rd32(b, body + 12);
      p.orig_len = rd32(b, body + 16);
      size_t data = body + 20, opts = data + ((p.cap_len + 3u) & ~3u);
      if (opts > end) return bad("EPB data past its block");
      if (p.iface >= r.ifaces.size()) return bad("EPB before its IDB");
      if (p.cap_len > p.orig_len) return bad("captured length above original");
      p.data.assign(b.begin() + data, b.begin() + data + p.cap_len);
      if (!options(b, opts, end, [&](uint16_t c, size_t q, uint16_t n) {
            if (c == 2 && n == 4) p.flags = rd32(b, q), p.has_flags = true;
          }))
        return bad("EPB options");
      r.packets.push_back(std::move(p));
    } else {
      return bad("unexpected block type " + std::to_string(type));
    }
    o += len;
  }
  r.ok = true;
  return r;
}

bool have_tshark() { return access("/usr/bin/tshark", X_OK) == 0; }

// tshark's view: "len cap_len interface_name direction" per frame. A failure or any
// complaint on stderr (but the note that it runs as root) comes back as "tshark failed".
std::string tshark_lines(const std::string& path) {
  const std::string err_path = path + ".err";
  std::string cmd = "/usr/bin/tshark -n -r '" + path +
                    "' -T fields -e frame.len -e frame.cap_len -e frame.interface_name "
                    "-e frame.packet_flags_direction 2>'" + err_path + "'";
  std::string out;
  int rc = -1;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    rc = pclose(p);
  }
  std::ifstream err(err_path);
  std::string line, complaints;
  while (std::getline(err, line))
    if (line.find("Running as user") == std::string::npos) complaints += line + "\n";
  std::remove(err_path.c_str());
  if (rc != 0 || !complaints.empty())
    return "tshark failed (" + std::to_string(rc) + "): " + complaints + out;
  return out;
}

// The capture directory of this test process (made by the first capture).
std::string cap_dir() {
  return (testing::TempDir().empty() ? std::string("/tmp/") : testing::TempDir()) + "lscap_" +
         std::to_string(getpid());
}

// Where a capture named lscap_TAG.pcapng lands.
std::string temp_path(const std::string& tag) { return cap_dir() + "/lscap_" + tag + ".pcapng"; }

Capture::Options cap_opts(size_t ring_bytes) {
  Capture::Options o;
  o.ring_bytes = ring_bytes;
  o.writer_thread = false;
  o.dir = cap_dir();
  return o;
}

// ---- the rig ----

struct Fixture {
  explicit Fixture(const std::string& tag, unsigned ring_size = 65536) {
    cfg.workers = 1;
    cfg.pool_mbufs = 4095;
    cfg.pool_cache = 0;
    cfg.checkpoint_latency_us = 1000;
    cfg.tx_retries = 1;
    rig = std::make_unique<RingRig>(tag, std::initializer_list<PortRole>{PortRole::ext, PortRole::pvm, PortRole::svm},
                                    1, cfg, ring_size);
    dp = Dataplane::create(cfg, error);
  }
  ~Fixture() {
    if (dp) {
      dp->finish(1000 * kMs);
      for (unsigned r = 0; r < dp::kPortRoleCount; ++r) rig->drain(static_cast<PortRole>(r));
      dp->stop_ports(true);
      auto rep = dp->report();
      EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
    }
    dp.reset();
    rig.reset();
  }
  bool inject(PortRole r, const Bytes& b) { return rig->inject(r, dp->pool(), b); }

  Config cfg;
  std::string error;
  std::unique_ptr<RingRig> rig;
  std::unique_ptr<Dataplane> dp;
};

// A request for the file at `path` (in cap_dir()): it names the file only.
ctrl::CaptureRequest request(const std::string& port, const std::string& path) {
  ctrl::CaptureRequest r;
  r.port = port;
  r.path = path.substr(path.rfind('/') + 1);
  return r;
}

Conversation::Params conv_params(uint16_t client_port = 40000) {
  Conversation::Params p;
  p.client_port = client_port;
  p.pvm_isn = 500000;
  p.svm_isn = 900000;
  return p;
}

class DataplaneCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EalEnv::ok_) GTEST_SKIP() << "EAL did not start (no --no-huge memory?)";
  }
};

TEST_F(DataplaneCapture, BothDirectionsInOrderWithFlagsAndBytes) {
  Fixture f("capboth");
  ASSERT_TRUE(f.dp) << f.error;
  Capture cap(*f.dp, cap_opts(1u << 20));
  const std::string path = temp_path("both");
  ctrl::Json res;
  std::string err;
  ASSERT_TRUE(cap.start(request("pvm", path), res, err)) << err;
  EXPECT_EQ(res["direction"], "both");
  EXPECT_FALSE(cap.start(request("pvm", path + "2"), res, err)) << "one capture per port";

  // What the PVM's port sees, in order: SYN out, SYN-ACK in, ACK out, data in.
  Conversation c(conv_params());
  std::vector<std::pair<uint32_t, Bytes>> want;  // (epb direction, bytes)
  uint64_t t = 0;
  Bytes syn = c.client_syn(), pvm_synack = c.vm_synack(Vm::pvm);
  ASSERT_TRUE(f.inject(PortRole::ext, syn));
  f.dp->step(t += kMs);
  ASSERT_TRUE(f.inject(PortRole::pvm, pvm_synack));
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_synack(Vm::svm)));
  f.dp->step(t += kMs);
  Bytes ack = c.client_handshake_ack(), data = c.vm_stream(Vm::pvm, 0, 700);
  ASSERT_TRUE(f.inject(PortRole::ext, ack));
  f.dp->step(t += kMs);
  ASSERT_TRUE(f.inject(PortRole::pvm, data));
  ASSERT_TRUE(f.inject(PortRole::svm, c.vm_stream(Vm::svm, 0, 700)));
  f.dp->step(t += kMs);
  auto sent = f.rig->collect(PortRole::pvm);  // what the device took, as it took it
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0], syn) << "the PVM gets the client's frame untouched";
  want = {{2, sent[0]}, {1, pvm_synack}, {2, sent[1]}, {1, data}};

  ASSERT_TRUE(cap.stop("pvm", res, err)) << err;
  EXPECT_EQ(res["frames"], 4);
  EXPECT_EQ(res["frames_rx"], 2);
  EXPECT_EQ(res["frames_tx"], 2);
  EXPECT_EQ(res["copies_dropped"], 0);
  EXPECT_EQ(res["stopped_at_max_bytes"], false);

  PcapNg p = read_pcapng(path);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.userappl, "lockstepd");
  ASSERT_EQ(p.ifaces.size(), 2u);
  EXPECT_EQ(p.ifaces[0].name, "pvm-rx");
  EXPECT_EQ(p.ifaces[1].name, "pvm-tx");
  for (const auto& i : p.ifaces) {
    EXPECT_EQ(i.linktype, 1);
    EXPECT_EQ(i.tsresol, 9);
    EXPECT_EQ(i.snaplen, 65535u);
  }
  ASSERT_EQ(p.packets.size(), want.size());
  uint64_t last_ts = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const Packet& k = p.packets[i];
    SCOPED_TRACE("packet " + std::to_string(i));
    ASSERT_TRUE(k.has_flags);
    EXPECT_EQ(k.flags & 3u, want[i].first);
    EXPECT_EQ(p.ifaces[k.iface].name, want[i].first == 1 ? "pvm-rx" : "pvm-tx");
    EXPECT_EQ(k.orig_len, want[i].second.size());
    EXPECT_EQ(k.cap_len, want[i].second.size());
    EXPECT_EQ(k.data, want[i].second);
    EXPECT_GE(k.ts, last_ts) << "timestamps in order";
    last_ts = k.ts;
  }
  EXPECT_GT(last_ts, 1500000000ull * 1000000000ull) << "wall-clock nanoseconds";

  if (have_tshark()) {
    std::ostringstream expect;
    for (const auto& [dir, b] : want)
      expect << b.size() << '\t' << b.size() << '\t' << (dir == 1 ? "pvm-rx" : "pvm-tx") << '\t'
             << (dir == 1 ? "0x00000001" : "0x00000002") << '\n';
    EXPECT_EQ(tshark_lines(path), expect.str());
  }
  std::remove(path.c_str());
}

TEST_F(DataplaneCapture, OneDirectionAndSnaplen) {
  Fixture f("capdir");
  ASSERT_TRUE(f.dp) << f.error;
  Capture cap(*f.dp, cap_opts(1u << 20));
  const std::string path = temp_path("dir");
  auto req = request("ext", path);
  req.tx = false;
  req.snaplen = 64;
  ctrl::Json res;
  std::string err;
  ASSERT_TRUE(cap.start(req, res, err)) << err;
  EXPECT_EQ(res["direction"], "rx");
  std::vector<Bytes> in;
  for (uint16_t i = 0; i < 10; ++i) {
    Conversation c(conv_params(static_cast<uint16_t>(41000 + i)));
    in.push_back(c.client_data(1, test::stream_bytes(i, 0, 100u + 37u * i), 1));
    ASSERT_TRUE(f.inject(PortRole::ext, in.back()));
  }
  f.dp->step(kMs);
  ASSERT_TRUE(cap.stop("", res, err)) << err;
  EXPECT_EQ(res["frames_rx"], 10);
  EXPECT_EQ(res["frames_tx"], 0);
  PcapNg p = read_pcapng(path);
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.ifaces.size(), 1u);
  EXPECT_EQ(p.ifaces[0].name, "ext-rx");
  EXPECT_EQ(p.ifaces[0].snaplen, 64u);
  ASSERT_EQ(p.packets.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(p.packets[i].flags & 3u, 1u);
    EXPECT_EQ(p.packets[i].orig_len, in[i].size());
    EXPECT_EQ(p.packets[i].cap_len, 64u);
    EXPECT_EQ(p.packets[i].data, Bytes(in[i].begin(), in[i].begin() + 64));
  }
  if (have_tshark()) {
    std::string out = tshark_lines(path);
    EXPECT_EQ(out.find("tshark failed"), std::string::npos) << out;
    EXPECT_NE(out.find(std::to_string(in[0].size()) + "\t64\text-rx\t0x00000001\n"), std::string::npos) << out;
  }
  // Bad requests.
  req.rx = false;
  EXPECT_FALSE(cap.start(req, res, err));
  req = request("host", path);
  EXPECT_FALSE(cap.start(req, res, err)) << "no host port in this rig";
  EXPECT_NE(err.find("no host port"), std::string::npos) << err;
  req = request("ext", path);
  req.path = "/nonexistent-dir/x.pcapng";  // a path, not a name
  EXPECT_FALSE(cap.start(req, res, err));
  EXPECT_NE(err.find("not a file name"), std::string::npos) << err;
  Capture::Options nowhere = cap_opts(1u << 20);
  nowhere.dir = "/dev/null/sub";  // cannot be made
  Capture cap2(*f.dp, nowhere);
  EXPECT_FALSE(cap2.start(request("ext", path), res, err));
  EXPECT_NE(err.find("directory /dev/null/sub"), std::string::npos) << err;
  EXPECT_FALSE(cap.stop("ext", res, err)) << "nothing under way";
  std::remove(path.c_str());
}

TEST_F(DataplaneCapture, FullRingIsCountedAndMaxBytesEndsTheFileWhole) {
  Fixture f("capfull");
  ASSERT_TRUE(f.dp) << f.error;
  // 4 KiB of ring, not drained until stop: a burst of 30 frames of 300+ bytes cannot fit.
  Capture cap(*f.dp, cap_opts(4096));
  const std::string path = temp_path("full");
  auto req = request("ext", path);
  req.tx = false;
  ctrl::Json res;
  std::string err;
  ASSERT_TRUE(cap.start(req, res, err)) << err;
  for (uint16_t i = 0; i < 30; ++i) {  // one rx burst (32)
    Conversation c(conv_params(static_cast<uint16_t>(42000 + i)));
    ASSERT_TRUE(f.inject(PortRole::ext, c.client_data(1, test::stream_bytes(i, 0, 300), 1)));
  }
  f.dp->step(kMs);
  ASSERT_TRUE(cap.stop("ext", res, err)) << err;
  const auto frames = res["frames"].get<uint64_t>(), dropped = res["copies_dropped"].get<uint64_t>();
  EXPECT_GT(frames, 0u);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(frames + dropped, 30u) << res;
  PcapNg p = read_pcapng(path);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.packets.size(), frames);

  // max_bytes: room for the headers and three of these frames' blocks.
  std::remove(path.c_str());  // a capture never overwrites a file
  auto small = request("ext", path);
  small.max_bytes = 28 + 100 + 100 + 3 * 400;
  ASSERT_TRUE(cap.start(small, res, err)) << err;
  for (uint16_t i = 0; i < 8; ++i) {
    Conversation c(conv_params(static_cast<uint16_t>(43000 + i)));
    ASSERT_TRUE(f.inject(PortRole::ext, c.client_data(1, test::stream_bytes(i, 0, 300), 1)));
  }
  f.dp->step(2 * kMs);
  ASSERT_TRUE(cap.stop("ext", res, err)) << err;
  EXPECT_EQ(res["stopped_at_max_bytes"], true) << res;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  EXPECT_LE(static_cast<uint64_t>(in.tellg()), small.max_bytes);
  EXPECT_EQ(static_cast<uint64_t>(in.tellg()), res["bytes"].get<uint64_t>());
  p = read_pcapng(path);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_GE(p.packets.size(), 2u);
  EXPECT_LT(p.packets.size(), 8u);
  if (have_tshark()) {
    std::string out = tshark_lines(path);
    EXPECT_EQ(out.find("tshark failed"), std::string::npos) << out;
  }
  small.max_bytes = 40;
  EXPECT_FALSE(cap.start(small, res, err)) << "max_bytes below the headers";
  std::remove(path.c_str());
}

TEST_F(DataplaneCapture, FramesTheDeviceRefusedAreNotInTheFile) {
  // 64-slot rings: the PVM's tx ring takes 63 frames, then refuses.
  Fixture f("caprefuse", 64);
  ASSERT_TRUE(f.dp) << f.error;
  Capture cap(*f.dp, cap_opts(1u << 20));
  const std::string path = temp_path("refuse");
  auto req = request("pvm", path);
  req.rx = false;
  ctrl::Json res;
  std::string err;
  ASSERT_TRUE(cap.start(req, res, err)) << err;
  uint64_t t = 0;
  for (int round = 0; round < 3; ++round) {
    for (uint16_t i = 0; i < 30; ++i) {  // one rx burst (32) each
      Conversation c(conv_params(static_cast<uint16_t>(44000 + round * 100 + i)));
      ASSERT_TRUE(f.inject(PortRole::ext, c.client_syn()));
    }
    f.dp->step(t += kMs);
  }
  ASSERT_TRUE(cap.stop("pvm", res, err)) << err;
  auto sent = f.rig->collect(PortRole::pvm);
  ASSERT_EQ(sent.size(), 63u) << "the device took 63 of 90";
  EXPECT_EQ(f.dp->report().total.port[static_cast<unsigned>(PortRole::pvm)].tx_dropped, 27u);
  EXPECT_EQ(res["frames_tx"], 63);
  PcapNg p = read_pcapng(path);
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.packets.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(p.packets[i].flags & 3u, 2u);
    EXPECT_EQ(p.packets[i].data, sent[i]) << "packet " << i;
  }
  std::remove(path.c_str());
}

// Issue 18, 1: a member of the ctrl group made the root daemon overwrite any file.
TEST_F(DataplaneCapture, FilesOnlyByNameInTheCaptureDirNeverOverwrittenMode0640) {
  Fixture f("capsafe");
  ASSERT_TRUE(f.dp) << f.error;
  const std::string dir = cap_dir() + "_safe";
  const std::string victim = cap_dir() + "_victim";
  {
    std::ofstream(victim) << "precious\n";
  }
  gid_t gid = getgid() == 0 ? 4 : getgid();  // a group other than root's when we are root
  if (group* g = getgrnam("adm")) gid = g->gr_gid;
  Capture::Options o = cap_opts(1u << 20);
  o.dir = dir;
  o.gid = static_cast<long>(gid);
  Capture cap(*f.dp, o);
  ctrl::Json res;
  std::string err;
  for (const std::string& bad : {victim, "../" + victim.substr(victim.rfind('/') + 1), std::string("a/b"),
                                std::string(".."), std::string("."), std::string(".hidden"),
                                std::string("x\ny")}) {
    ctrl::CaptureRequest r;
    r.port = "pvm";
    r.path = bad;
    EXPECT_FALSE(cap.start(r, res, err)) << "accepted '" << bad << "'";
  }
  std::ifstream v(victim);
  std::string line;
  std::getline(v, line);
  EXPECT_EQ(line, "precious") << "the file outside the capture directory was written";

  // A symlink planted in the directory, and a file already there: neither is followed
  // nor overwritten.
  ASSERT_EQ(mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST, true);
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/planted.pcapng").c_str()), 0);
  {
    std::ofstream(dir + "/old.pcapng") << "old\n";
  }
  ctrl::CaptureRequest r;
  r.port = "pvm";
  r.path = "planted.pcapng";
  EXPECT_FALSE(cap.start(r, res, err)) << "followed a symlink";
  r.path = "old.pcapng";
  EXPECT_FALSE(cap.start(r, res, err)) << "overwrote a file";
  EXPECT_NE(err.find("exists"), std::string::npos) << err;
  std::ifstream v2(victim);
  std::getline(v2, line);
  EXPECT_EQ(line, "precious");

  // A name: created in the directory, 0640, the ctrl group's; no name: PORT-TIME.pcapng.
  r.path = "good.pcapng";
  ASSERT_TRUE(cap.start(r, res, err)) << err;
  EXPECT_EQ(res["path"], dir + "/good.pcapng");
  ASSERT_TRUE(cap.stop("pvm", res, err)) << err;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/good.pcapng").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  if (getuid() == 0) {
    EXPECT_EQ(st.st_gid, gid);
  }
  r.path.clear();
  ASSERT_TRUE(cap.start(r, res, err)) << err;
  const std::string auto_path = res["path"].get<std::string>();
  EXPECT_EQ(auto_path.rfind(dir + "/pvm-", 0), 0u) << auto_path;
  ASSERT_TRUE(cap.stop("pvm", res, err)) << err;
  for (const char* n : {"/good.pcapng", "/old.pcapng", "/planted.pcapng"}) {
    std::remove((dir + n).c_str());
  }
  std::remove(auto_path.c_str());
  rmdir(dir.c_str());
  std::remove(victim.c_str());
}


// ---- -g NAME: one guest's frames, on its own ports and on a shared one ------------------

Bytes mac_at(Bytes b, bool destination, const std::array<uint8_t, 6>& mac) {
  std::copy(mac.begin(), mac.end(), b.begin() + (destination ? 0 : 6));
  return b;
}

TEST_F(DataplaneCapture, OneGuestsFramesOnlyOnItsPortsAndItsShareOfASharedOne) {
  Config cfg;
  cfg.pool_mbufs = 4095;
  cfg.pool_cache = 0;
  Config sx, sa, sb;
  RingRig shared("cgs", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, sx);
  RingRig ra("cga", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, sa);
  RingRig rb("cgb", {PortRole::ext, PortRole::pvm, PortRole::svm}, 1, sb);
  const std::array<uint8_t, 6> mac_a{0x52, 0x54, 0, 0, 2, 0x0a}, mac_b{0x52, 0x54, 0, 0, 2, 0x0b};
  cfg.guests.resize(2);
  for (unsigned g = 0; g < 2; ++g) {
    const Config& own = g == 0 ? sa : sb;
    cfg.guests[g].name = g == 0 ? "a" : "b";
    dp::NicConfig nic;
    nic.ports = {sx.ports[0], own.ports[1], own.ports[2]};  // ext shared, VM ports own
    nic.mac = g == 0 ? mac_a : mac_b;
    nic.has_mac = true;
    cfg.guests[g].nics.push_back(nic);
  }
  std::string err;
  auto dpl = Dataplane::create(cfg, err);
  ASSERT_TRUE(dpl) << err;
  rte_mempool* pool = dpl->pool();
  {
    Capture cap(*dpl, cap_opts(1u << 20));
    const std::string ext_path = temp_path("g_ext"), pvm_path = temp_path("g_pvm");
    ctrl::Json res;
    EXPECT_FALSE(cap.start(request("link", temp_path("g_link")), 1, res, err));
    EXPECT_NE(err.find("no guest's NIC"), std::string::npos) << err;
    ASSERT_TRUE(cap.start(request("ext", ext_path), 1, res, err)) << err;
    EXPECT_EQ(res["guest"], "b");
    ASSERT_TRUE(cap.start(request("pvm", pvm_path), 1, res, err)) << err;

    Conversation ca(conv_params(48000)), cb(conv_params(48001));
    uint64_t t = 0;
    const Bytes syn_a = mac_at(ca.client_syn(), true, mac_a), syn_b = mac_at(cb.client_syn(), true, mac_b);
    const Bytes bcast = mac_at(ca.client_ack(0, 0), true, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    ASSERT_TRUE(shared.inject(PortRole::ext, pool, syn_a));
    ASSERT_TRUE(shared.inject(PortRole::ext, pool, syn_b));
    ASSERT_TRUE(shared.inject(PortRole::ext, pool, bcast));
    dpl->step(t += kMs);
    const Bytes sa_p = mac_at(ca.vm_synack(Vm::pvm), false, mac_a);
    const Bytes sb_p = mac_at(cb.vm_synack(Vm::pvm), false, mac_b);
    ASSERT_TRUE(ra.inject(PortRole::pvm, pool, sa_p));
    ASSERT_TRUE(ra.inject(PortRole::svm, pool, mac_at(ca.vm_synack(Vm::svm), false, mac_a)));
    ASSERT_TRUE(rb.inject(PortRole::pvm, pool, sb_p));
    ASSERT_TRUE(rb.inject(PortRole::svm, pool, mac_at(cb.vm_synack(Vm::svm), false, mac_b)));
    dpl->step(t += kMs);
    auto released = shared.collect(PortRole::ext);
    ASSERT_EQ(released.size(), 2u) << "both guests' SYN/ACKs on the shared ext";
    EXPECT_EQ(ra.collect(PortRole::pvm).size(), 2u) << "a's PVM: its SYN and the broadcast";
    EXPECT_EQ(rb.collect(PortRole::pvm).size(), 2u);

    ASSERT_TRUE(cap.stop("ext", res, err)) << err;
    EXPECT_EQ(res["frames_rx"], 2) << "b's SYN and the broadcast: not a's SYN";
    EXPECT_EQ(res["frames_tx"], 1) << "b's SYN/ACK: not a's";
    PcapNg p = read_pcapng(ext_path);
    ASSERT_TRUE(p.ok) << p.error;
    ASSERT_EQ(p.packets.size(), 3u);
    EXPECT_EQ(p.packets[0].data, syn_b);
    EXPECT_EQ(p.packets[1].data, bcast);
    EXPECT_TRUE(std::equal(mac_b.begin(), mac_b.end(), p.packets[2].data.begin() + 6))
        << "the frame sent to the clients is b's";
    EXPECT_EQ(p.packets[2].flags & 3u, 2u);

    ASSERT_TRUE(cap.stop("pvm", res, err)) << err;
    p = read_pcapng(pvm_path);
    ASSERT_TRUE(p.ok) << p.error;
    ASSERT_EQ(p.packets.size(), 3u) << "b's PVM port only: SYN and broadcast out, SYN/ACK in";
    for (const auto& k : p.packets) {
      const bool out = (k.flags & 3u) == 2u;
      const auto* mac = k.data.data() + (out ? 0 : 6);
      EXPECT_TRUE(std::equal(mac_b.begin(), mac_b.end(), mac) || (out && mac[0] == 0xff));
    }
    std::remove(ext_path.c_str());
    std::remove(pvm_path.c_str());
  }
  dpl->finish(10 * kMs);
  for (auto* r : {&shared, &ra, &rb})
    for (unsigned role = 0; role < 3; ++role) r->drain(static_cast<PortRole>(role));
  dpl->stop_ports(true);
  auto rep = dpl->report();
  EXPECT_EQ(rep.pool_avail, rep.pool_size) << "mbufs not returned";
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lockstep::dptest::EalEnv("dpcap"));
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  std::filesystem::remove_all(lockstep::cap_dir(), ec);  // the files each test left
  return rc;
}
