/* 3x3 DEPTHWISE_CONV_2D (depth multiplier 1), any stride and padding.
 *
 * Channels go 4 at a time. Weights arrive as doubled int16 pairs in SXTB16
 * lane order ({c0, c2}, {c1, c3} per tap, zero past the last channel), and
 * per channel {2 * bias, m, K, e}, so the accumulator is already the doubled
 * value tfk_rq2 wants. The Cortex-M7 path (TFK_USE_DSP) needs per tap one
 * input word, two SXTAB16 (which also add the input offset), two weight
 * words and four 16x16 MACs. Interior pixels run all 9 taps without bounds
 * checks; border pixels skip out-of-bounds taps exactly like the reference.
 * A partial last group reads the next pixel's bytes (they meet zero
 * weights); only pixels that could read past the end of the input tensor
 * use byte loads. The portable path runs the same arithmetic one channel at
 * a time. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

static inline __attribute__((always_inline)) int8_t dw_out(int32_t acc2, const int32_t *q, const int8_t *lut) {
  const int32_t v = tfk_sat8(tfk_rq2(acc2, q[1], q[2], q[3]));
  return lut ? lut[v] : (int8_t)v;
}

#if TFK_USE_DSP
/* 4 bytes at x, but only those before `end` (the rest read as 0) */
static inline uint32_t ld_tail(const int8_t *x, const int8_t *end) {
  if (x + 4 <= end) return tfk_ld32(x);
  uint32_t v = 0;
  for (int i = 0; x + i < end; ++i) v |= (uint32_t)(uint8_t)x[i] << (8 * i);
  return v;
}

#define DW_TAP(t, ADDR, LOAD)                                            \
  do {                                                                   \
    const uint32_t xv = LOAD(ADDR);                                      \
    const uint32_t x02 = tfk_sxtab16(off2, xv);                          \
    const uint32_t x13 = tfk_sxtab16_ror8(off2, xv);                     \
    const uint32_t w02 = (uint32_t)wg[2 * (t)];                          \
    const uint32_t w13 = (uint32_t)wg[2 * (t) + 1];                      \
    a0 = tfk_smlabb(x02, w02, a0);                                       \
    a2 = tfk_smlatt(x02, w02, a2);                                       \
    a1 = tfk_smlabb(x13, w13, a1);                                       \
    a3 = tfk_smlatt(x13, w13, a3);                                       \
  } while (0)

#define DW_LD(a) tfk_ld32(a)
#define DW_LDT(a) ld_tail((a), end)

/* One output pixel. check: some taps may be outside the input, or a load
 * may pass the end of the input tensor. */
static inline __attribute__((always_inline)) void dw_pixel(const tfk_dw3_params *p, const int8_t *in,
                                                            const int8_t *end, int8_t *y, int iy0,
                                                            int ix0, int check, const int8_t *lut) {
  const int32_t C = p->channels, W = p->in_w, H = p->in_h;
  const uint32_t off2 = tfk_dup16(p->in_offset);
  const int32_t *wg = p->weights;
  const int32_t *q = p->q;
  const int8_t *base = in + ((int32_t)iy0 * W + ix0) * C;
  const int32_t row = W * C;
  int ky0 = 0, ky1 = 3, kx0 = 0, kx1 = 3;
  if (check) {
    ky0 = iy0 < 0 ? -iy0 : 0;
    ky1 = H - iy0 < 3 ? H - iy0 : 3;
    kx0 = ix0 < 0 ? -ix0 : 0;
    kx1 = W - ix0 < 3 ? W - ix0 : 3;
  }
  int32_t c = 0;
  for (; c < C; c += 4, wg += 18, q += 16) {
    int32_t a0 = q[0], a1 = q[4], a2 = q[8], a3 = q[12];
    const int8_t *xc = base + c;
    if (!check) {
      const int8_t *r1 = xc + row, *r2 = r1 + row;
      DW_TAP(0, xc, DW_LD); DW_TAP(1, xc + C, DW_LD); DW_TAP(2, xc + 2 * C, DW_LD);
      DW_TAP(3, r1, DW_LD); DW_TAP(4, r1 + C, DW_LD); DW_TAP(5, r1 + 2 * C, DW_LD);
      DW_TAP(6, r2, DW_LD); DW_TAP(7, r2 + C, DW_LD); DW_TAP(8, r2 + 2 * C, DW_LD);
    } else {
      for (int ky = ky0; ky < ky1; ++ky)
        for (int kx = kx0; kx < kx1; ++kx) DW_TAP(ky * 3 + kx, xc + ky * row + kx * C, DW_LDT);
    }
    if (c + 4 <= C) {
      y[c] = dw_out(a0, q, lut);
      y[c + 1] = dw_out(a1, q + 4, lut);
      y[c + 2] = dw_out(a2, q + 8, lut);
      y[c + 3] = dw_out(a3, q + 12, lut);
    } else {  /* partial group */
      y[c] = dw_out(a0, q, lut);
      if (c + 1 < C) y[c + 1] = dw_out(a1, q + 4, lut);
      if (c + 2 < C) y[c + 2] = dw_out(a2, q + 8, lut);
    }
  }
}
#else
static inline __attribute__((always_inline)) void dw_pixel(const tfk_dw3_params *p, const int8_t *in,
                                                            const int8_t *end, int8_t *y, int iy0,
                                                            int ix0, int check, const int8_t *lut) {
  (void)end;
  (void)check;
  const int32_t C = p->channels, W = p->in_w, H = p->in_h;
  for (int32_t c = 0; c < C; ++c) {
    /* weights: group c/4, word (c & 1), half (c >> 1) & 1 */
    const int32_t *wg = p->weights + (c >> 2) * 18 + (c & 1);
    const int32_t *q = p->q + 4 * c;
    const int sh = (c & 2) ? 16 : 0;
    int32_t acc = q[0];
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = iy0 + ky;
      if (iy < 0 || iy >= H) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int ix = ix0 + kx;
        if (ix < 0 || ix >= W) continue;
        const int32_t w2 = (int16_t)(((uint32_t)wg[2 * (ky * 3 + kx)] >> sh) & 0xFFFFu);
        acc += w2 * (in[((int32_t)iy * W + ix) * C + c] + p->in_offset);
      }
    }
    y[c] = dw_out(acc, q, lut);
  }
}
#endif

static inline __attribute__((always_inline)) void dw_body(const tfk_dw3_params *p, const int8_t *in,
                                                           int8_t *out, const int8_t *lut) {
  const int32_t C = p->channels;
  const int8_t *end = in + (int32_t)p->in_h * p->in_w * C;
  const int sh = p->stride_h, sw = p->stride_w;
  /* a partial last group reads up to 3 bytes past its pixel: rows that
   * touch the last input row take the checked path */
  const int last = (C & 3) ? 1 : 0;
  /* output columns whose 3 taps are all inside: ox in [xlo, xhi) */
  int xlo = (p->pad_left + sw - 1) / sw;
  int xhi = (p->in_w - 3 + p->pad_left) / sw + 1;
  if (p->in_w < 3) xhi = xlo;
  if (xhi > p->out_w) xhi = p->out_w;
  if (xlo > xhi) xlo = xhi;
  for (int oy = 0; oy < p->out_h; ++oy) {
    const int iy0 = oy * sh - p->pad_top;
    int8_t *y = out + (int32_t)oy * p->out_w * C;
    if (iy0 < 0 || iy0 + 3 + last > p->in_h) {
      for (int ox = 0; ox < p->out_w; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut);
      continue;
    }
    int ox = 0;
    for (; ox < xlo; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut);
    for (; ox < xhi; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 0, lut);
    for (; ox < p->out_w; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut);
  }
}

void tfk_dw3x3(const tfk_dw3_params *p, const int8_t *in, int8_t *out) {
  /* no activation table: the identity one (one body instead of two) */
  dw_body(p, in, out, (p->lut ? p->lut : tfk_identity_lut) + 128);
}
