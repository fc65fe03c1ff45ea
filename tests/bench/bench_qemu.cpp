// bench_qemu: QEMU's colo-compare and lockstep-colo side by side, in one run, on
// identical streams over the same kind of sockets (unix stream sockets, QEMU's chardev
// framing), with the same driver (tests/qemu/colo_peer.*). A third instance, the floor
// (pair_relay.h), compares nothing and releases each PVM frame when its SVM twin is in:
// its figures are what the sockets and the driver allow on this machine, the bound of
// any drop-in, so that a ratio to QEMU can be read against the best one possible. For
// each traffic mix
// (TCP, UDP; 64 B and 1448 B payloads; 1, 64 and 1024 flows) each instance gets:
//   - throughput: N matching PVM/SVM pairs, at most W pairs in flight (QEMU drops beyond
//     max_queue_size=1024 per connection and side); pairs released per second, from the
//     first frame written to the last released frame read;
//   - latency: pairs one at a time, from writing the SVM copy to reading the released
//     PVM frame on outdev (p50, p99), as colo-anchors.md §6.2 measured it;
//   - latency under load: the same, with pairs sent open-loop on a fixed schedule at half
//     of QEMU's throughput on the mix (the same rate to both instances), in three rounds
//     (the median round's p50/p99);
// the notify socket is answered throughout (no divergence is expected: DO_CHECKPOINT
// counts are printed). The instances run one after the other, never at once. The driver
// is one thread; with two CPUs or more, the driver and the instance (every thread of it)
// are pinned to one CPU each and the driver polls outdev without sleeping, so that its
// own wake-ups are not counted as the instance's latency; on one CPU it sleeps in poll().
//
// usage: bench_qemu LOCKSTEP_COLO [--quick] [--mix tcp|udp:PAYLOAD:FLOWS]... [--window N]
//                   [--lockstep-arg PROP]... [--pairs N] [--throughput-only]
//   --mix runs only the named mixes (e.g. --mix tcp:64:1024), default all twelve;
//   --window: pairs in flight (64..1000, default 512: below QEMU's max_queue_size);
//   --lockstep-arg: one more argument to lockstep-colo (e.g. poll_us=0, or --set then
//   mode=passthrough as two);
//   --pairs: pairs of the throughput run (default 150000, 60000 with 1448 B payloads);
//   --throughput-only: no latency runs (to profile an instance under a long throughput run).
// Run it on an otherwise idle machine: the figures are any other work's too. Do not run it
// under a real-time policy (chrt -f): the floor and lockstep-colo poll without sleeping,
// and on two CPUs real-time pollers starve the rest until the kernel's RT throttling cuts
// in (one mix took minutes instead of seconds).
#include <dirent.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/cli.h"
#include "tests/bench/pair_relay.h"
#include "tests/qemu/colo_peer.h"
#include "tests/support/frame_builder.h"

namespace {

using lockstep::qtest::Instance;
using lockstep::qtest::now_ns;
using lockstep::qtest::Peer;
using Bytes = std::vector<uint8_t>;

struct Mix {
  bool tcp;
  uint32_t payload;
  uint32_t flows;
};

struct Result {
  double pairs_per_s = 0;
  double p50_us = 0, p99_us = 0;
  // Under load: pairs sent on a fixed schedule at load_rate pairs/s (the same for both
  // instances); load_sent_rate is what the driver achieved.
  double load_rate = 0, load_sent_rate = 0, load_p50_us = 0, load_p99_us = 0;
  double cpu_us_per_pair = 0;
  uint64_t ckpt = 0;
  bool ok = false;
  std::string note;
};

struct Stream {
  std::vector<Bytes> pvm, svm;
  uint32_t tag_off = 0;
  // The same frames with their chardev headers, back to back; pair i is
  // [off[i], off[i+1]) of each.
  std::vector<uint8_t> framed_pvm, framed_svm;
  std::vector<size_t> off_pvm, off_svm;

  void frame_all(const Peer& p) {
    off_pvm.assign(1, 0);
    off_svm.assign(1, 0);
    for (size_t i = 0; i < pvm.size(); ++i) {
      p.append_framed(framed_pvm, pvm[i].data(), uint32_t(pvm[i].size()));
      p.append_framed(framed_svm, svm[i].data(), uint32_t(svm[i].size()));
      off_pvm.push_back(framed_pvm.size());
      off_svm.push_back(framed_svm.size());
    }
  }
};

// CPU time (user + system) of a process so far, in microseconds.
double cpu_us(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return 0;
  char buf[2048];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  unsigned long long ut = 0, st = 0;
  // fields after the command: state(3) ... utime(14) stime(15)
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
  return double(ut + st) * 1e6 / double(sysconf(_SC_CLK_TCK));
}

// Every thread of `pid` (0: this process) onto one CPU. Returns false when the CPU is
// not ours to use.
bool pin(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pid == 0) return sched_setaffinity(0, sizeof set, &set) == 0;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return false;
  bool ok = true;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ok = sched_setaffinity(static_cast<pid_t>(std::atoi(e->d_name)), sizeof set, &set) == 0 && ok;
  }
  closedir(d);
  return ok;
}

// Pair i: flow i % flows; the be32 tag i+1 opens the payload.
Stream build(const Mix& m, uint32_t n) {
  using namespace lockstep;
  Stream s;
  std::vector<uint32_t> seq(m.flows, 1000000);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t f = i % m.flows;
    test::FrameSpec sp;
    sp.src = test::ip4(198, 51, 100, 20);
    sp.dst = test::ip4(192, 0, 2, static_cast<uint8_t>(10 + f / 60000));
    sp.proto = m.tcp ? kProtoTcp : kProtoUdp;
    sp.sport = m.tcp ? 80 : 53;
    sp.dport = static_cast<uint16_t>(20000 + f);
    sp.flags = kTcpAck | kTcpPsh;
    sp.seq = seq[f];
    sp.ack = 5000;
    sp.payload.assign(m.payload, static_cast<uint8_t>('a' + i % 26));
    const uint32_t tag = i + 1;
    sp.payload[0] = uint8_t(tag >> 24);
    sp.payload[1] = uint8_t(tag >> 16);
    sp.payload[2] = uint8_t(tag >> 8);
    sp.payload[3] = uint8_t(tag);
    seq[f] += m.payload;
    sp.ip_id = static_cast<uint16_t>(i);
    s.pvm.push_back(test::build_frame(sp));
    sp.ip_id = static_cast<uint16_t>(i ^ 0x5555);  // the SVM's IP IDs differ
    sp.window = 29200;
    s.svm.push_back(test::build_frame(sp));
  }
  s.tag_off = 14 + 20 + (m.tcp ? 20 : 8);
  return s;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * double(v.size() - 1) + 0.5));
  return v[i];
}

// Tags of the pairs of `load`, in order, start at load_tag0 (the stream they were cut from
// numbers pair i with tag i + 1). load_rate: 0 on the first instance of a mix, which sets
// it to half of its own throughput; the second instance is then loaded at the same rate.
Result measure(Instance& inst, const Stream& tput, const Stream& lat, const Stream& load, uint32_t load_tag0,
               double& load_rate, uint32_t window, int inst_cpu, bool tput_only) {
  Result r;
  // With a core of its own the driver spins (poll with no wait); sharing one, it sleeps.
  const int spin = inst_cpu >= 0 ? 0 : 10;
  Peer peer;
  std::string err;
  if (!peer.connect(inst, false, err)) {
    r.note = err;
    return r;
  }
  // One thread drives both ends on its own core: it writes, then polls outdev without
  // sleeping (a wake-up of the driver would be counted as the instance's latency).
  peer.configure(1'000'000, false, tput.tag_off);
  // Warm-up: one pair of the latency set must come out before the clock starts (QEMU
  // attaches its chardev handlers in its iothread after the connection is accepted).
  {
    // Distinct datagrams on a flow of their own, resent every 100 ms until one is out.
    const uint64_t until = now_ns() + 10'000'000'000ull;
    for (uint32_t k = 0; peer.released() == 0 && now_ns() < until; ++k) {
      lockstep::test::FrameSpec w;
      w.src = lockstep::test::ip4(198, 51, 100, 99);
      w.dst = lockstep::test::ip4(192, 0, 2, 99);
      w.proto = lockstep::kProtoUdp;
      w.sport = w.dport = 9;
      const std::string text = "warm-up " + std::to_string(k);
      w.payload.assign(text.begin(), text.end());
      const Bytes f = lockstep::test::build_frame(w);
      peer.send_pvm(f.data(), uint32_t(f.size()));
      peer.send_svm(f.data(), uint32_t(f.size()));
      for (int i = 0; i < 100 && peer.released() == 0; ++i) peer.pump(1);
    }
    if (peer.released() == 0) {
      r.note = "warm-up pair not released";
      return r;
    }
  }
  // Every thread of the instance exists by now (QEMU's iothread too): all onto its core.
  if (inst_cpu >= 0) pin(inst.pid, inst_cpu);
  const uint64_t warm = peer.released();
  // Throughput: batches of kBatch pairs, PVM batch then SVM batch, at most `window` in flight.
  constexpr size_t kBatch = 64;
  const size_t n = tput.pvm.size() + warm;  // + the warm-up pair(s)
  const double cpu0 = cpu_us(inst.pid);
  const uint64_t t0 = now_ns();
  size_t sent = 0;
  const uint64_t give_up = t0 + 60'000'000'000ull;
  while (sent < n - warm) {
    while (sent - std::min<size_t>(sent, peer.released() - warm) + kBatch > window && now_ns() < give_up) {
      peer.pump(spin);
    }
    const size_t end = std::min(n - warm, sent + kBatch);
    if (!peer.send_raw(false, tput.framed_pvm.data() + tput.off_pvm[sent], tput.off_pvm[end] - tput.off_pvm[sent]) ||
        !peer.send_raw(true, tput.framed_svm.data() + tput.off_svm[sent], tput.off_svm[end] - tput.off_svm[sent])) {
      r.note = "write failed";
      return r;
    }
    sent = end;
    peer.pump(0);  // read what is already out, so that outdev never backs up
    if (now_ns() > give_up) break;
  }
  while (peer.released() < n && now_ns() < give_up && now_ns() - peer.last_activity_ns() < 5'000'000'000ull) {
    peer.pump(spin);
  }
  uint64_t t_last = 0;
  {
    std::lock_guard lock(peer.mu);
    if (!peer.rx.empty()) t_last = peer.rx.back().t_ns;
  }
  if (peer.released() < n) {
    r.note = "released " + std::to_string(peer.released() - warm) + " of " + std::to_string(n - warm);
  }
  const double done = double(peer.released() - warm);
  r.pairs_per_s = t_last > t0 ? done / (double(t_last - t0) / 1e9) : 0;
  r.cpu_us_per_pair = done > 0 ? (cpu_us(inst.pid) - cpu0) / done : 0;

  if (tput_only) {
    r.ckpt = peer.do_checkpoints();
    r.ok = r.note.empty();
    return r;
  }
  // Latency: one pair at a time.
  std::vector<double> us;
  for (size_t i = 0; i < lat.pvm.size(); ++i) {
    const uint64_t before = peer.released();
    peer.send_pvm(lat.pvm[i].data(), uint32_t(lat.pvm[i].size()));
    const uint64_t ts = now_ns();
    peer.send_svm(lat.svm[i].data(), uint32_t(lat.svm[i].size()));
    const uint64_t until = ts + 2'000'000'000ull;
    while (peer.released() == before && now_ns() < until) peer.pump(spin);
    if (peer.released() == before) {
      r.note += " latency pair lost";
      break;
    }
    std::lock_guard lock(peer.mu);
    us.push_back(double(peer.rx.back().t_ns - ts) / 1000.0);
  }
  r.p50_us = pct(us, 0.50);
  r.p99_us = pct(us, 0.99);

  // Latency under load: open loop, pair i sent at start + i / rate whether or not the
  // pairs before it are out (an instance that cannot keep up queues, and its latency
  // shows it). Needs a core of its own for the driver (it spins to keep the schedule).
  // Three rounds of a third of the pairs each, 50 ms apart; the figures are the median
  // round's (a one-off stall of the machine moves one round, not the result).
  if (inst_cpu >= 0 && !load.pvm.empty() && r.note.empty()) {
    if (load_rate == 0) load_rate = r.pairs_per_s * 0.5;
    r.load_rate = load_rate;
    constexpr size_t kRounds = 3;
    const size_t per = load.pvm.size() / kRounds;
    std::vector<double> p50s, p99s, rates;
    for (size_t round = 0; round < kRounds && r.note.empty(); ++round) {
      const size_t lo = round * per, hi = lo + per;
      size_t first_rx;
      {
        std::lock_guard lock(peer.mu);
        first_rx = peer.rx.size();
      }
      const uint64_t before = peer.released();
      std::vector<uint64_t> sent_at(per, 0);
      const uint64_t start = now_ns() + (round == 0 ? 1'000'000 : 50'000'000);
      for (size_t i = lo; i < hi; ++i) {
        const uint64_t due = start + static_cast<uint64_t>(double(i - lo) * 1e9 / load_rate);
        while (now_ns() < due) peer.pump(0);
        peer.send_pvm(load.pvm[i].data(), uint32_t(load.pvm[i].size()));
        sent_at[i - lo] = now_ns();
        peer.send_svm(load.svm[i].data(), uint32_t(load.svm[i].size()));
        peer.pump(0);
      }
      const uint64_t sent_end = now_ns();
      rates.push_back(double(per) / (double(sent_end - start) / 1e9));
      const uint64_t until = sent_end + 5'000'000'000ull;
      while (peer.released() < before + per && now_ns() < until) peer.pump(0);
      std::vector<double> lus;
      {
        std::lock_guard lock(peer.mu);
        const uint64_t tag_lo = uint64_t{load_tag0} + lo;
        for (size_t k = first_rx; k < peer.rx.size(); ++k) {
          const uint64_t i = uint64_t(peer.rx[k].tag) - tag_lo;
          if (peer.rx[k].tag >= tag_lo && i < sent_at.size() && peer.rx[k].t_ns >= sent_at[i])
            lus.push_back(double(peer.rx[k].t_ns - sent_at[i]) / 1000.0);
        }
      }
      if (lus.size() != per)
        r.note += " under load " + std::to_string(lus.size()) + " of " + std::to_string(per) + " out";
      p50s.push_back(pct(lus, 0.50));
      p99s.push_back(pct(lus, 0.99));
    }
    r.load_p50_us = pct(p50s, 0.5);
    r.load_p99_us = pct(p99s, 0.5);
    r.load_sent_rate = pct(rates, 0.5);
  }
  r.ckpt = peer.do_checkpoints();
  r.ok = r.note.empty();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string lockstep;
  bool quick = false, tput_only = false;
  uint32_t pairs = 0;
  std::vector<Mix> only;
  std::vector<std::string> props = {"compare_timeout=3000"};
  std::vector<std::string> extra_props, mix_args;
  uint32_t window = 512;
  CLI::App app{"QEMU's colo-compare and lockstep-colo on identical streams: pairs/s and\n"
               "p50/p99 latency side by side.",
               "bench_qemu"};
  lockstep::cli::setup(app, {"LOCKSTEP_COLO [--quick] [--mix tcp|udp:PAYLOAD:FLOWS]... "
                             "[--window 64..1000]\n"
                             "                  [--lockstep-arg PROP]... [--pairs N] "
                             "[--throughput-only]"});
  app.add_option("LOCKSTEP_COLO", lockstep, "the lockstep-colo binary")->required();
  app.add_flag("--quick", quick, "fewer pairs per case");
  app.add_flag("--throughput-only", tput_only, "skip the latency runs");
  app.add_option("--pairs", pairs, "pairs per case, 1000..10000000")
      ->type_name("N")
      ->check(CLI::Range(1000, 10000000));
  app.add_option("--lockstep-arg", extra_props, "one more lockstep-colo property; repeatable")
      ->option_text("PROP")
      ->allow_extra_args(false);
  app.add_option("--window", window, "pairs in flight, 64..1000 (default 512)")
      ->type_name("N")
      ->check(CLI::Range(64, 1000));
  app.add_option("--mix", mix_args, "only this mix; repeatable")
      ->option_text("tcp|udp:PAYLOAD:FLOWS")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        char proto[4] = {};
        unsigned payload = 0, flows = 0;
        char tail = 0;
        if (std::sscanf(v.c_str(), "%3[a-z]:%u:%u%c", proto, &payload, &flows, &tail) == 3 &&
            (std::string(proto) == "tcp" || std::string(proto) == "udp") && payload >= 8 &&
            payload <= 1448 && flows >= 1 && flows <= 60000) {
          return std::string();
        }
        return "a mix is tcp|udp:8-1448:1-60000, got '" + v + "'";
      });
  if (int rc = lockstep::cli::parse(app, argc, argv, 2); rc >= 0) return rc;
  props.insert(props.end(), extra_props.begin(), extra_props.end());
  for (const std::string& m : mix_args) {
    char proto[4] = {};
    unsigned payload = 0, flows = 0;
    std::sscanf(m.c_str(), "%3[a-z]:%u:%u", proto, &payload, &flows);
    only.push_back({std::string(proto) == "tcp", payload, flows});
  }
  if (access(lockstep.c_str(), X_OK) != 0 || std::filesystem::is_directory(lockstep)) {
    std::fprintf(stderr, "bench_qemu: %s: not an executable (build/tools/lockstep-colo)\n", lockstep.c_str());
    return 2;
  }
  const std::string qemu = lockstep::qtest::find_qemu();
  if (qemu.empty()) {
    std::printf("bench_qemu: SKIP: qemu-system-x86_64 not found (apt-get install qemu-system-x86)\n");
    return 0;
  }
  char tmpl[] = "/tmp/bench-qemu-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<Mix> mixes = {
      {true, 64, 1},   {true, 64, 64},   {true, 64, 1024},   {true, 1448, 1},
      {true, 1448, 64}, {true, 1448, 1024}, {false, 64, 1},  {false, 64, 64},
      {false, 64, 1024}, {false, 1448, 1}, {false, 1448, 64}, {false, 1448, 1024},
  };
  if (!only.empty()) mixes = only;

  // below QEMU's max_queue_size (1024) for one flow
  // The driver on one CPU, the instance under test (every thread of it) on another, so
  // that neither takes the other's core and both instances get exactly one: QEMU's
  // colo-compare its main loop and iothread, lockstep-colo its one thread.
  int inst_cpu = -1;
  {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    sched_getaffinity(0, sizeof mine, &mine);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &mine)) cpus.push_back(c);
    if (cpus.size() >= 2 && pin(0, cpus[0])) inst_cpu = cpus[1];
  }
  std::printf("bench_qemu: QEMU colo-compare (%s, iothread, defaults) vs lockstep-colo (filter_rewriter=on, "
              "defaults) vs floor (a relay that compares nothing), unix sockets, %u pairs in flight, %s\n",
              qemu.c_str(), window,
              inst_cpu >= 0 ? "driver and instance pinned to one CPU each" : "one CPU shared by driver and instance");
  std::printf("latency: one pair at a time (idle), from writing the SVM copy to reading the release\n");
  std::printf("%-16s | %26s %7s %7s | %24s %7s | %18s | %s\n", "", "pairs/s", "", "", "idle p50/p99 us", "",
              "CPU us/pair", "DO_CHECKPOINT");
  std::printf("%-16s | %8s %8s %8s %7s %7s | %7s %7s %7s %7s | %18s | %s\n", "traffic", "qemu", "lockstep", "floor",
              "l/q", "floor/q", "qemu", "lockstep", "floor", "q/l p99", "qemu/lockstep/floor", "qemu/lockstep");
  double worst_ratio = 1e9, worst_floor = 1e9, worst_of_floor = 1e9, worst_p99 = 0, worst_load_p99 = 0;
  double worst_floor_p99 = 0, worst_floor_load_p99 = 0;
  std::vector<std::string> load_rows;
  for (const Mix& m : mixes) {
    const uint32_t n = pairs != 0 ? pairs : quick ? 5000 : (m.payload > 1000 ? 60000 : 150000);
    const uint32_t nl = quick ? 200 : 2000;
    Stream tput = build(m, n);
    {
      Peer framer;  // append_framed needs only the framing flavour (no vnet header)
      tput.frame_all(framer);
    }
    // One stream cut in three: throughput, one at a time, under load (the flows' byte
    // streams run on from one part to the next).
    const uint32_t nload = quick ? 2000 : (m.payload > 1000 ? 50000 : 100000);
    Stream lat = build(m, n + nl + nload);
    Stream load;
    load.pvm.assign(lat.pvm.begin() + n + nl, lat.pvm.end());
    load.svm.assign(lat.svm.begin() + n + nl, lat.svm.end());
    lat.pvm.resize(n + nl);
    lat.svm.resize(n + nl);
    lat.pvm.erase(lat.pvm.begin(), lat.pvm.begin() + n);
    lat.svm.erase(lat.svm.begin(), lat.svm.begin() + n);
    const uint32_t load_tag0 = n + nl + 1;
    double load_rate = 0;
    Result rq, rl, rf;
    for (int which = 0; which < 3; ++which) {
      Instance inst(which == 0 ? "qemu" : which == 1 ? "lockstep" : "floor", dir);
      std::string err;
      bool started = which == 0 ? lockstep::qtest::start_qemu(inst, qemu, lockstep::qtest::QemuOptions{}, err)
                     : which == 1 ? lockstep::qtest::start_lockstep(inst, lockstep, props, err)
                                  : lockstep::bench::start_pair_relay(inst, err);
      Result r;
      if (started) r = measure(inst, tput, lat, load, load_tag0, load_rate, window, inst_cpu, tput_only);
      else r.note = err;
      lockstep::qtest::stop(inst);
      (which == 0 ? rq : which == 1 ? rl : rf) = r;
    }
    char name[32];
    std::snprintf(name, sizeof name, "%s %4uB %4uf", m.tcp ? "tcp" : "udp", m.payload, m.flows);
    auto div = [](double x, double y) { return y > 0 ? x / y : 0; };
    const double ratio = div(rl.pairs_per_s, rq.pairs_per_s);
    const double fratio = div(rf.pairs_per_s, rq.pairs_per_s);
    worst_ratio = std::min(worst_ratio, ratio);
    worst_floor = std::min(worst_floor, fratio);
    worst_of_floor = std::min(worst_of_floor, div(rl.pairs_per_s, rf.pairs_per_s));
    if (!tput_only) {
      worst_p99 = std::max(worst_p99, div(rl.p99_us, rq.p99_us));
      worst_floor_p99 = std::max(worst_floor_p99, div(rf.p99_us, rq.p99_us));
    }
    std::string notes;
    for (const Result* r : {&rq, &rl, &rf}) {
      if (!r->note.empty()) notes += std::string(r == &rq ? " qemu: " : r == &rl ? " lockstep: " : " floor: ") + r->note;
    }
    std::printf("%-16s | %8.0f %8.0f %8.0f %6.1fx %6.1fx | %3.0f/%-3.0f %3.0f/%-4.0f %3.0f/%-3.0f %6.1fx | %5.2f/%5.2f/%5.2f | "
                "%llu/%llu%s\n",
                name, rq.pairs_per_s, rl.pairs_per_s, rf.pairs_per_s, ratio, fratio, rq.p50_us, rq.p99_us, rl.p50_us,
                rl.p99_us, rf.p50_us, rf.p99_us, div(rq.p99_us, rl.p99_us), rq.cpu_us_per_pair, rl.cpu_us_per_pair,
                rf.cpu_us_per_pair, static_cast<unsigned long long>(rq.ckpt), static_cast<unsigned long long>(rl.ckpt),
                notes.c_str());
    std::fflush(stdout);
    char row[256];
    if (rq.load_rate > 0 && rl.load_rate > 0) {
      worst_load_p99 = std::max(worst_load_p99, div(rl.load_p99_us, rq.load_p99_us));
      worst_floor_load_p99 = std::max(worst_floor_load_p99, div(rf.load_p99_us, rq.load_p99_us));
      std::snprintf(row, sizeof row, "%-16s | %8.0f %8.0f %8.0f %8.0f | %4.0f/%-4.0f  %4.0f/%-4.0f  %4.0f/%-4.0f %6.1fx",
                    name, rq.load_rate, rq.load_sent_rate, rl.load_sent_rate, rf.load_sent_rate, rq.load_p50_us,
                    rq.load_p99_us, rl.load_p50_us, rl.load_p99_us, rf.load_p50_us, rf.load_p99_us,
                    div(rq.load_p99_us, rl.load_p99_us));
    } else {
      std::snprintf(row, sizeof row, "%-16s | not measured (needs two CPUs and a throughput figure)", name);
    }
    load_rows.emplace_back(row);
  }
  if (!tput_only) {
    std::printf("\nlatency under load: pairs sent one by one on a fixed schedule, at half of QEMU's throughput on\n"
                "the mix, to each instance, three rounds, the median round's figures (sent/s: the rate\n"
                "the driver kept to each)\n");
    std::printf("%-16s | %8s %8s %8s %8s | %30s %7s\n", "", "pairs/s", "sent/s", "", "", "p50/p99 us", "");
    std::printf("%-16s | %8s %8s %8s %8s | %9s  %9s  %9s %7s\n", "traffic", "load", "qemu", "lockstep", "floor", "qemu",
                "lockstep", "floor", "q/l p99");
    for (const std::string& row : load_rows) std::printf("%s\n", row.c_str());
  }
  std::printf("\ntargets: pairs/s >= 10x QEMU's: worst mix %.1fx (the floor, %.1fx; lockstep-colo reaches %.0f%% of the "
              "floor at worst)\n",
              worst_ratio, worst_floor, worst_of_floor * 100);
  if (!tput_only) {
    std::printf("         p99 <= 1/5 of QEMU's: worst mix idle %.2f of QEMU's (the floor, %.2f), under load %.2f "
                "(the floor, %.2f)\n",
                worst_p99, worst_floor_p99, worst_load_p99, worst_floor_load_p99);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
