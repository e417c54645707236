/* Pointwise CONV_2D (1x1, stride 1, no padding): out[p][o] = requant(
 * bias[o] + sum_k w[o][k] * in[p][k]), with the input offset folded into the
 * bias by the compiler. Portable C, and (TFK_USE_DSP) a Cortex-M7 loop that
 * computes 2 pixels x 2 output channels per pass: 4 input channels per step,
 * SXTB16 / SXTB16 ROR 8 unpack activations and weights into the same lane
 * order, SMLAD does two MACs. Weight rows are zero-padded to in_c4, so the
 * 4-byte activation loads may run into the next pixel: those bytes meet
 * zero weights. Pixels whose loads would leave the tensor take the scalar
 * path. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

static inline __attribute__((always_inline)) int8_t pw_out(int32_t acc, const int32_t *q, const int8_t *lut) {
  const int32_t v = tfk_sat8(tfk_rq(acc, q));
  return lut ? lut[(uint8_t)v] : (int8_t)v;
}

/* one pixel, all output channels, scalar (reads exactly in_c bytes) */
static inline __attribute__((always_inline)) void pw_pixel(const tfk_pw_params *p, const int8_t *x,
                                                            int8_t *y, const int8_t *lut) {
  const int8_t *w = p->weights;
  for (int32_t o = 0; o < p->out_c; ++o, w += p->in_c4) {
    int32_t acc = p->bias[o];
    for (int32_t k = 0; k < p->in_c; ++k) acc += (int32_t)w[k] * x[k];
    y[o] = pw_out(acc, p->rq + 3 * o, lut);
  }
}

static inline __attribute__((always_inline)) void pw_body(const tfk_pw_params *p, const int8_t *in,
                                                           int8_t *out, const int8_t *lut) {
  const int32_t n = p->pixels, ic = p->in_c, oc = p->out_c;
  int32_t px = 0;
#if TFK_USE_DSP
  const int32_t ic4 = p->in_c4;
  const int32_t total = n * ic;
  for (; px + 2 <= n && (px + 1) * ic + ic4 <= total; px += 2) {
    const int8_t *xa = in + px * ic, *xb = xa + ic;
    int8_t *ya = out + px * oc, *yb = ya + oc;
    const int8_t *w = p->weights;
    const int32_t *q = p->rq;
    int32_t o = 0;
    for (; o + 2 <= oc; o += 2, w += 2 * ic4, q += 6) {
      int32_t a0 = p->bias[o], a1 = p->bias[o + 1];
      int32_t b0 = a0, b1 = a1;
      const int8_t *w1 = w + ic4;
      for (int32_t k = 0; k < ic4; k += 4) {
        const uint32_t xv = tfk_ld32(xa + k), yv = tfk_ld32(xb + k);
        const uint32_t x02 = tfk_sxtb16(xv), x13 = tfk_sxtb16_ror8(xv);
        const uint32_t y02 = tfk_sxtb16(yv), y13 = tfk_sxtb16_ror8(yv);
        uint32_t wv = tfk_ld32(w + k);
        uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16_ror8(wv);
        a0 = tfk_smlad(x02, w02, a0);
        a0 = tfk_smlad(x13, w13, a0);
        b0 = tfk_smlad(y02, w02, b0);
        b0 = tfk_smlad(y13, w13, b0);
        wv = tfk_ld32(w1 + k);
        w02 = tfk_sxtb16(wv);
        w13 = tfk_sxtb16_ror8(wv);
        a1 = tfk_smlad(x02, w02, a1);
        a1 = tfk_smlad(x13, w13, a1);
        b1 = tfk_smlad(y02, w02, b1);
        b1 = tfk_smlad(y13, w13, b1);
      }
      /* copy the requantization constants first: the int8 stores below
       * may alias anything, which would force reloads */
      const int32_t q0[3] = {q[0], q[1], q[2]}, q1[3] = {q[3], q[4], q[5]};
      ya[o] = pw_out(a0, q0, lut);
      yb[o] = pw_out(b0, q0, lut);
      ya[o + 1] = pw_out(a1, q1, lut);
      yb[o + 1] = pw_out(b1, q1, lut);
    }
    if (o < oc) {
      int32_t a0 = p->bias[o], b0 = a0;
      for (int32_t k = 0; k < ic4; k += 4) {
        const uint32_t xv = tfk_ld32(xa + k), yv = tfk_ld32(xb + k), wv = tfk_ld32(w + k);
        const uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16_ror8(wv);
        a0 = tfk_smlad(tfk_sxtb16(xv), w02, a0);
        a0 = tfk_smlad(tfk_sxtb16_ror8(xv), w13, a0);
        b0 = tfk_smlad(tfk_sxtb16(yv), w02, b0);
        b0 = tfk_smlad(tfk_sxtb16_ror8(yv), w13, b0);
      }
      ya[o] = pw_out(a0, q, lut);
      yb[o] = pw_out(b0, q, lut);
    }
  }
#endif
  for (; px < n; ++px) pw_pixel(p, in + px * ic, out + px * oc, lut);
}

void tfk_conv1x1(const tfk_pw_params *p, const int8_t *in, int8_t *out) {
  if (p->lut) pw_body(p, in, out, p->lut);
  else pw_body(p, in, out, 0);
}
