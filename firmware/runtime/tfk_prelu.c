/* PRELU int8 (TFLite Micro's reference arithmetic): with v = x - in_zp,
 *   v >= 0: MultiplyByQuantizedMultiplier(v, m1, s1) + out_zp
 *   v <  0: MultiplyByQuantizedMultiplier(v * (alpha[c] - alpha_zp), m2, s2) + out_zp
 * clamped to int8. The first branch depends on x alone, so the compiler
 * tabulates it (pos_lut, indexed by the int8 bit pattern). */
#include "tfk.h"

void tfk_prelu(const tfk_prelu_params *p, const int8_t *in, int8_t *out)
{
  const int32_t c = p->channels, astep = p->alpha_per_channel ? 1 : 0;
  for (int32_t i = 0; i < p->outer; ++i, in += c, out += c) {
    const int8_t *a = p->alpha;
    for (int32_t k = 0; k < c; ++k, a += astep) {
      const int32_t v = in[k] + p->in_offset;
      if (v >= 0) {
        out[k] = p->pos_lut[(uint8_t)in[k]];
      } else {
        const int32_t prod = v * (*a + p->alpha_offset);
        const int32_t r = p->rq2 ? tfk_rq(prod, p->rq2) : tfk_mbqm(prod, p->mult2, p->shift2) + p->out_zp;
        out[k] = (int8_t)tfk_sat8(r);
      }
    }
  }
}
