// Internet checksum helpers (RFC 1071) and incremental update (RFC 1624), used to patch
// TCP headers in place after an ack, SACK, TSecr or sequence rewrite.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lockstep {

// One's-complement sum of `len` bytes folded to 16 bits (not inverted), plus `initial`.
uint32_t csum_partial(const uint8_t* data, size_t len, uint32_t initial);
uint16_t csum_fold(uint32_t sum);

// Updates the 16-bit checksum stored big-endian at `csum` for a 32-bit field that changed
// from old_value to new_value (RFC 1624 eqn. 3).
void csum_update32(uint8_t* csum, uint32_t old_value, uint32_t new_value);

}  // namespace lockstep
