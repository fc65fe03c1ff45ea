// The chardev port: framing, pool, SYN/ACK alignment (pure), and lockstep-colo as a
// process over real unix and TCP sockets. The arguments are the command that starts it:
// the lockstep-colo binary, or the lockstepd binary and --colo-compare (then
// --gtest_filter=LockstepColo.* runs only the process tests).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "dataplane/chardev/chardev_codec.h"
#include "dataplane/chardev/frame_pool.h"
#include "dataplane/chardev/syn_align.h"
#include "tests/qemu/colo_peer.h"
#include "tests/support/frame_builder.h"

namespace lockstep {
namespace {

using chardev::ChardevParser;
using chardev::ParseStatus;
using test::Bytes;

std::string g_bin;

Bytes framed(const Bytes& f, bool vnet, uint32_t vnet_len = 0) {
  Bytes out(8);
  size_t h = chardev::encode_header(out.data(), static_cast<uint32_t>(f.size()), vnet, vnet_len);
  out.resize(h);
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

// Feeds `bytes` in chunks of `chunk` and collects the frames.
std::vector<Bytes> parse_all(ChardevParser& p, const Bytes& bytes, size_t chunk, ParseStatus* last = nullptr) {
  std::vector<Bytes> frames;
  Bytes buf;
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    const uint8_t* q = bytes.data() + off;
    const uint8_t* end = bytes.data() + std::min(bytes.size(), off + chunk);
    while (q < end || p.in_body()) {
      ParseStatus st = p.step(q, end);
      if (last) *last = st;
      if (st == ParseStatus::need_buffer) {
        buf.assign(p.body_len(), 0);
        p.set_buffer(buf.data());
        continue;
      }
      if (st == ParseStatus::frame) {
        frames.push_back(buf);
        continue;
      }
      if (st == ParseStatus::empty) continue;
      if (st == ParseStatus::need_more) break;
      return frames;  // error
    }
  }
  return frames;
}

Bytes udp_frame(const std::string& payload, uint16_t ip_id = 1, uint16_t sport = 5000) {
  test::FrameSpec s;
  s.src = test::ip4(10, 0, 0, 1);
  s.dst = test::ip4(10, 0, 0, 2);
  s.proto = kProtoUdp;
  s.sport = sport;
  s.dport = 6000;
  s.ip_id = ip_id;
  s.payload.assign(payload.begin(), payload.end());
  return test::build_frame(s);
}

TEST(ChardevCodec, RoundTripAnySplit) {
  for (bool vnet : {false, true}) {
    Bytes stream;
    std::vector<Bytes> sent;
    for (int i = 0; i < 20; ++i) {
      Bytes f = udp_frame(std::string(static_cast<size_t>(i * 37), 'a' + char(i)));
      if (vnet) f.insert(f.begin(), 12, uint8_t(i));  // a 12-byte virtio-net header
      sent.push_back(f);
      Bytes fr = framed(f, vnet, vnet ? 12 : 0);
      stream.insert(stream.end(), fr.begin(), fr.end());
    }
    for (size_t chunk : {size_t{1}, size_t{3}, size_t{7}, size_t{64}, stream.size()}) {
      ChardevParser p(vnet);
      EXPECT_EQ(parse_all(p, stream, chunk), sent) << "chunk " << chunk << " vnet " << vnet;
    }
  }
}

TEST(ChardevCodec, LimitIsQemusNetBufsize) {
  ChardevParser p(true);
  Bytes max(chardev::kMaxFrameLen, 0x5a);
  ParseStatus last{};
  auto got = parse_all(p, framed(max, true, 10), 4096, &last);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].size(), 69632u);

  ChardevParser q(false);
  Bytes hdr(4);
  chardev::encode_header(hdr.data(), chardev::kMaxFrameLen + 1, false, 0);
  const uint8_t* c = hdr.data();
  EXPECT_EQ(q.step(c, hdr.data() + 4), ParseStatus::oversize);
  EXPECT_TRUE(q.dead());
  Bytes more(100, 0);
  c = more.data();
  EXPECT_EQ(q.step(c, more.data() + more.size()), ParseStatus::oversize);  // stays dead
}

TEST(ChardevCodec, BadVnetLenAndEmptyFrames) {
  ChardevParser p(true);
  Bytes h(8);
  chardev::encode_header(h.data(), 0, true, 0);
  const uint8_t* c = h.data();
  EXPECT_EQ(p.step(c, h.data() + 8), ParseStatus::empty);
  chardev::encode_header(h.data(), 10, true, 11);
  c = h.data();
  EXPECT_EQ(p.step(c, h.data() + 8), ParseStatus::bad_vnet_len);
}

TEST(FramePool, ClassesAndExhaustion) {
  chardev::FramePool pool(2, 1);
  uint32_t a = pool.alloc(100), b = pool.alloc(2048), c = pool.alloc(60);  // c: jumbo fallback
  EXPECT_NE(a, chardev::kNoFrame);
  EXPECT_NE(b, chardev::kNoFrame);
  EXPECT_NE(c, chardev::kNoFrame);
  EXPECT_EQ(pool.alloc(10), chardev::kNoFrame);
  EXPECT_EQ(pool.waits(), 1u);
  pool.free(a);
  EXPECT_FALSE(pool.can_alloc(5000));
  EXPECT_TRUE(pool.can_alloc(50));
  pool.free(c);
  uint32_t j = pool.alloc(69632);
  ASSERT_NE(j, chardev::kNoFrame);
  std::memset(pool.data(j), 1, 69632);  // the whole buffer is writable
  chardev::HandleRing r(3);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_TRUE(r.push(i));
  EXPECT_FALSE(r.push(9));
  EXPECT_EQ(r.front(), 0u);
  r.pop();
  EXPECT_EQ(r.at(2), 3u);
}

TEST(SynAligner, SvmSynAckGetsThePvmIsn) {
  test::Conversation conv({});
  chardev::SynAligner al(64);
  Bytes pvm = conv.vm_synack(test::Vm::pvm), svm = conv.vm_synack(test::Vm::svm);
  Bytes svm2 = svm;
  EXPECT_EQ(al.on_svm(svm2.data(), uint32_t(svm2.size())), chardev::AlignVerdict::wait);
  al.on_pvm(pvm.data(), uint32_t(pvm.size()));
  EXPECT_EQ(al.on_svm(svm2.data(), uint32_t(svm2.size()), true), chardev::AlignVerdict::aligned);
  EXPECT_EQ(test::decode(svm2).seq, conv.vm_isn(test::Vm::pvm));
  EXPECT_TRUE(test::verify_l4_checksum(svm2));
  EXPECT_EQ(al.counters().svm_synacks_waited, 1u);
  // Data and the VM's own SYN (active open) pass untouched.
  Bytes data = conv.vm_stream(test::Vm::svm, 0, 100);
  Bytes copy = data;
  EXPECT_EQ(al.on_svm(copy.data(), uint32_t(copy.size())), chardev::AlignVerdict::pass);
  EXPECT_EQ(copy, data);
  Bytes syn = conv.vm_syn(test::Vm::svm);
  EXPECT_EQ(al.on_svm(syn.data(), uint32_t(syn.size())), chardev::AlignVerdict::pass);
}

// The aligner reads a few bytes to pass over frames that cannot be SYN/ACKs; every shape
// of SYN/ACK the parser knows must still reach it, and nothing else may be touched.
TEST(SynAligner, EveryShapeOfSynAckIsAlignedOthersPass) {
  struct Shape {
    const char* name;
    bool v6;
    std::vector<uint16_t> vlans;
    std::vector<uint8_t> ip_options;
    bool hop_by_hop;
  };
  const std::vector<Shape> shapes = {
      {"ipv4", false, {}, {}, false},
      {"ipv4 options", false, {}, {1, 1, 1, 1, 1, 1, 1, 1}, false},
      {"802.1Q", false, {100}, {}, false},
      {"QinQ", false, {100, 200}, {}, false},
      {"ipv6", true, {}, {}, false},
      {"ipv6 hop-by-hop", true, {}, {}, true},
      {"ipv6 802.1Q", true, {7}, {}, false},
  };
  for (const Shape& sh : shapes) {
    SCOPED_TRACE(sh.name);
    chardev::SynAligner al(64);
    test::FrameSpec sp;
    sp.src = sh.v6 ? test::ip6_doc(10) : test::ip4(192, 0, 2, 10);
    sp.dst = sh.v6 ? test::ip6_doc(20) : test::ip4(198, 51, 100, 20);
    sp.proto = kProtoTcp;
    sp.sport = 80;
    sp.dport = 40000;
    sp.vlans = sh.vlans;
    sp.ip_options = sh.ip_options;
    sp.ip6_hop_by_hop = sh.hop_by_hop;
    sp.flags = kTcpSyn | kTcpAck;
    sp.ack = 1001;
    sp.seq = 5000;
    const Bytes pvm = test::build_frame(sp);
    sp.seq = 777777;
    Bytes svm = test::build_frame(sp);
    al.on_pvm(pvm.data(), uint32_t(pvm.size()));
    EXPECT_EQ(al.on_svm(svm.data(), uint32_t(svm.size())), chardev::AlignVerdict::aligned);
    EXPECT_EQ(test::decode(svm).seq, 5000u);
    EXPECT_TRUE(test::verify_l4_checksum(svm));
    // The same flow's data, a bare SYN, UDP: passed over, untouched.
    for (uint8_t flags : {uint8_t(kTcpAck | kTcpPsh), uint8_t(kTcpSyn), uint8_t(kTcpAck)}) {
      sp.flags = flags;
      sp.payload = flags == kTcpSyn ? Bytes{} : Bytes(40, 'x');
      Bytes f = test::build_frame(sp), copy = f;
      EXPECT_EQ(al.on_svm(copy.data(), uint32_t(copy.size())), chardev::AlignVerdict::pass);
      EXPECT_EQ(copy, f);
    }
    sp.proto = kProtoUdp;
    Bytes u = test::build_frame(sp), ucopy = u;
    EXPECT_EQ(al.on_svm(ucopy.data(), uint32_t(ucopy.size())), chardev::AlignVerdict::pass);
    EXPECT_EQ(ucopy, u);
    EXPECT_EQ(al.counters().svm_synacks_aligned, 1u);
  }
}

// ---- lockstep-colo as a process ----------------------------------------------------

struct Colo {
  std::filesystem::path dir;
  qtest::Instance inst;
  explicit Colo(const std::vector<std::string>& props, const char* name = "ls") {
    char tmpl[] = "/tmp/lockstep-chardev-XXXXXX";
    dir = mkdtemp(tmpl);
    inst.name = name;
    inst.dir = dir.string();
    std::string err;
    EXPECT_TRUE(qtest::start_lockstep(inst, g_bin, props, err)) << err;
  }
  nlohmann::json stop() {
    std::string log = qtest::stop(inst);
    size_t p = log.rfind("\n{");
    std::string line = log.substr(p == std::string::npos ? 0 : p + 1);
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << log;
    return j;
  }
  ~Colo() {
    if (inst.pid > 0) qtest::stop(inst);
    std::filesystem::remove_all(dir);
  }
};

// Reads one frame in chardev framing (no vnet header) from a blocking socket; empty on
// end of stream, error or timeout.
Bytes read_framed(int fd) {
  auto read_exact = [fd](uint8_t* p, size_t n) {
    for (size_t got = 0; got < n;) {
      const ssize_t r = read(fd, p + got, n - got);
      if (r <= 0) return false;
      got += size_t(r);
    }
    return true;
  };
  uint8_t h[4];
  if (!read_exact(h, 4)) return {};
  Bytes f(uint32_t{h[0]} << 24 | uint32_t{h[1]} << 16 | uint32_t{h[2]} << 8 | h[3]);
  if (!read_exact(f.data(), f.size())) return {};
  return f;
}

bool wait_for(const std::function<bool()>& f, int ms = 5000) {
  for (int i = 0; i < ms / 5; ++i) {
    if (f()) return true;
    usleep(5000);
  }
  return f();
}

TEST(LockstepColo, ReleasesMatchedFramesByteExactAndSplitAnywhere) {
  Colo colo({"compare_timeout=2000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  ASSERT_TRUE(peer.hello(err)) << err;
  peer.start(1'000'000, true);
  std::vector<Bytes> pvm;
  Bytes pstream, sstream;
  for (int i = 0; i < 200; ++i) {
    Bytes p = udp_frame("datagram " + std::to_string(i), uint16_t(i), uint16_t(5000 + i % 7));
    Bytes s = udp_frame("datagram " + std::to_string(i), uint16_t(9000 + i), uint16_t(5000 + i % 7));
    pvm.push_back(p);
    Bytes fp = framed(p, false), fs = framed(s, false);
    pstream.insert(pstream.end(), fp.begin(), fp.end());
    sstream.insert(sstream.end(), fs.begin(), fs.end());
  }
  // Write both streams in odd-sized pieces so frames straddle reads.
  std::mt19937 rng(7);
  for (size_t po = 0, so = 0; po < pstream.size() || so < sstream.size();) {
    size_t n = 1 + rng() % 300;
    if (po < pstream.size()) {
      size_t k = std::min(n, pstream.size() - po);
      ASSERT_TRUE(peer.send_raw(false, pstream.data() + po, k));
      po += k;
    }
    if (so < sstream.size()) {
      size_t k = std::min(n, sstream.size() - so);
      ASSERT_TRUE(peer.send_raw(true, sstream.data() + so, k));
      so += k;
    }
  }
  ASSERT_TRUE(wait_for([&] { return peer.released() >= pvm.size(); }));
  usleep(50000);
  peer.stop_reader();
  EXPECT_EQ(peer.frames, pvm);
  EXPECT_EQ(peer.do_checkpoints(), 0u);
  auto j = colo.stop();
  EXPECT_EQ(j["conservation"], "ok");
  EXPECT_EQ(j["engine"]["datagrams_matched"], 200);
  EXPECT_EQ(j["ports"]["outdev"]["frames_out"], 200);
}

TEST(LockstepColo, VnetHeaderIsCarriedThrough) {
  Colo colo({"vnet_hdr_support=on"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, true, err)) << err;
  ASSERT_TRUE(peer.hello(err)) << err;  // the hello carries the vnet word inbound
  // Raw frames with a 10-byte vnet header: [len][vnet_len=10][10 bytes][frame].
  Bytes f = udp_frame("with vnet");
  Bytes body(10 + f.size(), 0xee);
  std::copy(f.begin(), f.end(), body.begin() + 10);
  Bytes p = framed(body, true, 10), s = framed(body, true, 10);
  ASSERT_TRUE(peer.send_raw(false, p.data(), p.size()));
  ASSERT_TRUE(peer.send_raw(true, s.data(), s.size()));
  peer.start(1'000'000, true);
  ASSERT_TRUE(wait_for([&] { return peer.released() >= 1; }));
  peer.stop_reader();
  ASSERT_EQ(peer.frames.size(), 1u);
  EXPECT_EQ(peer.frames[0], body);
  EXPECT_EQ(colo.stop()["engine"]["datagrams_matched"], 1);
}

TEST(LockstepColo, OversizeClosesOnlyThatConnectionAndItReconnects) {
  Colo colo({"replace_peer=on"});  // QEMU's behaviour: the new peers replace the old
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  peer.start(1'000'000, true);
  Bytes big(8);
  chardev::encode_header(big.data(), chardev::kMaxFrameLen + 1, false, 0);
  big.resize(4);
  ASSERT_TRUE(peer.send_raw(false, big.data(), big.size()));
  usleep(100000);
  // A new primary_in peer (as QEMU's reconnecting chardev) carries on.
  qtest::Peer again;
  ASSERT_TRUE(again.connect(colo.inst, false, err)) << err;  // replaces all four
  again.start(1'000'000, true);
  Bytes p = udp_frame("after"), s = udp_frame("after", 77);
  ASSERT_TRUE(again.send_pvm(p.data(), uint32_t(p.size())));
  ASSERT_TRUE(again.send_svm(s.data(), uint32_t(s.size())));
  ASSERT_TRUE(wait_for([&] { return again.released() >= 1; }));
  again.stop_reader();
  peer.stop_reader();
  auto j = colo.stop();
  EXPECT_EQ(j["ports"]["primary_in"]["oversize"], 1);
  EXPECT_GE(j["ports"]["primary_in"]["connects"].get<int>(), 2);
  EXPECT_EQ(j["conservation"], "ok");
}

TEST(LockstepColo, OneDoCheckpointPerEpochThenRelease) {
  Colo colo({"compare_timeout=5000", "--set", "datagram_reorder_slack=0"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;  // no hello: QEMU needs none
  std::vector<Bytes> pvm;
  for (int i = 0; i < 50; ++i) {
    Bytes p = udp_frame("pvm says " + std::to_string(i), uint16_t(i), uint16_t(7000 + i));
    Bytes s = udp_frame("svm says " + std::to_string(i), uint16_t(i), uint16_t(7000 + i));
    pvm.push_back(p);
    ASSERT_TRUE(peer.send_pvm(p.data(), uint32_t(p.size())));
    ASSERT_TRUE(peer.send_svm(s.data(), uint32_t(s.size())));
  }
  // Answer after 200 ms: every divergence of the epoch is coalesced into one request.
  peer.start(200'000'000, true);
  ASSERT_TRUE(wait_for([&] { return peer.released() >= pvm.size(); }));
  usleep(100000);
  peer.stop_reader();
  EXPECT_EQ(peer.do_checkpoints(), 1u);
  EXPECT_EQ(peer.frames, pvm);  // arrival order
  auto j = colo.stop();
  EXPECT_EQ(j["notify"]["do_checkpoint_sent"], 1);
  EXPECT_EQ(j["engine"]["checkpoints_done"], 1);
}

// Writes every frame as a PVM/SVM pair from a thread while outdev is not read for half a
// second, then reads outdev until all are released (and stops the reader).
::testing::AssertionResult send_pairs_with_outdev_stalled(qtest::Peer& peer,
                                                          const std::vector<Bytes>& pvm) {
  std::thread tx([&] {
    for (const auto& f : pvm) {
      peer.send_pvm(f.data(), uint32_t(f.size()));
      peer.send_svm(f.data(), uint32_t(f.size()));
    }
  });
  usleep(500000);
  peer.start(1'000'000, true);
  tx.join();
  const bool all = wait_for([&] { return peer.released() >= pvm.size(); }, 20000);
  peer.stop_reader();
  if (!all) return ::testing::AssertionFailure() << "released " << peer.released() << " of " << pvm.size();
  return ::testing::AssertionSuccess();
}

TEST(LockstepColo, FullOutputQueueStopsPrimaryInNothingIsDropped) {
  Colo colo({"out_queue_frames=8", "compare_timeout=10000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  const int n = 20000;
  std::vector<Bytes> pvm;
  for (int i = 0; i < n; ++i) {
    pvm.push_back(udp_frame(std::string(600, char('a' + i % 26)) + std::to_string(i), uint16_t(i),
                            uint16_t(5000 + i % 16)));
  }
  // The filters write pair by pair while outdev is not read: lockstep-colo must stop
  // reading its inputs (the writes then block in the kernel) and lose nothing.
  ASSERT_TRUE(send_pairs_with_outdev_stalled(peer, pvm));
  EXPECT_EQ(peer.frames.size(), pvm.size());
  EXPECT_TRUE(peer.frames == pvm);
  auto j = colo.stop();
  EXPECT_GE(j["ports"]["primary_in"]["backpressure"].get<int>(), 1);
  EXPECT_EQ(j["conservation"], "ok");
  EXPECT_EQ(peer.do_checkpoints(), 0u) << j.dump();
}

// Small frames go to outdev copied into runs, large ones from their own buffers; with
// outdev not read at first, writes stop part-way through either kind (and through a
// header), and the rest follows byte-exact once it is read.
TEST(LockstepColo, MixedSizesThroughAStalledOutdevArriveByteExact) {
  Colo colo({"compare_timeout=10000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  const int n = 6000;
  const size_t sizes[] = {1, 40, 190, 230, 700, 1400, 1900, 17};
  std::vector<Bytes> pvm;
  for (int i = 0; i < n; ++i) {
    std::string text(sizes[i % 8] + size_t(i % 13), char('a' + i % 26));
    text += std::to_string(i);
    pvm.push_back(udp_frame(text, uint16_t(i), uint16_t(5000 + i % 16)));
  }
  ASSERT_TRUE(send_pairs_with_outdev_stalled(peer, pvm));
  ASSERT_EQ(peer.frames.size(), pvm.size());
  EXPECT_TRUE(peer.frames == pvm);
  auto j = colo.stop();
  EXPECT_EQ(j["conservation"], "ok");
  EXPECT_EQ(j["ports"]["outdev"]["frames_out"], n);
  EXPECT_EQ(peer.do_checkpoints(), 0u) << j.dump();
}

TEST(LockstepColo, ClientOutdevReconnectsAndGetsWhatWasQueued) {
  char tmpl[] = "/tmp/lockstep-chardev-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  const std::string outp = (dir / "collector").string();
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, outp.c_str());
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  qtest::Instance inst{"ls", dir.string()};
  std::string err;
  // outdev as a client: lockstep-colo connects to the collector, as to QEMU's
  // filter-redirector chardev in server mode.
  std::vector<std::string> argv{"primary_in=unix:" + inst.path("pri") + ",server",
                                "secondary_in=unix:" + inst.path("sec") + ",server",
                                "outdev=unix:" + outp + ",reconnect=1"};
  ASSERT_TRUE(qtest::spawn_lockstep(inst, g_bin, argv, err)) << err;
  auto conn = [&](const std::string& path) {
    for (int i = 0; i < 500; ++i) {
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un s{};
      s.sun_family = AF_UNIX;
      std::strcpy(s.sun_path, path.c_str());
      if (connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof s) == 0) return fd;
      close(fd);
      usleep(10000);
    }
    return -1;
  };
  int pri = conn(inst.path("pri")), sec = conn(inst.path("sec"));
  ASSERT_GE(pri, 0);
  ASSERT_GE(sec, 0);
  auto pair = [&](const std::string& text) {
    Bytes p = framed(udp_frame(text), false), s = framed(udp_frame(text, 99), false);
    ASSERT_EQ(write(pri, p.data(), p.size()), ssize_t(p.size()));
    ASSERT_EQ(write(sec, s.data(), s.size()), ssize_t(s.size()));
  };
  int c1 = accept(lfd, nullptr, nullptr);
  ASSERT_GE(c1, 0);
  pair("first");
  EXPECT_EQ(read_framed(c1), udp_frame("first"));
  close(c1);  // the collector goes away; lockstep-colo queues and reconnects
  usleep(100000);
  pair("second");
  pair("third");
  int c2 = accept(lfd, nullptr, nullptr);  // within reconnect=1 s
  ASSERT_GE(c2, 0);
  EXPECT_EQ(read_framed(c2), udp_frame("second"));
  EXPECT_EQ(read_framed(c2), udp_frame("third"));
  close(c2);
  close(pri);
  close(sec);
  close(lfd);
  qtest::stop(inst);
  std::filesystem::remove_all(dir);
}

// QEMU's documented setup over TCP: the filters' chardevs are servers that lockstep
// connects to (primary_in, outdev), the SVM's stream and the checkpointer connect to
// lockstep (secondary_in, notify_dev on ports the kernel picks). Matched output is
// released, a divergence asks once and is released on COLO_CHECKPOINT, and a primary_in
// peer that goes away is reconnected to.
TEST(LockstepColo, TcpClientAndServerSockets) {
  auto listen_tcp = [](uint16_t& port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0) return -1;
    socklen_t n = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    port = ntohs(a.sin_port);
    return fd;
  };
  auto connect_tcp = [](uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  };
  auto write_all = [](int fd, const Bytes& b) {
    return write(fd, b.data(), b.size()) == ssize_t(b.size());
  };
  // No read or accept may hang the test: every socket it waits on gets a 5 s timeout.
  auto with_timeout = [](int fd) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  };

  char tmpl[] = "/tmp/lockstep-chardev-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  uint16_t pri_port = 0, out_port = 0;
  int pri_l = listen_tcp(pri_port), out_l = listen_tcp(out_port);
  ASSERT_GE(pri_l, 0);
  ASSERT_GE(out_l, 0);
  with_timeout(pri_l);  // accept() gives up after 5 s too
  with_timeout(out_l);
  qtest::Instance inst{"ls", dir.string()};
  std::string err;
  ASSERT_TRUE(qtest::spawn_lockstep(
      inst, g_bin,
      {"primary_in=tcp:127.0.0.1:" + std::to_string(pri_port) + ",reconnect=1",
       "secondary_in=tcp:127.0.0.1:0,server",
       "outdev=tcp:127.0.0.1:" + std::to_string(out_port) + ",reconnect=1",
       "notify_dev=tcp:127.0.0.1:0,server", "compare_timeout=5000", "--set",
       "datagram_reorder_slack=0"},
      err))
      << err;
  // The server ports the kernel picked, from the ready line.
  uint16_t sec_port = 0, ntf_port = 0;
  ASSERT_TRUE(wait_for([&] {
    std::ifstream f(dir / "ls.log");
    std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto port_of = [&](const std::string& key) -> uint16_t {
      const size_t k = log.find(key + "=tcp:127.0.0.1:");
      return k == std::string::npos ? 0 : uint16_t(std::atoi(log.c_str() + k + key.size() + 15));
    };
    sec_port = port_of("secondary_in");
    ntf_port = port_of("notify_dev");
    return sec_port != 0 && ntf_port != 0;
  }));
  int pri = with_timeout(accept(pri_l, nullptr, nullptr));
  int out = with_timeout(accept(out_l, nullptr, nullptr));
  int sec = connect_tcp(sec_port), ntf = with_timeout(connect_tcp(ntf_port));
  ASSERT_GE(pri, 0);
  ASSERT_GE(out, 0);
  ASSERT_GE(sec, 0);
  ASSERT_GE(ntf, 0);

  // A matched pair is released.
  ASSERT_TRUE(write_all(pri, framed(udp_frame("same"), false)));
  ASSERT_TRUE(write_all(sec, framed(udp_frame("same", 77), false)));
  EXPECT_EQ(read_framed(out), udp_frame("same"));
  // A divergent pair: DO_CHECKPOINT, then the PVM's frame on COLO_CHECKPOINT.
  ASSERT_TRUE(write_all(pri, framed(udp_frame("pvm"), false)));
  ASSERT_TRUE(write_all(sec, framed(udp_frame("svm"), false)));
  Bytes msg = read_framed(ntf);
  EXPECT_EQ(std::string(msg.begin(), msg.end()), "DO_CHECKPOINT");
  const std::string done = "COLO_CHECKPOINT";
  Bytes answer = framed(Bytes(done.begin(), done.end()), false);
  ASSERT_TRUE(write_all(ntf, answer));
  EXPECT_EQ(read_framed(out), udp_frame("pvm"));
  // primary_in's peer goes away (QEMU restarted): lockstep connects again.
  close(pri);
  pri = with_timeout(accept(pri_l, nullptr, nullptr));  // within reconnect=1 s
  ASSERT_GE(pri, 0);
  ASSERT_TRUE(write_all(pri, framed(udp_frame("again"), false)));
  ASSERT_TRUE(write_all(sec, framed(udp_frame("again", 78), false)));
  EXPECT_EQ(read_framed(out), udp_frame("again"));

  for (int fd : {pri, sec, out, ntf, pri_l, out_l}) close(fd);
  qtest::stop(inst);
  std::filesystem::remove_all(dir);
}

// Issue 18, 6: a server socket with a connected peer refuses a newcomer (logged with its
// credentials, counted) unless replace_peer=on; the connected peer carries on.
TEST(LockstepColo, ANewPeerIsRefusedWhileOneIsConnected) {
  Colo colo({"compare_timeout=5000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  ASSERT_TRUE(peer.hello(err)) << err;
  peer.start(1'000'000, true);
  // A second peer on primary_in, as another local user would: it is closed at once.
  int intruder = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, colo.inst.path("pri").c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(connect(intruder, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  timeval tv{3, 0};
  setsockopt(intruder, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  EXPECT_EQ(read(intruder, &c, 1), 0) << "the newcomer was not closed";
  close(intruder);
  // The connected peer still works.
  Bytes p = udp_frame("still here"), q = udp_frame("still here", 77);
  ASSERT_TRUE(peer.send_pvm(p.data(), uint32_t(p.size())));
  ASSERT_TRUE(peer.send_svm(q.data(), uint32_t(q.size())));
  ASSERT_TRUE(wait_for([&] { return peer.released() >= 1; }));
  peer.stop_reader();
  auto j = colo.stop();
  EXPECT_EQ(j["ports"]["primary_in"]["refused_peers"], 1) << j;
  EXPECT_EQ(j["ports"]["primary_in"]["replaced"], 0) << j;
  EXPECT_EQ(j["ports"]["primary_in"]["connects"], 1) << j;
  std::ifstream f(colo.dir / "ls.log");
  std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("primary_in: refused a new peer (pid "), std::string::npos) << log;
  EXPECT_NE(log.find(" uid " + std::to_string(getuid())), std::string::npos) << log;
}

// Issue 18, 4: SIGHUP does not end lockstep-colo (held PVM output would go with it); the
// output held at SIGHUP is released at SIGTERM.
TEST(LockstepColo, SighupKeepsRunningAndHeldOutputIsReleasedAtExit) {
  Colo colo({"compare_timeout=60000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  ASSERT_TRUE(peer.hello(err)) << err;
  peer.start(1'000'000, true);
  Bytes p = udp_frame("held over a SIGHUP");
  ASSERT_TRUE(peer.send_pvm(p.data(), uint32_t(p.size())));  // no SVM counterpart: held
  usleep(100000);
  ASSERT_EQ(kill(colo.inst.pid, SIGHUP), 0);
  usleep(200000);
  int status = 0;
  ASSERT_EQ(waitpid(colo.inst.pid, &status, WNOHANG), 0) << "SIGHUP ended lockstep-colo";
  EXPECT_EQ(peer.released(), 0u) << "released before its match or a checkpoint";
  kill(colo.inst.pid, SIGTERM);
  EXPECT_TRUE(wait_for([&] { return peer.released() >= 1; }));
  peer.stop_reader();
  auto j = colo.stop();
  EXPECT_EQ(j["conservation"], "ok") << j;
  ASSERT_EQ(peer.frames.size(), 1u);
  EXPECT_EQ(peer.frames[0], p);
}

// ---- the ctrl socket, events and metrics ----------------------------------------

// One request on the ctrl socket at `path` (one JSON line each way); null on failure.
nlohmann::json ctl(const std::string& path, const std::string& command,
                   const std::vector<std::string>& args = {}) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return nullptr;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req =
      nlohmann::json{{"command", command}, {"args", args}, {"id", 1}}.dump() + "\n";
  std::string line;
  if (write(fd, req.data(), req.size()) == ssize_t(req.size())) {
    char buf[65536];
    while (line.find('\n') == std::string::npos) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, size_t(n));
    }
  }
  close(fd);
  auto j = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

// GET /metrics over HTTP; the whole answer (headers included).
std::string http_metrics(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == ssize_t(req.size())) {
      char buf[65536];
      for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, size_t(n));
      }
    }
  }
  close(fd);
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// `lockstepctl --socket PATH ARGS` (the binary in $LOCKSTEPCTL): its output, or "" when
// that is not set.
std::string run_lockstepctl(const std::string& sock, const std::string& args, int* rc) {
  const char* bin = std::getenv("LOCKSTEPCTL");
  *rc = -1;
  if (bin == nullptr || *bin == '\0') return {};
  const std::string cmd = std::string(bin) + " --socket " + sock + " " + args + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  return out;
}

Bytes tcp_frame(uint32_t seq, uint8_t flags, const std::string& payload) {
  test::FrameSpec sp;
  sp.src = test::ip4(10, 0, 0, 2);
  sp.dst = test::ip4(10, 0, 0, 1);
  sp.proto = kProtoTcp;
  sp.sport = 80;
  sp.dport = 40000;
  sp.seq = seq;
  sp.ack = 5001;
  sp.flags = flags;
  sp.payload.assign(payload.begin(), payload.end());
  return test::build_frame(sp);
}

// Issue 19: with ctrl_socket= and metrics=, lockstep-colo answers lockstepctl's commands
// and Prometheus like lockstepd: a TCP response that differs between the VMs is a
// checkpoint request in status, events (the stream offset and both VMs' bytes) and
// explain; its completion has a duration; settings change live; /metrics has the reasons
// and the checkpoint duration histogram.
TEST(LockstepColo, CtrlSocketEventsExplainStatsConfigAndMetrics) {
  const std::string sock = (std::filesystem::temp_directory_path() /
                            ("lockstep-colo-ctl-" + std::to_string(getpid()))).string();
  std::filesystem::remove(sock);
  const std::string ro = sock + "-ro";
  std::filesystem::remove(ro);
  Colo colo({"compare_timeout=5000", "ctrl_socket=" + sock, "ctrl_ro_socket=" + ro,
             "metrics=tcp:127.0.0.1:0"});
  uint16_t mport = 0;
  ASSERT_TRUE(wait_for([&] {
    const std::string log = read_file(colo.dir / "ls.log");
    const size_t at = log.find("metrics on port ");
    if (at == std::string::npos) return false;
    mport = uint16_t(std::atoi(log.c_str() + at + 16));
    return mport != 0;
  })) << read_file(colo.dir / "ls.log");
  ASSERT_TRUE(wait_for([&] { return !ctl(sock, "version").is_null(); }));
  auto st0 = ctl(sock, "status");
  ASSERT_TRUE(st0.value("ok", false)) << st0;
  EXPECT_EQ(st0["result"]["daemon"]["checkpoint"]["requested"], 0) << st0;
  EXPECT_TRUE(st0["result"]["daemon"]["checkpoint"]["last_reason"].is_null()) << st0;

  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  peer.start(50'000'000, true);  // COLO_CHECKPOINT 50 ms after each DO_CHECKPOINT
  ASSERT_TRUE(wait_for([&] {
    auto s = ctl(sock, "status");
    return s["result"]["daemon"]["ports"]["notify_dev"].value("connected", false) &&
           s["result"]["daemon"]["ports"]["outdev"].value("connected", false);
  })) << ctl(sock, "status");
  const std::string pvm_text = "HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026\r\n\r\nhello";
  const std::string svm_text = "HTTP/1.1 200 OK\r\nDate: Tue, 08 Dec 2026\r\n\r\nhello";
  const size_t diff = pvm_text.find("Mon");
  for (const Bytes& f : {tcp_frame(1000, kTcpSyn | kTcpAck, ""),
                         tcp_frame(1001, kTcpAck | kTcpPsh, pvm_text)})
    ASSERT_TRUE(peer.send_pvm(f.data(), uint32_t(f.size())));
  for (const Bytes& f : {tcp_frame(1000, kTcpSyn | kTcpAck, ""),
                         tcp_frame(1001, kTcpAck | kTcpPsh, svm_text)})
    ASSERT_TRUE(peer.send_svm(f.data(), uint32_t(f.size())));
  ASSERT_TRUE(wait_for([&] { return peer.answered() >= 1; })) << ctl(sock, "status");

  // status: the request and its reason.
  nlohmann::json st;
  ASSERT_TRUE(wait_for([&] {
    st = ctl(sock, "status");
    return st["result"]["daemon"]["checkpoint"].value("done", 0) >= 1;
  })) << st;
  const auto& ck = st["result"]["daemon"]["checkpoint"];
  EXPECT_GE(ck["requested"].get<int>(), 1) << st;
  EXPECT_EQ(ck["last_reason"], "payload_mismatch") << st;
  EXPECT_EQ(st["result"]["daemon"]["mode"], "colo") << st;

  // events: the request with the stream offset and both VMs' bytes there.
  auto ev = ctl(sock, "events", {"--kind", "checkpoint_request"});
  ASSERT_TRUE(ev.value("ok", false)) << ev;
  nlohmann::json req;
  for (const auto& e : ev["result"]["events"])
    if (e.value("reason", "") == "payload_mismatch" && !e.value("coalesced", true)) req = e;
  ASSERT_TRUE(req.is_object()) << ev;
  EXPECT_EQ(req["stream_offset"], diff) << req;
  EXPECT_NE(req.value("flow", "").find(":80"), std::string::npos) << req;
  auto unhex = [](const std::string& h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
  };
  const size_t before = req.value("shown_before", size_t{0});
  const std::string pvm_seen = unhex(req.value("pvm_hex", "")), svm_seen = unhex(req.value("svm_hex", ""));
  ASSERT_GT(pvm_seen.size(), before) << req;
  ASSERT_GT(svm_seen.size(), before) << req;
  EXPECT_EQ(pvm_seen, pvm_text.substr(diff - before, pvm_seen.size())) << req;
  EXPECT_EQ(svm_seen, svm_text.substr(diff - before, svm_seen.size())) << req;
  EXPECT_EQ(pvm_seen.substr(before, 3), "Mon") << req;
  EXPECT_EQ(svm_seen.substr(before, 3), "Tue") << req;

  // Its completion, with a duration.
  auto done = ctl(sock, "events", {"--kind", "checkpoint_done"});
  ASSERT_FALSE(done["result"]["events"].empty()) << done;
  EXPECT_TRUE(done["result"]["events"].back().contains("duration_ms")) << done;

  // explain groups it.
  auto ex = ctl(sock, "explain");
  ASSERT_TRUE(ex.value("ok", false)) << ex;
  ASSERT_FALSE(ex["result"]["groups"].empty()) << ex;
  EXPECT_EQ(ex["result"]["groups"][0]["reason"], "payload_mismatch") << ex;
  EXPECT_GE(ex["result"]["groups"][0]["count"].get<int>(), 1) << ex;

  // stats engine: that section only.
  auto sa = ctl(sock, "stats", {"engine"});
  ASSERT_TRUE(sa.value("ok", false)) << sa;
  EXPECT_FALSE(sa["result"].contains("ports")) << sa;
  EXPECT_GE(sa["result"]["engine"].value("checkpoint_reason.payload_mismatch", 0), 1) << sa;
  auto sp = ctl(sock, "stats", {"ports"});
  EXPECT_GE(sp["result"]["ports"]["primary_in"].value("frames_in", 0), 2) << sp;

  // config set applies live, is an event, and config get shows it.
  auto cs = ctl(sock, "config set", {"compare_timeout_us=90000"});
  ASSERT_TRUE(cs.value("ok", false)) << cs;
  EXPECT_EQ(cs["result"]["changed"]["compare_timeout_us"], 90000) << cs;
  auto cg = ctl(sock, "config get", {"compare_timeout_us"});
  EXPECT_NE(cg.dump().find("90000"), std::string::npos) << cg;
  auto bad = ctl(sock, "config set", {"max_held_frames=5"});
  EXPECT_FALSE(bad.value("ok", true)) << bad;
  auto cfgev = ctl(sock, "events", {"--kind", "config"});
  ASSERT_EQ(cfgev["result"]["events"].size(), 1u) << cfgev;
  EXPECT_EQ(cfgev["result"]["events"][0]["changed"]["compare_timeout_us"]["to"], 90000) << cfgev;

  // The chardev ports' connects are events (not their first, unconnected, state).
  auto pe = ctl(sock, "events", {"--kind", "port"});
  std::set<std::string> up;
  for (const auto& e : pe["result"]["events"]) {
    EXPECT_TRUE(e.value("connected", false)) << pe;
    up.insert(e.value("port", ""));
  }
  EXPECT_EQ(up, (std::set<std::string>{"primary_in", "secondary_in", "outdev", "notify_dev"})) << pe;

  // mode, a manual checkpoint, capture refused.
  EXPECT_TRUE(ctl(sock, "mode", {"buffer"}).value("ok", false));
  EXPECT_TRUE(ctl(sock, "mode", {"colo"}).value("ok", false));
  auto modes = ctl(sock, "events", {"--kind", "mode"});
  EXPECT_EQ(modes["result"]["events"].size(), 2u) << modes;
  auto cap = ctl(sock, "capture start", {"pvm"});
  EXPECT_FALSE(cap.value("ok", true)) << cap;
  EXPECT_NE(cap.value("error", "").find("not available in colo-compare mode"), std::string::npos) << cap;
  auto conns = ctl(sock, "conns");
  ASSERT_TRUE(conns.value("ok", false)) << conns;
  EXPECT_TRUE(conns["result"].contains("connections")) << conns;

  // The read-only socket answers, and refuses changes.
  EXPECT_TRUE(ctl(ro, "status").value("ok", false));
  EXPECT_FALSE(ctl(ro, "config set", {"compare_timeout_us=80000"}).value("ok", true));

  // lockstepctl itself (text output).
  int rc = 0;
  const std::string why = run_lockstepctl(sock, "explain", &rc);
  if (rc != -1) {
    EXPECT_EQ(rc, 0) << why;
    EXPECT_NE(why.find("x payload_mismatch"), std::string::npos) << why;
    EXPECT_NE(why.find("stream offset"), std::string::npos) << why;
    const std::string evs = run_lockstepctl(sock, "events --kind checkpoint_request", &rc);
    EXPECT_EQ(rc, 0) << evs;
    EXPECT_NE(evs.find("checkpoint_request"), std::string::npos) << evs;
    const std::string stj = run_lockstepctl(sock, "-j status", &rc);
    EXPECT_EQ(rc, 0) << stj;
    EXPECT_NE(stj.find("\"last_reason\":\"manual\""), std::string::npos) << stj;  // mode colo
  }

  // Prometheus.
  const std::string m = http_metrics(mport);
  EXPECT_NE(m.find("lockstep_checkpoint_reason_total"), std::string::npos) << m.substr(0, 400);
  EXPECT_NE(m.find("lockstep_checkpoint_duration_seconds_count"), std::string::npos);
  EXPECT_NE(m.find("lockstep_colo_port_frames_in_total"), std::string::npos);
  EXPECT_NE(ctl(sock, "metrics").dump().find("lockstep_checkpoint_duration_seconds"),
            std::string::npos);

  // A failover decided on the ctrl socket reaches the engine (it stops holding).
  auto fo = ctl(sock, "failover", {"primary"});
  ASSERT_TRUE(fo.value("ok", false)) << fo;
  ASSERT_TRUE(wait_for([&] {
    return ctl(sock, "status")["result"]["daemon"]["failed_over"].is_object();
  })) << ctl(sock, "status");
  EXPECT_EQ(ctl(sock, "events", {"--kind", "failover"})["result"]["events"].size(), 1u);
  Bytes late = tcp_frame(1001 + uint32_t(pvm_text.size()), kTcpAck | kTcpPsh, "after failover");
  ASSERT_TRUE(peer.send_pvm(late.data(), uint32_t(late.size())));
  EXPECT_TRUE(wait_for([&] { return peer.released() >= 3; })) << peer.released();

  peer.stop_reader();
  auto j = colo.stop();
  EXPECT_EQ(j["conservation"], "ok") << j;
  EXPECT_EQ(j["engine"]["failovers"], 1) << j;
  EXPECT_FALSE(std::filesystem::exists(sock)) << "the ctrl socket is removed at exit";
  EXPECT_FALSE(std::filesystem::exists(ro));
  std::filesystem::remove(sock);
  std::filesystem::remove(ro);
}

// Without ctrl_socket= and metrics= nothing listens (as before issue 19).
TEST(LockstepColo, NoCtrlSocketByDefault) {
  Colo colo({"compare_timeout=2000"});
  qtest::Peer peer;
  std::string err;
  ASSERT_TRUE(peer.connect(colo.inst, false, err)) << err;
  const std::string log = read_file(colo.dir / "ls.log");
  EXPECT_EQ(log.find("ctrl socket"), std::string::npos) << log;
  EXPECT_EQ(log.find("metrics on port"), std::string::npos) << log;
}

TEST(LockstepColo, RejectsBadCommandLines) {
  for (const char* bad : {"primary_in=tcp:127.0.0.1", "compare_timeout=0", "vnet_hdr_support=maybe",
                          "no_such=1", "replace_peer=sometimes", "metrics=udp:127.0.0.1:9",
                          "metrics=nonsense", "ctrl_ro_socket=/tmp/ro-only", "ctrl_socket="}) {
    std::string cmd = g_bin + " " + bad + " secondary_in=unix:/tmp/x,server outdev=unix:/tmp/y,server >/dev/null 2>&1";
    int rc = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(rc), 2) << bad;
  }
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_chardev LOCKSTEP_COLO_BINARY | LOCKSTEPD --colo-compare\n");
    return 2;
  }
  // The command: the binary and any words before the properties
  // (lockstep-colo, or lockstepd --colo-compare).
  for (int i = 1; i < argc; ++i) lockstep::g_bin += (i > 1 ? " " : "") + std::string(argv[i]);
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
