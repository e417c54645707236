#ifndef TF_CRC32_H
#define TF_CRC32_H
#include <stddef.h>
#include <stdint.h>
/* CRC-32 (IEEE 802.3, zlib's crc32): crc32_update(0, p, n) == zlib.crc32(p). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);
#endif
