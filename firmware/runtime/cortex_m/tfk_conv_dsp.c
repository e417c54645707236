/* CONV_2D and DEPTHWISE_CONV_2D for Cortex-M7 (ARMv7E-M DSP), bit-exact with
 * the portable kernels.
 *
 * CONV_2D: per output pixel the receptive field is staged once in scratch as
 * int16 (input + input_offset; 0 for padding taps, which contributes nothing
 * exactly like a skipped tap). Within each group of 4 values the order is
 * x0 x2 x1 x3, which is what SXTB16 produces from 4 consecutive weight bytes
 * (bytes 0,2 then, after ROR 8, bytes 1,3); so weights stay in TFLite order
 * and each SMLAD does two MACs. Two output channels share each column load. */
#include "tfk.h"

#if TFK_USE_DSP
#include "tfk_simd.h"

/* staging position of element k: groups of 4 are stored as 0 2 1 3 */
static inline int32_t col_pos(int32_t k, int32_t full) {
  static const int8_t perm[4] = {0, 2, 1, 3};
  return k < full ? (k & ~3) + perm[k & 3] : k;
}

static inline int32_t dot_col(const int8_t *w, const int16_t *col, int32_t groups, int32_t tail,
                              int32_t acc) {
  const int16_t *c = col;
  for (int32_t g = 0; g < groups; ++g, w += 4, c += 4) {
    const uint32_t wv = tfk_ld32(w);
    acc = tfk_smlad(tfk_sxtb16(wv), tfk_ld32(c), acc);
    acc = tfk_smlad(tfk_sxtb16(tfk_ror8(wv)), tfk_ld32(c + 2), acc);
  }
  for (int32_t t = 0; t < tail; ++t) acc += (int32_t)w[t] * c[t];
  return acc;
}

static inline int8_t requant(const tfk_conv_params *p, int32_t acc, int oc) {
  if (p->bias) acc += p->bias[oc];
  acc = tfk_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
  return tfk_clamp8(acc, p->act_min, p->act_max);
}

void tfk_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out, int16_t *scratch) {
  if (p->groups > 1) {  /* grouped: the reference loop (MicroNet's rare kxk grouped convs) */
    tfk_conv2d_ref(p, in, out);
    return;
  }
  const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
  const int k_h = p->k_h, k_w = p->k_w;
  const int32_t K = (int32_t)k_h * k_w * in_c;
  const int32_t groups = K >> 2, tail = K & 3, full = K & ~3;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int iy0 = oy * p->stride_h - p->pad_top;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int ix0 = ox * p->stride_w - p->pad_left;
        /* stage the receptive field */
        int32_t k = 0;
        for (int ky = 0; ky < k_h; ++ky) {
          const int iy = iy0 + ky * p->dil_h;
          for (int kx = 0; kx < k_w; ++kx) {
            const int ix = ix0 + kx * p->dil_w;
            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
              for (int ic = 0; ic < in_c; ++ic, ++k) scratch[col_pos(k, full)] = 0;
            } else {
              const int8_t *x = in_b + ((int32_t)iy * in_w + ix) * in_c;
              for (int ic = 0; ic < in_c; ++ic, ++k)
                scratch[col_pos(k, full)] = (int16_t)(x[ic] + p->in_offset);
            }
          }
        }
        /* two output channels per pass share the staged column */
        int oc = 0;
        for (; oc + 1 < out_c; oc += 2) {
          const int8_t *w0 = p->weights + (int32_t)oc * K;
          const int8_t *w1 = w0 + K;
          int32_t acc0 = 0, acc1 = 0;
          const int16_t *c = scratch;
          for (int32_t g = 0; g < groups; ++g, w0 += 4, w1 += 4, c += 4) {
            const uint32_t c02 = tfk_ld32(c), c13 = tfk_ld32(c + 2);
            const uint32_t a = tfk_ld32(w0), bw = tfk_ld32(w1);
            acc0 = tfk_smlad(tfk_sxtb16(a), c02, acc0);
            acc0 = tfk_smlad(tfk_sxtb16(tfk_ror8(a)), c13, acc0);
            acc1 = tfk_smlad(tfk_sxtb16(bw), c02, acc1);
            acc1 = tfk_smlad(tfk_sxtb16(tfk_ror8(bw)), c13, acc1);
          }
          for (int32_t t = 0; t < tail; ++t) {
            acc0 += (int32_t)w0[t] * c[t];
            acc1 += (int32_t)w1[t] * c[t];
          }
          out[oc] = requant(p, acc0, oc);
          out[oc + 1] = requant(p, acc1, oc + 1);
        }
        if (oc < out_c) out[oc] = requant(p, dot_col(p->weights + (int32_t)oc * K, scratch, groups, tail, 0), oc);
        out += out_c;
      }
    }
  }
}

/* Depthwise: channels are contiguous, so 4 channels are processed per word:
 * SXTAB16 adds the input offset while widening channels (c, c+2) and, after
 * ROR 8, (c+1, c+3); SMLABB/SMLATT accumulate each channel separately. */
void tfk_depthwise_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out) {
  const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
  const int k_h = p->k_h, k_w = p->k_w, dm = p->depth_mult;
  const uint32_t off2 = tfk_dup16(p->in_offset);
  const int c4 = dm == 1 ? (in_c & ~3) : 0;
  for (int b = 0; b < p->batches; ++b) {
    const int8_t *in_b = in + (int32_t)b * in_h * in_w * in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
      const int iy0 = oy * p->stride_h - p->pad_top;
      for (int ox = 0; ox < p->out_w; ++ox) {
        const int ix0 = ox * p->stride_w - p->pad_left;
        for (int c = 0; c < c4; c += 4) {
          int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          for (int ky = 0; ky < k_h; ++ky) {
            const int iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int kx = 0; kx < k_w; ++kx) {
              const int ix = ix0 + kx * p->dil_w;
              if (ix < 0 || ix >= in_w) continue;
              const uint32_t xv = tfk_ld32(in_b + ((int32_t)iy * in_w + ix) * in_c + c);
              const uint32_t wv = tfk_ld32(p->weights + ((int32_t)ky * k_w + kx) * out_c + c);
              const uint32_t x02 = tfk_sxtab16(off2, xv), x13 = tfk_sxtab16(off2, tfk_ror8(xv));
              const uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16(tfk_ror8(wv));
              a0 = tfk_smlabb(x02, w02, a0);
              a2 = tfk_smlatt(x02, w02, a2);
              a1 = tfk_smlabb(x13, w13, a1);
              a3 = tfk_smlatt(x13, w13, a3);
            }
          }
          out[c] = requant(p, a0, c);
          out[c + 1] = requant(p, a1, c + 1);
          out[c + 2] = requant(p, a2, c + 2);
          out[c + 3] = requant(p, a3, c + 3);
        }
        /* remaining channels (and depth multipliers > 1): scalar */
        for (int ic = c4; ic < in_c; ++ic) {
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
                acc += (int32_t)p->weights[((int32_t)ky * k_w + kx) * out_c + oc] * (x + p->in_offset);
              }
            }
            out[oc] = requant(p, acc, oc);
          }
        }
        out += out_c;
      }
    }
  }
}

#endif /* TFK_USE_DSP */
