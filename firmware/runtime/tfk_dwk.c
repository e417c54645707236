/* DEPTHWISE_CONV_2D (and grouped CONV_2D with one input channel per group)
 * for any k_h x k_w kernel, stride, padding and depth multiplier (batch 1,
 * no dilation); see tfk_dwk_params in tfk.h.
 *
 * Output channels go 4 at a time ("groups", one q block each). How the 4
 * lanes of a group read the input (mode):
 *   1: 4 consecutive input channels (depth multiplier 1, or, with
 *      out_stride = dm, one pass per multiplier: lane j -> output
 *      out_off + j * dm);
 *   2: depth multiplier 2: lanes read input channels c, c, c+1, c+1;
 *   4: depth multiplier a multiple of 4: all 4 lanes read channel c.
 * Weights are doubled int16 pairs per tap in SXTB16 lane order
 * ({w0, w2}, {w1, w3}), the bias doubled too, so the accumulator is the 2x
 * that tfk_rq2 takes. The Cortex-M7 path (TFK_USE_DSP) widens the input
 * once per tap into two int16 pairs with SXTAB16 (which also adds the input
 * offset) and does four 16x16 MACs. Taps outside the input are skipped
 * (every pixel runs over the rectangle of its inside taps, so interior
 * pixels need no bounds checks); a group may read up to 3 bytes past its
 * channels, so pixels touching the last input row load with an end check.
 * The activation clamp (where narrower than int8) is applied in the
 * requantization. The portable path runs the same arithmetic one lane at a
 * time. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

static inline __attribute__((always_inline)) int8_t dwk_out(int32_t acc2, const int32_t *mke, int clamp,
                                                             int32_t lo, int32_t hi) {
  int32_t v = tfk_rq2(acc2, mke[0], mke[1], mke[2]);
  if (clamp) {  /* [lo, hi] is inside int8 */
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
  } else {
    v = tfk_sat8(v);
  }
  return (int8_t)v;
}

#if TFK_USE_DSP
/* the two int16 pairs of a tap (input + offset) for the lanes {0, 2}, {1, 3} */
static inline __attribute__((always_inline)) void dwk_ld(int mode, int safe, const int8_t *x, const int8_t *end,
                                                          uint32_t off2, uint32_t *x02, uint32_t *x13) {
  if (mode == 1) {
    uint32_t v;
    if (safe && x + 4 > end) {
      v = 0;
      for (int i = 0; x + i < end; ++i) v |= (uint32_t)(uint8_t)x[i] << (8 * i);
    } else {
      v = tfk_ld32(x);
    }
    *x02 = tfk_sxtab16(off2, v);
    *x13 = tfk_sxtab16_ror8(off2, v);
  } else if (mode == 2) {
    uint32_t h = (uint8_t)x[0];
    if (!safe || x + 1 < end) h |= (uint32_t)(uint8_t)x[1] << 8;  /* LDRH where unchecked */
    *x02 = *x13 = tfk_sxtab16(off2, h | (h << 8));  /* bytes 0, 2 = x[0], x[1] */
  } else {
    const uint32_t b = (uint8_t)x[0];
    *x02 = *x13 = tfk_sxtab16(off2, b | (b << 16));
  }
}
#endif

/* how the tap loop walks a rectangle of ny x nx inside taps: n_outer runs
 * of n_inner taps, input step sxi within a run and sxo after it, weight
 * step (int32 words) 2 within a run and 2 + wso after it */
typedef struct {
  int32_t n_outer, n_inner, sxi, sxo, wso;
} dwk_geom;

static inline __attribute__((always_inline)) dwk_geom dwk_walk(int32_t ny, int32_t nx, int32_t C, int32_t row,
                                                                int32_t kw) {
  dwk_geom r;
  if (kw == 1) {  /* a column of taps, consecutive weights */
    r.n_outer = 1;
    r.n_inner = ny;
    r.sxi = row;
    r.sxo = 0;
    r.wso = 0;
  } else if (nx == 1) {  /* a column of taps, weights kw pairs apart */
    r.n_outer = ny;
    r.n_inner = 1;
    r.sxi = 0;
    r.sxo = row;
    r.wso = 2 * kw - 2;
  } else {
    r.n_outer = ny;
    r.n_inner = nx;
    r.sxi = C;
    r.sxo = row - nx * C;
    r.wso = 2 * (kw - nx);
  }
  if (ny <= 0 || nx <= 0) r.n_outer = 0;
  return r;
}

/* one output pixel over the rectangle of inside taps: xb at its first tap
 * (channel 0), w at the weights of that tap in group 0, ny x nx taps
 * (walked as gm) */
static inline __attribute__((always_inline)) void dwk_pixel(const int8_t *xb, const int8_t *end, int8_t *y,
                                                             int32_t ny, int32_t nx, dwk_geom gm, const int32_t *w,
                                                             const int32_t *q, int32_t G, int32_t C,
                                                             int32_t row, int32_t kw, int32_t wg, int32_t os,
                                                             int32_t in_offset, int32_t lo, int32_t hi,
                                                             int mode, int clamp, int safe) {
#if TFK_USE_DSP
  (void)ny;
  (void)nx;
  (void)C;
  (void)row;
  (void)kw;
  const uint32_t off2 = tfk_dup16(in_offset);
  const int32_t n_outer = gm.n_outer, n_inner = gm.n_inner, sxi = gm.sxi, sxo = gm.sxo, wso = gm.wso;
  if (mode != 1) os = 1;
  for (int32_t g = G; g > 0; --g, q += TFK_DWK_Q, w += wg) {
    int32_t a0 = q[3], a1 = q[4], a2 = q[5], a3 = q[6];
    const int8_t *xp = xb + q[0];
    const int32_t *wp = w;
    for (int32_t o = n_outer; o > 0; --o) {
      for (int32_t i = n_inner; i > 0; --i) {
        uint32_t x02, x13, w02, w13;
        dwk_ld(mode, safe, xp, end, off2, &x02, &x13);
        TFK_LDRD(wp, w02, w13);
        a0 = tfk_smlabb(x02, w02, a0);
        a2 = tfk_smlatt(x02, w02, a2);
        a1 = tfk_smlabb(x13, w13, a1);
        a3 = tfk_smlatt(x13, w13, a3);
        xp += sxi;
      }
      xp += sxo;
      wp += wso;
    }
    int8_t *yo = y + q[1];
    const int32_t lanes = q[2];
    if (os == 1 && lanes == 4) {
      yo[0] = dwk_out(a0, q + 7, clamp, lo, hi);
      yo[1] = dwk_out(a1, q + 10, clamp, lo, hi);
      yo[2] = dwk_out(a2, q + 13, clamp, lo, hi);
      yo[3] = dwk_out(a3, q + 16, clamp, lo, hi);
    } else {
      yo[0] = dwk_out(a0, q + 7, clamp, lo, hi);
      if (lanes > 1) yo[os] = dwk_out(a1, q + 10, clamp, lo, hi);
      if (lanes > 2) yo[2 * os] = dwk_out(a2, q + 13, clamp, lo, hi);
      if (lanes > 3) yo[3 * os] = dwk_out(a3, q + 16, clamp, lo, hi);
    }
  }
#else
  (void)end;
  (void)safe;
  (void)gm;
  for (int32_t g = G; g > 0; --g, q += TFK_DWK_Q, w += wg) {
    for (int32_t j = 0; j < q[2]; ++j) {
      /* lane j: input channel q[0] + (j, j / 2 or 0), weight word j & 1, half j >> 1 */
      const int32_t c = q[0] + (mode == 1 ? j : mode == 2 ? j >> 1 : 0);
      const int sh = (j & 2) ? 16 : 0;
      int32_t acc = q[3 + j];
      for (int32_t ky = 0; ky < ny; ++ky)
        for (int32_t kx = 0; kx < nx; ++kx) {
          const int32_t w2 = (int16_t)(((uint32_t)w[2 * (ky * kw + kx) + (j & 1)] >> sh) & 0xFFFFu);
          acc += w2 * (xb[ky * row + kx * C + c] + in_offset);
        }
      y[q[1] + j * os] = dwk_out(acc, q + 7 + 3 * j, clamp, lo, hi);
    }
  }
#endif
}

static inline __attribute__((always_inline)) void dwk_body(const tfk_dwk_params *p, const int8_t *in,
                                                            int8_t *out, int mode, int clamp) {
  const int32_t C = p->in_c, H = p->in_h, W = p->in_w, kh = p->k_h, kw = p->k_w;
  const int32_t row = W * C, ostep = (int32_t)p->out_c, G = p->groups, os = p->out_stride;
  const int32_t wg = 2 * (int32_t)p->taps, in_offset = p->in_offset, lo = p->act_min, hi = p->act_max;
  const int32_t oh = p->out_h, ow = p->out_w, sh = p->stride_h, sw = p->stride_w;
  const int32_t pt = p->pad_top, pl = p->pad_left;
  const int32_t *w0 = p->weights, *q = p->q;
  const int8_t *end = in + H * row;
  /* loads that may pass the channels of a pixel (partial groups) */
  const int over = mode == 1 ? (C & 3) != 0 : mode == 2 ? (C & 1) : 0;
  int8_t *y = out;
  for (int32_t oy = 0; oy < oh; ++oy) {
    const int32_t iy0 = oy * sh - pt;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = H - iy0 < kh ? H - iy0 : kh;
    const int safe = over && iy0 + ky1 >= H;
    const int8_t *xrow = in + (iy0 + ky0) * row;
    const int32_t *wrow = w0 + 2 * ky0 * kw;
    const int32_t ny = ky1 - ky0;
    const dwk_geom full = dwk_walk(ny, kw, C, row, kw);  /* pixels with all kw columns inside */
    for (int32_t ox = 0; ox < ow; ++ox, y += ostep) {
      const int32_t ix0 = ox * sw - pl;
      const int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = W - ix0 < kw ? W - ix0 : kw;
      const int8_t *xb = xrow + (ix0 + kx0) * C;
      const int32_t nx = kx1 - kx0;
      const dwk_geom gm = nx == kw ? full : dwk_walk(ny, nx, C, row, kw);
      if (safe)
        dwk_pixel(xb, end, y, ny, nx, gm, wrow + 2 * kx0, q, G, C, row, kw, wg, os, in_offset,
                  lo, hi, mode, clamp, 1);
      else
        dwk_pixel(xb, end, y, ny, nx, gm, wrow + 2 * kx0, q, G, C, row, kw, wg, os, in_offset,
                  lo, hi, mode, clamp, 0);
    }
  }
}

void tfk_dwk(const tfk_dwk_params *p, const int8_t *in, int8_t *out) {
  const int clamp = p->act_min > -128 || p->act_max < 127;
  if (p->mode == 1) {
    if (clamp) dwk_body(p, in, out, 1, 1);
    else dwk_body(p, in, out, 1, 0);
  } else if (p->mode == 2) {
    if (clamp) dwk_body(p, in, out, 2, 1);
    else dwk_body(p, in, out, 2, 0);
  } else {
    if (clamp) dwk_body(p, in, out, 4, 1);
    else dwk_body(p, in, out, 4, 0);
  }
}
