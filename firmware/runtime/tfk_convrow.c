/* CONV_2D without im2col (see tfk_convrow_params in tfk.h). The Cortex-M7
 * path computes two horizontally adjacent interior pixels x two output
 * channels per pass with SMLAD (4 input bytes per step, SXTB16 lane order
 * on both operands); zero-padded weight rows make the over-read bytes of
 * each row contribute nothing, and pixels whose over-read would leave the
 * input tensor go the exact scalar way, like border pixels. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

static inline __attribute__((always_inline)) int8_t cr_out(int32_t acc, const int32_t *q, const int8_t *lut) {
  const int32_t v = tfk_sat8(tfk_rq(acc, q));
  return lut ? lut[(uint8_t)v] : (int8_t)v;
}

/* exact scalar pixel: taps outside the input are skipped */
static inline __attribute__((always_inline)) void cr_scalar(const tfk_convrow_params *p, const int8_t *in,
                                                             int8_t *y, int iy0, int ix0, const int8_t *lut) {
  const int32_t W = p->in_w, H = p->in_h, ic = p->in_c;
  const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = H - iy0 < p->k_h ? H - iy0 : p->k_h;
  const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = W - ix0 < p->k_w ? W - ix0 : p->k_w;
  for (int32_t o = 0; o < p->out_c; ++o) {
    int32_t acc = p->bias0[o];
    for (int ky = ky0; ky < ky1; ++ky) {
      const int8_t *w = p->weights + ((int32_t)o * p->k_h + ky) * p->row4 + kx0 * ic;
      const int8_t *x = in + ((int32_t)(iy0 + ky) * W + ix0 + kx0) * ic;
      const int32_t len = (kx1 - kx0) * ic;
      for (int32_t k = 0; k < len; ++k) acc += (int32_t)w[k] * (x[k] + p->in_offset);
    }
    y[o] = cr_out(acc, p->rq + 3 * o, lut);
  }
}

#if TFK_USE_DSP
/* interior pixels a (and b = a + stride, when pair) */
static inline __attribute__((always_inline)) void cr_fast(const tfk_convrow_params *p, const int8_t *xa,
                                                           int8_t *ya, int pair, const int8_t *lut) {
  const int32_t row4 = p->row4, kh = p->k_h, oc = p->out_c;
  const int32_t rstride = (int32_t)p->in_w * p->in_c;
  const int8_t *xb = xa + (int32_t)p->stride_w * p->in_c;
  int8_t *yb = ya + oc;
  const int8_t *w = p->weights;
  const int32_t *q = p->rq;
  int32_t o = 0;
  for (; o + 2 <= oc; o += 2, w += 2 * kh * row4, q += 6) {
    int32_t a0 = p->bias[o], a1 = p->bias[o + 1], b0 = a0, b1 = a1;
    const int8_t *w1 = w + kh * row4;
    for (int32_t ky = 0; ky < kh; ++ky) {
      const int8_t *ra = xa + ky * rstride, *rb = xb + ky * rstride;
      const int8_t *u0 = w + ky * row4, *u1 = w1 + ky * row4;
      for (int32_t k = 0; k < row4; k += 4) {
        const uint32_t xv = tfk_ld32(ra + k);
        const uint32_t x02 = tfk_sxtb16(xv), x13 = tfk_sxtb16_ror8(xv);
        uint32_t wv = tfk_ld32(u0 + k);
        const uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16_ror8(wv);
        wv = tfk_ld32(u1 + k);
        const uint32_t v02 = tfk_sxtb16(wv), v13 = tfk_sxtb16_ror8(wv);
        a0 = tfk_smlad(x02, w02, a0);
        a0 = tfk_smlad(x13, w13, a0);
        a1 = tfk_smlad(x02, v02, a1);
        a1 = tfk_smlad(x13, v13, a1);
        if (pair) {
          const uint32_t yv = tfk_ld32(rb + k);
          const uint32_t y02 = tfk_sxtb16(yv), y13 = tfk_sxtb16_ror8(yv);
          b0 = tfk_smlad(y02, w02, b0);
          b0 = tfk_smlad(y13, w13, b0);
          b1 = tfk_smlad(y02, v02, b1);
          b1 = tfk_smlad(y13, v13, b1);
        }
      }
    }
    ya[o] = cr_out(a0, q, lut);
    ya[o + 1] = cr_out(a1, q + 3, lut);
    if (pair) {
      yb[o] = cr_out(b0, q, lut);
      yb[o + 1] = cr_out(b1, q + 3, lut);
    }
  }
  if (o < oc) {
    int32_t a0 = p->bias[o], b0 = a0;
    for (int32_t ky = 0; ky < kh; ++ky) {
      const int8_t *ra = xa + ky * rstride, *rb = xb + ky * rstride, *u0 = w + ky * row4;
      for (int32_t k = 0; k < row4; k += 4) {
        const uint32_t wv = tfk_ld32(u0 + k);
        const uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16_ror8(wv);
        const uint32_t xv = tfk_ld32(ra + k);
        a0 = tfk_smlad(tfk_sxtb16(xv), w02, a0);
        a0 = tfk_smlad(tfk_sxtb16_ror8(xv), w13, a0);
        if (pair) {
          const uint32_t yv = tfk_ld32(rb + k);
          b0 = tfk_smlad(tfk_sxtb16(yv), w02, b0);
          b0 = tfk_smlad(tfk_sxtb16_ror8(yv), w13, b0);
        }
      }
    }
    ya[o] = cr_out(a0, q, lut);
    if (pair) yb[o] = cr_out(b0, q, lut);
  }
}
#endif

static inline __attribute__((always_inline)) void cr_body(const tfk_convrow_params *p, const int8_t *in,
                                                           int8_t *out, const int8_t *lut) {
  const int32_t W = p->in_w, H = p->in_h, ic = p->in_c, oc = p->out_c;
  const int sh = p->stride_h, sw = p->stride_w, kh = p->k_h, kw = p->k_w;
#if TFK_USE_DSP
  const int32_t total = (int32_t)H * W * ic;
#endif
  for (int oy = 0; oy < p->out_h; ++oy) {
    const int iy0 = oy * sh - p->pad_top;
    int8_t *y = out + (int32_t)oy * p->out_w * oc;
    const int rows_in = iy0 >= 0 && iy0 + kh <= H;
    int ox = 0;
    while (ox < p->out_w) {
      const int ix0 = ox * sw - p->pad_left;
#if TFK_USE_DSP
      /* interior and the over-read of its last row stays inside the input */
      if (rows_in && ix0 >= 0 && ix0 + kw <= W &&
          ((int32_t)(iy0 + kh - 1) * W + ix0) * ic + p->row4 <= total) {
        const int ix1 = ix0 + sw;
        const int pair = ox + 1 < p->out_w && ix1 + kw <= W &&
                         ((int32_t)(iy0 + kh - 1) * W + ix1) * ic + p->row4 <= total;
        const int8_t *xa = in + ((int32_t)iy0 * W + ix0) * ic;
        if (pair) {
          cr_fast(p, xa, y + ox * oc, 1, lut);
          ox += 2;
        } else {
          cr_fast(p, xa, y + ox * oc, 0, lut);
          ox += 1;
        }
        continue;
      }
#else
      (void)rows_in;
      (void)kw;
      (void)W;
      (void)ic;
#endif
      cr_scalar(p, in, y + ox * oc, iy0, ix0, lut);
      ox += 1;
    }
  }
}

void tfk_conv_rows(const tfk_convrow_params *p, const int8_t *in, int8_t *out) {
  if (p->lut) cr_body(p, in, out, p->lut);
  else cr_body(p, in, out, 0);
}
