/* CONV_2D and DEPTHWISE_CONV_2D, portable C (reference loop order). */
#include "tfk.h"

void tfk_conv2d_ref(const tfk_conv_params *p, const int8_t *in, int8_t *out) {
  const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
  const int k_h = p->k_h, k_w = p->k_w;
  const int gi = in_c / p->groups, go = p->out_c / p->groups;  /* per group: in, out channels */
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int iy0 = oy * p->stride_h - p->pad_top;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int ix0 = ox * p->stride_w - p->pad_left;
        for (int oc = 0; oc < p->out_c; ++oc) {
          const int8_t *w_oc = p->weights + (int32_t)oc * k_h * k_w * gi;
          const int c0 = (oc / go) * gi;
          int32_t acc = 0;
          for (int ky = 0; ky < k_h; ++ky) {
            const int iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int kx = 0; kx < k_w; ++kx) {
              const int ix = ix0 + kx * p->dil_w;
              if (ix < 0 || ix >= in_w) continue;
              const int8_t *x = in_b + ((int32_t)iy * in_w + ix) * in_c + c0;
              const int8_t *w = w_oc + ((int32_t)ky * k_w + kx) * gi;
              for (int k = 0; k < gi; ++k) acc += (int32_t)w[k] * ((int32_t)x[k] + p->in_offset);
            }
          }
          if (p->bias) acc += p->bias[oc];
          acc = tfk_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
          *out++ = tfk_clamp8(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

#if !TFK_USE_DSP

void tfk_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out, int16_t *scratch) {
  (void)scratch;  /* only the DSP variant stages input in scratch */
  tfk_conv2d_ref(p, in, out);
}

void tfk_depthwise_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out) {
  const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
  const int k_h = p->k_h, k_w = p->k_w, dm = p->depth_mult;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int iy0 = oy * p->stride_h - p->pad_top;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int ix0 = ox * p->stride_w - p->pad_left;
        for (int ic = 0; ic < in_c; ++ic) {
          for (int m = 0; m < dm; ++m) {
            const int oc = ic * dm + m;
            int32_t acc = 0;
            for (int ky = 0; ky < k_h; ++ky) {
              const int iy = iy0 + ky * p->dil_h;
              if (iy < 0 || iy >= in_h) continue;
              for (int kx = 0; kx < k_w; ++kx) {
                const int ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= in_w) continue;
                const int32_t x = in_b[((int32_t)iy * in_w + ix) * in_c + ic];
                const int32_t w = p->weights[((int32_t)ky * k_w + kx) * out_c + oc];
                acc += w * (x + p->in_offset);
              }
            }
            if (p->bias) acc += p->bias[oc];
            acc = tfk_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
            out[oc] = tfk_clamp8(acc, p->act_min, p->act_max);
          }
        }
        out += out_c;
      }
    }
  }
}

#endif /* !TFK_USE_DSP */
