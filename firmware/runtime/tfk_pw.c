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

/* ---- tfk_pw16: int16 weights, pixels widened once per pass ------------- */

static inline __attribute__((always_inline)) int8_t pw16_out(int32_t acc2, int32_t m, int32_t K, int32_t e,
                                                              const int8_t *lut) {
  const int32_t v = tfk_sat8(tfk_rq2(acc2, m, K, e));
  return lut ? lut[v] : (int8_t)v;
}

#if TFK_USE_DSP
/* 4 bytes at x, but only those before `end` (the rest read as 0) */
static inline uint32_t pw16_ld(const int8_t *x, const int8_t *end) {
  if (x + 4 <= end) return tfk_ld32(x);
  uint32_t v = 0;
  for (int i = 0; x + i < end; ++i) v |= (uint32_t)(uint8_t)x[i] << (8 * i);
  return v;
}

#define PW16_GROUP()                                                          \
  do {                                                                        \
    uint32_t xa02, xa13, xb02, xb13, u, v;                                    \
    TFK_LDRD(x, xa02, xa13);                                                  \
    TFK_LDRD(x, xb02, xb13);                                                  \
    TFK_LDRD(w, u, v);                                                        \
    a0 = tfk_smlad(xa02, u, a0);                                              \
    a0 = tfk_smlad(xa13, v, a0);                                              \
    c0 = tfk_smlad(xb02, u, c0);                                              \
    c0 = tfk_smlad(xb13, v, c0);                                              \
    TFK_LDRD(w, u, v);                                                        \
    a1 = tfk_smlad(xa02, u, a1);                                              \
    a1 = tfk_smlad(xa13, v, a1);                                              \
    c1 = tfk_smlad(xb02, u, c1);                                              \
    c1 = tfk_smlad(xb13, v, c1);                                              \
  } while (0)

/* One pass over all output channel pairs. xb holds, per group of 4 input
 * channels, {a02, a13, b02, b13} for pixels a and b; two = 0: only pixel a
 * is real. G: the group count when it is a small constant (the loop
 * unrolls fully), else 0 (use `groups`). */
static inline __attribute__((always_inline)) void pw16_pass(const tfk_pw16_params *p, const uint32_t *xb,
                                                             int32_t groups, int8_t *ya, int8_t *yb,
                                                             int two, const int8_t *lut, const int G) {
  const int32_t oc = p->out_c;
  const uint32_t *w = (const uint32_t *)p->weights;
  const uint32_t *q = (const uint32_t *)p->q;
  for (int32_t o = 0; o < oc; o += 2) {
    uint32_t b0, b1, m0, k0, e0, e1, m1, k1;
    TFK_LDRD(q, b0, b1);
    int32_t a0 = (int32_t)b0, c0 = (int32_t)b0, a1 = (int32_t)b1, c1 = (int32_t)b1;
    const uint32_t *x = xb;
    if (G) {
#pragma GCC unroll 4
      for (int32_t g = 0; g < G; ++g) PW16_GROUP();
    } else {
      for (int32_t g = 0; g < groups; ++g) PW16_GROUP();
    }
    TFK_LDRD(q, m0, k0);
    TFK_LDRD(q, e0, e1);
    TFK_LDRD(q, m1, k1);
    *ya++ = pw16_out(a0, (int32_t)m0, (int32_t)k0, (int32_t)e0, lut);
    if (two) *yb++ = pw16_out(c0, (int32_t)m0, (int32_t)k0, (int32_t)e0, lut);
    if (o + 1 < oc) {
      *ya++ = pw16_out(a1, (int32_t)m1, (int32_t)k1, (int32_t)e1, lut);
      if (two) *yb++ = pw16_out(c1, (int32_t)m1, (int32_t)k1, (int32_t)e1, lut);
    }
  }
}

static inline __attribute__((always_inline)) void pw16_body(const tfk_pw16_params *p, const int8_t *in,
                                                             int8_t *out, const int8_t *lut, const int G) {
  uint32_t xb[TFK_PW16_MAX_C4];  /* 2 pixels x in_c4 int16 */
  const int32_t n = p->pixels, ic = p->in_c, oc = p->out_c, groups = G ? G : p->in_c4 >> 2;
  const int8_t *end = in + n * ic;
  const int8_t *xa = in;
  int8_t *y = out;
  int32_t px = 0;
  for (; px + 2 <= n; px += 2, xa += 2 * ic, y += 2 * oc) {
    const int8_t *xbp = xa + ic;
    uint32_t *d = xb;
    if (xbp + 4 * groups <= end) {
      for (int32_t g = 0; g < groups; ++g, d += 4) {
        const uint32_t va = tfk_ld32(xa + 4 * g), vb = tfk_ld32(xbp + 4 * g);
        d[0] = tfk_sxtb16(va);
        d[1] = tfk_sxtb16_ror8(va);
        d[2] = tfk_sxtb16(vb);
        d[3] = tfk_sxtb16_ror8(vb);
      }
    } else {
      for (int32_t g = 0; g < groups; ++g, d += 4) {
        const uint32_t va = pw16_ld(xa + 4 * g, end), vb = pw16_ld(xbp + 4 * g, end);
        d[0] = tfk_sxtb16(va);
        d[1] = tfk_sxtb16_ror8(va);
        d[2] = tfk_sxtb16(vb);
        d[3] = tfk_sxtb16_ror8(vb);
      }
    }
    pw16_pass(p, xb, groups, y, y + oc, 1, lut, G);
  }
  if (px < n) {
    uint32_t *d = xb;
    for (int32_t g = 0; g < groups; ++g, d += 4) {
      const uint32_t va = pw16_ld(xa + 4 * g, end);
      d[0] = d[2] = tfk_sxtb16(va);
      d[1] = d[3] = tfk_sxtb16_ror8(va);
    }
    pw16_pass(p, xb, groups, y, y, 0, lut, G);
  }
}

void tfk_pw16(const tfk_pw16_params *p, const int8_t *in, int8_t *out) {
  /* no activation table: the identity one (one body instead of two) */
  const int8_t *lut = (p->lut ? p->lut : tfk_identity_lut) + 128;
  switch (p->in_c4 >> 2) {
    case 1: pw16_body(p, in, out, lut, 1); break;
    case 2: pw16_body(p, in, out, lut, 2); break;
    case 3: pw16_body(p, in, out, lut, 3); break;
    default: pw16_body(p, in, out, lut, 0); break;
  }
}
#else
/* Portable: weights per output-channel pair and group of 4 input channels
 * {o0: {k0, k2}, {k1, k3}; o1: {k0, k2}, {k1, k3}}; q per pair
 * {b0, b1, m0, K0, e0, e1, m1, K1}. */
void tfk_pw16(const tfk_pw16_params *p, const int8_t *in, int8_t *out) {
  const int32_t n = p->pixels, ic = p->in_c, oc = p->out_c, groups = p->in_c4 >> 2;
  const int8_t *lut = p->lut ? p->lut + 128 : 0;
  for (int32_t px = 0; px < n; ++px) {
    const int8_t *x = in + px * ic;
    int8_t *y = out + px * oc;
    for (int32_t o = 0; o < oc; ++o) {
      const int32_t j = o & 1;
      const int32_t *w = p->weights + (o >> 1) * groups * 4 + 2 * j, *q = p->q + 8 * (o >> 1);
      int32_t acc = q[j];
      for (int32_t k = 0; k < ic; ++k) {
        const uint32_t wv = (uint32_t)w[(k >> 2) * 4 + (k & 1)];
        acc += (int32_t)(int16_t)((wv >> ((k & 2) ? 16 : 0)) & 0xFFFFu) * x[k];
      }
      y[o] = pw16_out(acc, j ? q[6] : q[2], j ? q[7] : q[3], q[4 + j], lut);
    }
  }
}
#endif
