// libFuzzer target: QEMU's chardev framing as the chardev ports read it, and the SYN/ACK
// aligner on the frames it yields. The input is what a peer wrote on a socket; the first
// byte picks vnet_hdr_support and seeds how the stream is cut into reads.
// Oracle: a plain whole-buffer decode of the same bytes (header, bounds, body) must give
// the same frames, empty frames and fatal error as the incremental parser fed in pieces
// of any size. The aligner must never change a frame's length and may only rewrite a
// frame it reports as aligned. A broken check traps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "compare/parse.h"
#include "dataplane/chardev/chardev_codec.h"
#include "dataplane/chardev/syn_align.h"

namespace {

using lockstep::chardev::ChardevParser;
using lockstep::chardev::ParseStatus;
using Bytes = std::vector<uint8_t>;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Small bound so that oversize is reachable from short inputs.
constexpr uint32_t kMax = 2048;

struct Decoded {
  std::vector<Bytes> frames;
  std::vector<uint32_t> vnet_lens;
  size_t empty = 0;
  ParseStatus fatal = ParseStatus::need_more;  // oversize, bad_vnet_len, or none
};

Decoded reference(const uint8_t* d, size_t n, bool vnet) {
  Decoded r;
  const size_t hl = vnet ? 8 : 4;
  size_t pos = 0;
  while (n - pos >= hl) {
    const uint32_t len = lockstep::load_be32(d + pos);
    const uint32_t vl = vnet ? lockstep::load_be32(d + pos + 4) : 0;
    if (len > kMax) {
      r.fatal = ParseStatus::oversize;
      return r;
    }
    if (vl > len) {
      r.fatal = ParseStatus::bad_vnet_len;
      return r;
    }
    if (len == 0) {
      ++r.empty;
      pos += hl;
      continue;
    }
    if (n - pos - hl < len) return r;  // the last frame is incomplete
    r.frames.emplace_back(d + pos + hl, d + pos + hl + len);
    r.vnet_lens.push_back(vl);
    pos += hl + len;
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool vnet = data[0] & 1;
  uint32_t seed = data[0] | 0x9e370000u;
  const uint8_t* in = data + 1;
  const size_t n = size - 1;
  const Decoded want = reference(in, n, vnet);

  Decoded got;
  ChardevParser parser(vnet, kMax);
  Bytes body;
  const uint8_t* p = in;
  const uint8_t* const end = in + n;
  bool dead = false;
  while (p < end && !dead) {
    seed = seed * 1103515245u + 12345u;
    const size_t cut = 1 + (seed >> 16) % 97;  // reads of 1..97 bytes
    const uint8_t* chunk_end = p + std::min<size_t>(cut, static_cast<size_t>(end - p));
    while (p < chunk_end && !dead) {
      const ParseStatus s = parser.step(p, chunk_end);
      switch (s) {
        case ParseStatus::need_buffer:
          require(parser.body_len() > 0 && parser.body_len() <= kMax);
          require(parser.vnet_hdr_len() <= parser.body_len());
          body.assign(parser.body_len(), 0);
          parser.set_buffer(body.data());
          break;
        case ParseStatus::frame:
          got.frames.push_back(body);
          got.vnet_lens.push_back(parser.vnet_hdr_len());
          require(!parser.in_body() && parser.buffer() == nullptr);
          break;
        case ParseStatus::empty:
          ++got.empty;
          break;
        case ParseStatus::need_more:
          require(p == chunk_end);
          break;
        case ParseStatus::oversize:
        case ParseStatus::bad_vnet_len:
          got.fatal = s;
          dead = true;
          require(parser.dead() && p == chunk_end);
          break;
      }
    }
  }
  require(got.frames == want.frames);
  require(got.vnet_lens == want.vnet_lens);
  require(got.empty == want.empty);
  require(got.fatal == want.fatal);

  // The frames, alternately as the PVM's and the SVM's output, through the aligner.
  lockstep::chardev::SynAligner aligner(64);
  for (size_t i = 0; i < got.frames.size(); ++i) {
    Bytes f = got.frames[i];
    const uint32_t off = got.vnet_lens[i];
    uint8_t* eth = f.data() + off;
    const uint32_t len = static_cast<uint32_t>(f.size() - off);
    if (len == 0) continue;
    if (i % 2 == 0) {
      aligner.on_pvm(eth, len);
      continue;
    }
    const Bytes before = f;
    const auto v = aligner.on_svm(eth, len, false);
    require(f.size() == before.size());
    if (v != lockstep::chardev::AlignVerdict::aligned) require(f == before);
    if (v == lockstep::chardev::AlignVerdict::aligned) {
      lockstep::ParsedFrame a, b;
      require(lockstep::parse_frame(eth, len, a) == lockstep::ParseStatus::ok && a.is_tcp());
      lockstep::parse_frame(before.data() + off, len, b);
      require(a.payload_len == b.payload_len && a.tcp_flags == b.tcp_flags);
    }
  }
  return 0;
}
