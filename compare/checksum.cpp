#include "compare/checksum.h"

#include "compare/parse.h"

namespace lockstep {

uint32_t csum_partial(const uint8_t* data, size_t len, uint32_t initial) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < len; i += 2) sum += load_be16(data + i);
  if (i < len) sum += uint32_t{data[i]} << 8;
  while (sum >> 32) sum = (sum & 0xffffffffu) + (sum >> 32);
  return static_cast<uint32_t>(sum);
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

void csum_update32(uint8_t* csum, uint32_t old_value, uint32_t new_value) {
  // HC' = ~(~HC + ~m + m')
  uint32_t sum = static_cast<uint16_t>(~load_be16(csum));
  sum += static_cast<uint16_t>(~(old_value >> 16));
  sum += static_cast<uint16_t>(~(old_value & 0xffffu));
  sum += new_value >> 16;
  sum += new_value & 0xffffu;
  store_be16(csum, static_cast<uint16_t>(~csum_fold(sum)));
}

}  // namespace lockstep
