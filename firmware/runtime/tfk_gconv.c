/* Grouped 1x1 CONV_2D: the filter has depth in_c / groups (more than one
 * input channel per group; one channel per group runs as depthwise, other
 * grouped convs on tfk_conv2d). Output channel o reads input channels
 * [g * grp_in, (g + 1) * grp_in) of its group g = o / (out_c / groups), like
 * TFLite's reference ConvPerChannel.
 *
 * tfk_grouped_conv1x1: 1x1, stride 1, no padding, with the input offset
 * folded into the bias and the exact fast requantization (tfk_rq). Weight
 * rows are zero-padded to grp_in4, so 4-byte activation loads may run into
 * the next group or pixel: those bytes meet zero weights. Portable C, and
 * (TFK_USE_DSP) a Cortex-M7 loop over pixel pairs: per group, the two
 * pixels' channels are widened once into int16 pairs (SXTB16 / SXTB16 ROR 8
 * lane order), then 2 output channels x 2 pixels per pass with SMLAD against
 * weights widened the same way. Pixel pairs whose loads would leave the
 * input take the scalar path. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

static inline __attribute__((always_inline)) int8_t gpw_out(int32_t acc, const int32_t *q, int32_t lo,
                                                             int32_t hi) {
  const int32_t v = tfk_rq(acc, q);
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* one pixel, all output channels, scalar (reads exactly in_c bytes) */
static void gpw_pixel(const tfk_gpw_params *p, const int8_t *x, int8_t *y) {
  const int32_t groups = p->groups, gi = p->grp_in, gi4 = p->grp_in4, go = p->out_c / groups;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int8_t *w = p->weights;
  int32_t o = 0;
  for (int32_t g = 0; g < groups; ++g, x += gi) {
    for (int32_t j = 0; j < go; ++j, ++o, w += gi4) {
      int32_t acc = p->bias[o];
      for (int32_t k = 0; k < gi; ++k) acc += (int32_t)w[k] * x[k];
      y[o] = gpw_out(acc, p->rq + 3 * o, lo, hi);
    }
  }
}

void tfk_grouped_conv1x1(const tfk_gpw_params *p, const int8_t *in, int8_t *out) {
  const int32_t n = p->pixels, ic = p->in_c, oc = p->out_c;
  int32_t px = 0;
#if TFK_USE_DSP
  const int32_t groups = p->groups, gi = p->grp_in, gi4 = p->grp_in4, go = oc / groups;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int32_t total = n * ic, last = (groups - 1) * gi + gi4;  /* bytes one pixel's loads span */
  uint32_t xw[TFK_GPW_MAX_GI4];  /* one group of both pixels: per 4 channels {a02, a13, b02, b13} */
  for (; px + 2 <= n && (px + 1) * ic + last <= total; px += 2) {
    const int8_t *xa = in + px * ic, *xb = xa + ic;
    int8_t *ya = out + px * oc, *yb = ya + oc;
    const int8_t *w = p->weights;
    const int32_t *bias = p->bias, *q = p->rq;
    for (int32_t g = 0; g < groups; ++g, xa += gi, xb += gi) {
      for (int32_t k = 0; k < gi4; k += 4) {
        const uint32_t va = tfk_ld32(xa + k), vb = tfk_ld32(xb + k);
        xw[k] = tfk_sxtb16(va);
        xw[k + 1] = tfk_sxtb16_ror8(va);
        xw[k + 2] = tfk_sxtb16(vb);
        xw[k + 3] = tfk_sxtb16_ror8(vb);
      }
      int32_t j = 0;
      for (; j + 2 <= go; j += 2, w += 2 * gi4, bias += 2, q += 6) {
        int32_t a0 = bias[0], a1 = bias[1];
        int32_t b0 = a0, b1 = a1;
        const int8_t *w1 = w + gi4;
        for (int32_t k = 0; k < gi4; k += 4) {
          const uint32_t x02 = xw[k], x13 = xw[k + 1], y02 = xw[k + 2], y13 = xw[k + 3];
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
        *ya++ = gpw_out(a0, q0, lo, hi);
        *yb++ = gpw_out(b0, q0, lo, hi);
        *ya++ = gpw_out(a1, q1, lo, hi);
        *yb++ = gpw_out(b1, q1, lo, hi);
      }
      if (j < go) {
        int32_t a0 = bias[0], b0 = a0;
        for (int32_t k = 0; k < gi4; k += 4) {
          const uint32_t wv = tfk_ld32(w + k);
          const uint32_t w02 = tfk_sxtb16(wv), w13 = tfk_sxtb16_ror8(wv);
          a0 = tfk_smlad(xw[k], w02, a0);
          a0 = tfk_smlad(xw[k + 1], w13, a0);
          b0 = tfk_smlad(xw[k + 2], w02, b0);
          b0 = tfk_smlad(xw[k + 3], w13, b0);
        }
        *ya++ = gpw_out(a0, q, lo, hi);
        *yb++ = gpw_out(b0, q, lo, hi);
        w += gi4;
        bias += 1;
        q += 3;
      }
    }
  }
#endif
  for (; px < n; ++px) gpw_pixel(p, in + px * ic, out + px * oc);
}
