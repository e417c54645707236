/* FULLY_CONNECTED for Cortex-M7 (ARMv7E-M DSP), bit-exact with tfk_fc.c.
 * Input bytes are widened with the input offset folded in (SXTAB16), weights
 * with SXTB16; both in the same (0,2)/(1,3) lane order, so SMLAD pairs them. */
#include "tfk.h"

#if TFK_USE_DSP
#include "tfk_simd.h"

void tfk_fully_connected(const tfk_fc_params *p, const int8_t *in, int8_t *out) {
  const int32_t depth = p->in_depth, d4 = depth & ~3;
  const uint32_t off2 = tfk_dup16(p->in_offset);
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *x = in + (int32_t)b * depth;
    for (int o = 0; o < p->out_depth; ++o) {
      const int8_t *w = p->weights + (int32_t)o * depth;
      int32_t acc = 0, d = 0;
      if (p->w_offset == 0) {  /* symmetric weights: the int8 TFLite case */
        for (; d < d4; d += 4) {
          const uint32_t xv = tfk_ld32(x + d), wv = tfk_ld32(w + d);
          acc = tfk_smlad(tfk_sxtab16(off2, xv), tfk_sxtb16(wv), acc);
          acc = tfk_smlad(tfk_sxtab16(off2, tfk_ror8(xv)), tfk_sxtb16(tfk_ror8(wv)), acc);
        }
      }
      for (; d < depth; ++d) acc += ((int32_t)w[d] + p->w_offset) * ((int32_t)x[d] + p->in_offset);
      if (p->bias) acc += p->bias[o];
      const int c = p->per_channel ? o : 0;
      acc = tfk_mbqm(acc, p->mult[c], p->shift[c]) + p->out_offset;
      *out++ = tfk_clamp8(acc, p->act_min, p->act_max);
    }
  }
}

#endif /* TFK_USE_DSP */
