/* FULLY_CONNECTED, portable C. */
#include "tfk.h"

#if !TFK_USE_DSP

void tfk_fully_connected(const tfk_fc_params *p, const int8_t *in, int8_t *out) {
  const int depth = p->in_depth;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *x = in + (int32_t)b * depth;
    for (int o = 0; o < p->out_depth; ++o) {
      const int8_t *w = p->weights + (int32_t)o * depth;
      int32_t acc = 0;
      for (int d = 0; d < depth; ++d)
        acc += ((int32_t)w[d] + p->w_offset) * ((int32_t)x[d] + p->in_offset);
      if (p->bias) acc += p->bias[o];
      const int c = p->per_channel ? o : 0;
      acc = tfk_mbqm(acc, p->mult[c], p->shift[c]) + p->out_offset;
      *out++ = tfk_clamp8(acc, p->act_min, p->act_max);
    }
  }
}

#endif /* !TFK_USE_DSP */
