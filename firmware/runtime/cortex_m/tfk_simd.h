/* ARMv7E-M DSP intrinsics used by the Cortex-M7 kernels.
 *
 * On a DSP-capable Arm core these are the ACLE intrinsics (one instruction
 * each). Everywhere else they are plain C with the same bit-exact semantics,
 * so the Cortex-M7 kernels can be built and checked against the oracle on
 * the host (tests build with -DTFK_USE_DSP=1). */
#ifndef TFK_SIMD_H
#define TFK_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>

/* acc + lo(a)*lo(b) + hi(a)*hi(b), 16-bit halves */
static inline int32_t tfk_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
/* bytes 0 and 2 sign-extended into the two 16-bit halves */
static inline uint32_t tfk_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
/* per half: a_half + sign-extended byte (0 / 2) of x */
static inline uint32_t tfk_sxtab16(uint32_t a, uint32_t x) { return (uint32_t)__sxtab16((int32_t)a, (int32_t)x); }
/* acc + lo(a)*lo(b), acc + hi(a)*hi(b) */
static inline int32_t tfk_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
static inline int32_t tfk_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }

#else /* host emulation of the same instructions */

static inline int32_t tfk_lo16(uint32_t x) { return (int16_t)(x & 0xFFFFu); }
static inline int32_t tfk_hi16(uint32_t x) { return (int16_t)(x >> 16); }

static inline int32_t tfk_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tfk_lo16(a) * tfk_lo16(b)) + (uint32_t)(tfk_hi16(a) * tfk_hi16(b)));
}
static inline uint32_t tfk_sxtb16(uint32_t x) {
  return ((uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu)) |
         ((uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFFu) << 16);
}
static inline uint32_t tfk_sxtab16(uint32_t a, uint32_t x) {
  const uint32_t lo = (uint32_t)(tfk_lo16(a) + (int8_t)(x & 0xFFu)) & 0xFFFFu;
  const uint32_t hi = (uint32_t)(tfk_hi16(a) + (int8_t)((x >> 16) & 0xFFu)) & 0xFFFFu;
  return lo | (hi << 16);
}
static inline int32_t tfk_smlabb(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tfk_lo16(a) * tfk_lo16(b)));
}
static inline int32_t tfk_smlatt(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tfk_hi16(a) * tfk_hi16(b)));
}
#endif

static inline uint32_t tfk_ror8(uint32_t x) { return (x >> 8) | (x << 24); }

/* bytes 1 and 3 sign-extended into the two halves: SXTB16 with ROR #8 (one
 * instruction), and SXTAB16 with ROR #8 */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline uint32_t tfk_sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline uint32_t tfk_sxtab16_ror8(uint32_t a, uint32_t x) {
  uint32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
#else
static inline uint32_t tfk_sxtb16_ror8(uint32_t x) { return tfk_sxtb16(tfk_ror8(x)); }
static inline uint32_t tfk_sxtab16_ror8(uint32_t a, uint32_t x) { return tfk_sxtab16(a, tfk_ror8(x)); }
#endif

/* unaligned-safe 32-bit load / store (compiles to a single LDR/STR on M7) */
static inline uint32_t tfk_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void tfk_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* both 16-bit halves set to v */
static inline uint32_t tfk_dup16(int32_t v) { return ((uint32_t)v & 0xFFFFu) * 0x00010001u; }

/* two consecutive words from *p (8-byte step), then p += 2: one LDRD with
 * post-increment on Arm (GCC rarely pairs the loads itself) */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TFK_LDRD(p, a, b)                                                        \
  __asm__("ldrd %0, %1, [%2], #8" : "=&r"(a), "=&r"(b), "+r"(p)                  \
          : "m"(*(const struct { uint32_t w_[2]; } *)(const void *)(p)))
#else
#define TFK_LDRD(p, a, b) do { (a) = (uint32_t)(p)[0]; (b) = (uint32_t)(p)[1]; (p) += 2; } while (0)
#endif

#endif /* TFK_SIMD_H */
