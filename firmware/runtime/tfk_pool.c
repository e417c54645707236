/* MEAN, AVERAGE_POOL_2D, MAX_POOL_2D (int8, reference rounding). */
#include "tfk.h"

void tfk_mean(const tfk_mean_params *p, const int8_t *in, int8_t *out) {
  const int32_t reduce = p->reduce, inner = p->inner;
  for (int32_t o = 0; o < p->outer; ++o) {
    const int8_t *base = in + o * reduce * inner;
    for (int32_t i = 0; i < inner; ++i) {
      int32_t sum = 0;
      for (int32_t r = 0; r < reduce; ++r) sum += base[r * inner + i];
      /* QuantizedMeanOrSum: rescale (sum - zp * n) by mult/shift, which the
       * compiler already divided by n */
      const int32_t v = tfk_mbqm(sum - p->in_zp * reduce, p->mult, p->shift) + p->out_zp;
      out[o * inner + i] = tfk_clamp8(v, -128, 127);
    }
  }
}

void tfk_avg_pool(const tfk_pool_params *p, const int8_t *in, int8_t *out) {
  const int in_h = p->in_h, in_w = p->in_w, ch = p->channels;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * ch;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int y0 = oy * p->stride_h - p->pad_top;
      const int fy0 = y0 < 0 ? -y0 : 0;
      const int fy1 = (in_h - y0) < p->k_h ? (in_h - y0) : p->k_h;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int x0 = ox * p->stride_w - p->pad_left;
        const int fx0 = x0 < 0 ? -x0 : 0;
        const int fx1 = (in_w - x0) < p->k_w ? (in_w - x0) : p->k_w;
        const int32_t count = (int32_t)(fy1 - fy0) * (fx1 - fx0);
        for (int c = 0; c < ch; ++c) {
          int32_t acc = 0;
          for (int fy = fy0; fy < fy1; ++fy)
            for (int fx = fx0; fx < fx1; ++fx)
              acc += in_b[((int32_t)(y0 + fy) * in_w + (x0 + fx)) * ch + c];
          if (count > 0)  /* reference: round half away from zero */
            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          *out++ = tfk_clamp8(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tfk_max_pool(const tfk_pool_params *p, const int8_t *in, int8_t *out) {
  const int in_h = p->in_h, in_w = p->in_w, ch = p->channels;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * ch;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int y0 = oy * p->stride_h - p->pad_top;
      const int fy0 = y0 < 0 ? -y0 : 0;
      const int fy1 = (in_h - y0) < p->k_h ? (in_h - y0) : p->k_h;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int x0 = ox * p->stride_w - p->pad_left;
        const int fx0 = x0 < 0 ? -x0 : 0;
        const int fx1 = (in_w - x0) < p->k_w ? (in_w - x0) : p->k_w;
        for (int c = 0; c < ch; ++c) {
          int32_t m = -128;
          for (int fy = fy0; fy < fy1; ++fy)
            for (int fx = fx0; fx < fx1; ++fx) {
              const int32_t v = in_b[((int32_t)(y0 + fy) * in_w + (x0 + fx)) * ch + c];
              if (v > m) m = v;
            }
          *out++ = tfk_clamp8(m, p->act_min, p->act_max);
        }
      }
    }
  }
}
