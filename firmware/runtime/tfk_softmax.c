/* SOFTMAX int8, following the reference's gemmlowp fixed-point path. */
#include "tfk.h"

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out, three
 * Newton-Raphson steps in Q2.29. */
static int32_t one_over_one_plus_x(int32_t a) {
  const int64_t s = (int64_t)a + INT32_MAX;
  const int32_t half_denominator = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
  const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540, one_q2 = 1 << 29;
  int32_t x = (int32_t)((uint32_t)c48_17 + (uint32_t)tfk_srdhm(half_denominator, cneg32_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (int32_t)((uint32_t)one_q2 - (uint32_t)tfk_srdhm(half_denominator, x));
    const int32_t prod = tfk_srdhm(x, one_minus);  /* Q4 */
    /* Rescale Q4 -> Q2: saturating multiply by 4 */
    const int32_t scaled = prod > (INT32_MAX >> 2) ? INT32_MAX : prod < -(INT32_MAX >> 2) ? INT32_MIN
                                                                                        : prod * 4;
    x = (int32_t)((uint32_t)x + (uint32_t)scaled);
  }
  /* Q1 -> Q0: saturating multiply by 2 */
  return x > (INT32_MAX >> 1) ? INT32_MAX : x < -(INT32_MAX >> 1) ? INT32_MIN : x * 2;
}

static int count_leading_zeros(uint32_t x) {
  int n = 0;
  if (!x) return 32;
  while (!(x & 0x80000000u)) { x <<= 1; ++n; }
  return n;
}

void tfk_softmax(const int32_t *exp_table, int32_t outer, int32_t depth, const int8_t *in, int8_t *out) {
  for (int32_t r = 0; r < outer; ++r, in += depth, out += depth) {
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) if (in[c] > max) max = in[c];
    int32_t sum = 0;  /* Q12.19 accumulator */
    for (int32_t c = 0; c < depth; ++c) sum += tfk_rdbpot(exp_table[max - in[c]], 12);
    /* GetReciprocal: 1 / sum as a Q0.31 scale and a power-of-two exponent */
    const int headroom_plus_one = count_leading_zeros((uint32_t)sum);
    const int bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom_plus_one) - (1u << 31));
    const int32_t scale = one_over_one_plus_x(shifted_minus_one);
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t v = tfk_rdbpot(tfk_srdhm(scale, exp_table[max - in[c]]), bits_over_unit + 31 - 8);
      out[c] = tfk_clamp8(v - 128, -128, 127);
    }
  }
}
