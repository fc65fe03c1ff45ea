// Network byte order: big-endian loads and stores of 16, 32 and 64 bits, from bytes
// and, for the control sockets' length prefixes, from and to char buffers. Header only
// and without dependencies: the packet parser and rewriters (compare/), the chardev
// framing (dataplane/chardev/) and the control framing (ctrl/) share it. Written out
// byte by byte: compilers turn each into one load or store and a byte swap, and there is
// no alignment or aliasing question.
#pragma once

#include <cstdint>
#include <string>

namespace lockstep {

inline uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t load_be64(const uint8_t* p) {
  return (uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// The same over char buffers (socket reads, std::string frames).
inline uint32_t load_be32(const char* p) { return load_be32(reinterpret_cast<const uint8_t*>(p)); }
inline void append_be32(std::string& out, uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  out.append(reinterpret_cast<const char*>(b), 4);
}

}  // namespace lockstep
