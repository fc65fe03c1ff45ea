// Engine::push_burst against Engine::push: the same frames, pushed one by one into one
// engine and in bursts (random sizes, up to twice the prefetch group) into another, give
// the same actions in the same order, the same checkpoint requests and the same counters.
// Engine::push_burst_multi the same for three engines fed from one interleaved stream
// (as a worker's shared port feeds its guests' NICs), with and without a shared
// Engine::Sink for their actions, requests and wake times.
// The mix: TCP connections (handshake, data both ways, retransmissions, pure ACKs, a
// diverging byte, FINs), UDP flows, ARP, IP fragments, truncated frames; a full
// connection table in one run.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "tests/support/engine_harness.h"
#include "tests/support/frame_builder.h"

namespace lockstep::test {
namespace {

struct Ev {
  Side side;
  Bytes frame;
};

std::vector<Ev> make_mix(uint64_t seed, uint32_t conns) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<Ev>> per_flow;
  for (uint32_t k = 0; k < conns; ++k) {
    Conversation::Params p;
    p.client_port = static_cast<uint16_t>(20000 + k);
    p.client_isn = static_cast<uint32_t>(rng());
    p.pvm_isn = static_cast<uint32_t>(rng());
    p.svm_isn = static_cast<uint32_t>(rng());
    Conversation c(p);
    std::vector<Ev> v;
    v.push_back({Side::ingress, c.client_syn()});
    v.push_back({Side::pvm, c.vm_synack(Vm::pvm)});
    v.push_back({Side::svm, c.vm_synack(Vm::svm)});
    v.push_back({Side::ingress, c.client_handshake_ack()});
    v.push_back({Side::ingress, c.client_data(0, stream_bytes(k, 0, 300), 0)});
    const uint64_t len = 1 + rng() % 6000;
    const bool diverge = k % 7 == 3;
    for (uint64_t off = 0; off < len; off += 1000) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(1000, len - off));
      Bytes pd = stream_bytes(k + 100, off, n), sd = pd;
      if (diverge && off == 0) sd[0] ^= 1;
      v.push_back({Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, off, 300, pd))});
      v.push_back({Side::svm, build_frame(c.vm_spec(Vm::svm, kTcpAck, off, 300, sd))});
      if (rng() % 4 == 0) {
        v.push_back({Side::pvm, build_frame(c.vm_spec(Vm::pvm, kTcpAck, off, 300, pd))});
      }
      v.push_back({Side::ingress, c.client_ack(300, off + n)});
    }
    v.push_back({Side::pvm, c.vm_fin(Vm::pvm, len)});
    v.push_back({Side::svm, c.vm_fin(Vm::svm, len)});
    v.push_back({Side::ingress, c.client_fin(300, len + 1)});
    per_flow.push_back(std::move(v));
  }
  for (uint32_t k = 0; k < conns / 2; ++k) {  // UDP flows, one reordered pair
    std::vector<Ev> v;
    for (int i = 0; i < 4; ++i) {
      std::string msg = "dgram " + std::to_string(k) + "/" + std::to_string(i);
      Bytes b = build_frame(udp_spec(ip4(198, 51, 100, 20), ip4(192, 0, 2, 10),
                                     static_cast<uint16_t>(5000 + k), 53,
                                     std::vector<uint8_t>(msg.begin(), msg.end())));
      v.push_back({Side::pvm, b});
      v.push_back({Side::svm, b});
    }
    if (k % 3 == 0) std::swap(v[1], v[3]);
    per_flow.push_back(std::move(v));
  }
  {  // ARP, fragments, truncated frames
    std::vector<Ev> v;
    FrameSpec arp;
    arp.raw_ethertype = 0x0806;
    arp.payload.assign(28, 7);
    v.push_back({Side::pvm, build_frame(arp)});
    v.push_back({Side::svm, build_frame(arp)});
    FrameSpec big = udp_spec(ip4(198, 51, 100, 20), ip4(192, 0, 2, 10), 7000, 53,
                             std::vector<uint8_t>(3000, 9));
    for (Side s : {Side::pvm, Side::svm}) {
      for (Bytes& frag : fragment_frame(build_frame(big), 1400)) v.push_back({s, frag});
    }
    Bytes cut = v.front().frame;
    cut.resize(9);
    v.push_back({Side::pvm, cut});
    v.push_back({Side::svm, cut});
    per_flow.push_back(std::move(v));
  }
  // Interleave the flows, each in its own order.
  std::vector<Ev> out;
  std::vector<size_t> next(per_flow.size(), 0);
  size_t left = 0;
  for (auto& f : per_flow) left += f.size();
  while (left > 0) {
    size_t k = rng() % per_flow.size();
    if (next[k] == per_flow[k].size()) continue;
    out.push_back(per_flow[k][next[k]++]);
    --left;
  }
  return out;
}

struct Run {
  std::vector<std::string> log;  // actions and checkpoint requests, in order
  Counters counters;
};

Run run(const std::vector<Ev>& evs, const Settings& s, uint64_t seed, bool burst) {
  std::string err;
  auto e = Engine::create(s, err);
  EXPECT_TRUE(e) << err;
  Run r;
  if (!e) return r;
  std::vector<Bytes> bufs;  // the engine may rewrite ingress frames in place
  bufs.reserve(evs.size());
  for (const Ev& x : evs) bufs.push_back(x.frame);
  std::mt19937_64 rng(seed);
  uint64_t now = 1'000'000'000;
  std::optional<std::pair<uint64_t, uint64_t>> pending;  // epoch, done at
  std::vector<Action> acts(64);
  auto drain = [&] {
    for (uint32_t n; (n = e->drain(acts)) > 0;) {
      for (uint32_t i = 0; i < n; ++i) {
        r.log.push_back("a " + std::to_string(acts[i].handle) + " " +
                        std::to_string(int(acts[i].kind)) + " " +
                        std::to_string(int(acts[i].reason)));
      }
    }
    if (auto q = e->take_checkpoint_request()) {
      r.log.push_back("c " + std::to_string(q->epoch) + " " + std::string(to_string(q->reason)));
      pending = std::make_pair(q->epoch, now + 2'000'000);
    }
  };
  for (size_t i = 0; i < evs.size();) {
    const size_t n = std::min<size_t>(evs.size() - i, 1 + rng() % (2 * Engine::kBurstGroup));
    now += 50'000 + rng() % 200'000;
    if (pending && pending->second <= now) {
      e->checkpoint_done(pending->first, now);
      pending.reset();
    }
    e->advance(now);
    if (burst) {
      std::vector<Engine::Input> in(n);
      bool flags[2 * Engine::kBurstGroup];
      for (size_t j = 0; j < n; ++j) {
        in[j] = {evs[i + j].side, i + j + 1, bufs[i + j].data(),
                 static_cast<uint32_t>(bufs[i + j].size())};
      }
      e->push_burst(in, now, std::span<bool>(flags, n));
      for (size_t j = 0; j < n; ++j) {
        if (evs[i + j].side == Side::ingress) r.log.push_back("p " + std::to_string(flags[j]));
      }
    } else {
      for (size_t j = 0; j < n; ++j) {
        bool to = e->push(evs[i + j].side, i + j + 1, bufs[i + j].data(),
                          static_cast<uint32_t>(bufs[i + j].size()), now);
        if (evs[i + j].side == Side::ingress) r.log.push_back("p " + std::to_string(to));
      }
    }
    drain();
    i += n;
  }
  for (int k = 0; k < 100 && (pending || e->held_frames() > 0); ++k) {
    now += 50'000'000;
    if (pending && pending->second <= now) {
      e->checkpoint_done(pending->first, now);
      pending.reset();
    }
    e->advance(now);
    drain();
  }
  e->flush_all(now);
  drain();
  r.counters = e->counters();
  EXPECT_EQ(r.counters.conservation_error(), "");
  return r;
}

void expect_same(const std::vector<Ev>& evs, const Settings& s, uint64_t seed) {
  Run one = run(evs, s, seed, false);
  Run burst = run(evs, s, seed, true);
  ASSERT_EQ(one.log.size(), burst.log.size());
  for (size_t i = 0; i < one.log.size(); ++i) {
    ASSERT_EQ(one.log[i], burst.log[i]) << "first difference at entry " << i;
  }
  EXPECT_EQ(one.counters.flatten(), burst.counters.flatten());
  EXPECT_GT(one.counters.checkpoint_requests, 0u) << "the mix should diverge somewhere";
}

TEST(EngineBurst, SameOutcomeAsOneByOne) {
  for (uint64_t seed : {1ull, 2ull, 3ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_same(make_mix(seed, 60), Settings::defaults(), seed);
    if (HasFatalFailure()) return;
  }
}

TEST(EngineBurst, SameOutcomeWithAFullTable) {
  expect_same(make_mix(9, 60), EngineHarness::settings_with({{"max_connections", "32"}}), 9);
}

// Three engines, each with its own mix, fed from one random interleaving of the three:
// one by one (push into the frame's engine) or in bursts through push_burst_multi. Each
// engine's log and counters are compared.
// `sink`: the engines share an Engine::Sink (as a worker's do): their actions are read
// from its one queue by tag, their requests from its list, and each wake[tag] is checked
// to be a lower bound of the engine's next deadline.
std::vector<Run> run_multi(const std::vector<std::vector<Ev>>& mixes, uint64_t seed, bool burst,
                           bool sink = false) {
  const size_t ne = mixes.size();
  std::vector<std::unique_ptr<Engine>> e(ne);
  std::string err;
  for (auto& x : e) {
    x = Engine::create(Settings::defaults(), err);
    EXPECT_TRUE(x) << err;
    if (!x) return {};
  }
  struct Item {
    size_t engine;
    Side side;
    Bytes bytes;
  };
  std::vector<Item> items;
  std::mt19937_64 rng(seed);
  std::vector<size_t> next(ne, 0);
  for (size_t left = 0; [&] {
         left = 0;
         for (size_t k = 0; k < ne; ++k) left += mixes[k].size() - next[k];
         return left > 0;
       }();) {
    size_t k = rng() % ne;
    while (next[k] == mixes[k].size()) k = (k + 1) % ne;
    items.push_back({k, mixes[k][next[k]].side, mixes[k][next[k]].frame});
    ++next[k];
  }
  std::vector<Run> r(ne);
  std::vector<std::optional<std::pair<uint64_t, uint64_t>>> pending(ne);
  uint64_t now = 1'000'000'000;
  std::vector<Action> acts(64);
  Engine::Sink shared;
  if (sink) {
    shared.wake.assign(ne, 0);
    for (size_t k = 0; k < ne; ++k) e[k]->attach_sink(&shared, static_cast<uint16_t>(k));
  }
  auto take = [&](size_t k) {
    if (auto q = e[k]->take_checkpoint_request()) {
      r[k].log.push_back("c " + std::to_string(q->epoch) + " " + std::string(to_string(q->reason)));
      pending[k] = std::make_pair(q->epoch, now + 2'000'000);
    }
  };
  auto drain = [&] {
    if (sink) {
      for (const Action& a : shared.actions) {
        EXPECT_LT(a.tag, ne);
        r[a.tag].log.push_back("a " + std::to_string(a.handle) + " " + std::to_string(int(a.kind)) +
                               " " + std::to_string(int(a.reason)));
      }
      shared.actions.clear();
      // The one-by-one run takes requests in engine order: the same here.
      std::vector<uint16_t> tags = shared.requests;
      shared.requests.clear();
      std::sort(tags.begin(), tags.end());
      for (uint16_t t : tags) take(t);
      for (size_t k = 0; k < ne; ++k) {
        EXPECT_EQ(e[k]->drain(acts), 0u) << "an engine with a sink keeps no actions";
        EXPECT_LE(shared.wake[k], e[k]->next_deadline()) << "wake is a lower bound";
        EXPECT_FALSE(e[k]->take_checkpoint_request()) << "every waiting request was told";
      }
      return;
    }
    for (size_t k = 0; k < ne; ++k) {
      for (uint32_t n; (n = e[k]->drain(acts)) > 0;)
        for (uint32_t i = 0; i < n; ++i)
          r[k].log.push_back("a " + std::to_string(acts[i].handle) + " " +
                             std::to_string(int(acts[i].kind)) + " " + std::to_string(int(acts[i].reason)));
      take(k);
    }
  };
  auto time_passes = [&] {
    for (size_t k = 0; k < ne; ++k) {
      if (pending[k] && pending[k]->second <= now) {
        e[k]->checkpoint_done(pending[k]->first, now);
        pending[k].reset();
      }
      e[k]->advance(now);
    }
  };
  for (size_t i = 0; i < items.size();) {
    const size_t n = std::min<size_t>(items.size() - i, 1 + rng() % (2 * Engine::kBurstGroup));
    now += 50'000 + rng() % 200'000;
    time_passes();
    if (burst) {
      std::vector<Engine::Input> in(n);
      std::vector<Engine*> to(n);
      bool flags[2 * Engine::kBurstGroup];
      for (size_t j = 0; j < n; ++j) {
        Item& x = items[i + j];
        in[j] = {x.side, i + j + 1, x.bytes.data(), static_cast<uint32_t>(x.bytes.size())};
        to[j] = e[x.engine].get();
      }
      Engine::push_burst_multi(to, in, now, std::span<bool>(flags, n));
      for (size_t j = 0; j < n; ++j)
        if (items[i + j].side == Side::ingress) r[items[i + j].engine].log.push_back("p " + std::to_string(flags[j]));
    } else {
      for (size_t j = 0; j < n; ++j) {
        Item& x = items[i + j];
        bool to = e[x.engine]->push(x.side, i + j + 1, x.bytes.data(),
                                    static_cast<uint32_t>(x.bytes.size()), now);
        if (x.side == Side::ingress) r[x.engine].log.push_back("p " + std::to_string(to));
      }
    }
    drain();
    i += n;
  }
  for (int k = 0; k < 100; ++k) {
    now += 50'000'000;
    time_passes();
    drain();
  }
  for (size_t k = 0; k < ne; ++k) {
    e[k]->flush_all(now);
  }
  drain();
  for (size_t k = 0; k < ne; ++k) {
    r[k].counters = e[k]->counters();
    EXPECT_EQ(r[k].counters.conservation_error(), "");
  }
  return r;
}

TEST(EngineBurst, ManyEnginesInOneBurstSameOutcome) {
  for (uint64_t seed : {4ull, 5ull}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<std::vector<Ev>> mixes = {make_mix(seed, 20), make_mix(seed + 10, 25),
                                          make_mix(seed + 20, 15)};
    auto one = run_multi(mixes, seed, false);
    for (bool sink : {false, true}) {
      SCOPED_TRACE(sink ? "with a sink" : "without a sink");
      auto multi = run_multi(mixes, seed, true, sink);
      ASSERT_EQ(one.size(), 3u);
      ASSERT_EQ(multi.size(), 3u);
      uint64_t requests = 0;
      for (size_t k = 0; k < 3; ++k) {
        SCOPED_TRACE("engine " + std::to_string(k));
        ASSERT_EQ(one[k].log.size(), multi[k].log.size());
        for (size_t i = 0; i < one[k].log.size(); ++i)
          ASSERT_EQ(one[k].log[i], multi[k].log[i]) << "first difference at entry " << i;
        EXPECT_EQ(one[k].counters.flatten(), multi[k].counters.flatten());
        EXPECT_GT(one[k].counters.released_pvm(), 0u);
        requests += one[k].counters.checkpoint_requests;
      }
      EXPECT_GT(requests, 0u) << "the mixes should diverge somewhere";
    }
  }
}

}  // namespace
}  // namespace lockstep::test
