/* 3x3 DEPTHWISE_CONV_2D (depth multiplier 1), any stride and padding.
 *
 * Channels go 4 at a time. Weights arrive as doubled int16 pairs in SXTB16
 * lane order ({c0, c2}, {c1, c3} per tap, zero past the last channel), and
 * per group {2 * bias x 4, then m, K, e per channel}, so the accumulator is
 * already the doubled value tfk_rq2 wants. The Cortex-M7 path (TFK_USE_DSP)
 * needs per tap one input word, two SXTAB16 (which also add the input
 * offset), one LDRD of weights and four 16x16 MACs. Interior pixels run all
 * 9 taps without bounds checks, a whole channel group per asm block (bias
 * LDM, taps, requantization) on the device; border pixels skip
 * out-of-bounds taps exactly like the reference. An activation table is a
 * second pass over the output (layers without one skip the table load).
 * A partial last group reads the next pixel's bytes (they meet zero
 * weights); only pixels that could read past the end of the input tensor
 * use byte loads. The portable path runs the same arithmetic one channel at
 * a time. */
#include "tfk.h"
#if TFK_USE_DSP
#include "cortex_m/tfk_simd.h"
#endif

/* mke: {m, K, e} of the channel */
static inline __attribute__((always_inline)) int8_t dw_out(int32_t acc2, const int32_t *mke, const int8_t *lut) {
  const int32_t v = tfk_sat8(tfk_rq2(acc2, mke[0], mke[1], mke[2]));
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

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Interior pixel: the G full groups of 4 channels, then (P = C % 4) the
 * partial one, each group one asm block (bias, 9 taps as DW_TAP,
 * requantization as dw_out) with the registers assigned by hand (LDM needs
 * ascending lists). q and y are parked on the stack during the taps, their
 * registers and lr hold the weights (two LDMs of 3 words per kernel row). */
/* one kernel row, 3 taps: the 6 weight words by two LDMs of 3 (r2, r3, lr) */
#define DWF_ROW                                                          \
  "ldr r9, [r0]\n\t"                                                     \
  "ldm r1!, {r2, r3, lr}\n\t"                                            \
  "sxtab16 r8, r10, r9\n\t"                                              \
  "sxtab16 r9, r10, r9, ror #8\n\t"                                      \
  "smlabb r4, r8, r2, r4\n\t"                                            \
  "smlatt r6, r8, r2, r6\n\t"                                            \
  "smlabb r5, r9, r3, r5\n\t"                                            \
  "smlatt r7, r9, r3, r7\n\t"                                            \
  "ldr r9, [r0, r11]\n\t"                                                \
  "sxtab16 r8, r10, r9\n\t"                                              \
  "sxtab16 r9, r10, r9, ror #8\n\t"                                      \
  "smlabb r4, r8, lr, r4\n\t"                                            \
  "smlatt r6, r8, lr, r6\n\t"                                            \
  "ldm r1!, {r2, r3, lr}\n\t"                                            \
  "smlabb r5, r9, r2, r5\n\t"                                            \
  "smlatt r7, r9, r2, r7\n\t"                                            \
  "ldr r9, [r0, r11, lsl #1]\n\t"                                        \
  "sxtab16 r8, r10, r9\n\t"                                              \
  "sxtab16 r9, r10, r9, ror #8\n\t"                                      \
  "smlabb r4, r8, r3, r4\n\t"                                            \
  "smlatt r6, r8, r3, r6\n\t"                                            \
  "smlabb r5, r9, lr, r5\n\t"                                            \
  "smlatt r7, r9, lr, r7\n\t"
#define DWF_TAPS                                                         \
  "ldm r2!, {r4, r5, r6, r7}\n\t"                                        \
  "strd r2, r3, [sp, #-8]!\n\t"                                          \
  DWF_ROW "add r0, r0, r12\n\t"                                          \
  DWF_ROW "add r0, r0, r12\n\t"                                          \
  DWF_ROW "sub r0, r0, r12, lsl #1\n\t"                                  \
  "add r0, r0, #4\n\t"                                                   \
  "ldrd r2, r3, [sp], #8\n\t"
#define DWF_RQ(A)                                                        \
  "ldm r2!, {r8, r9, lr}\n\t"                                            \
  "add r9, r9, " A ", asr #31\n\t"                                       \
  "smmlar " A ", " A ", r8, r9\n\t"                                      \
  "asr " A ", " A ", lr\n\t"                                             \
  "ssat " A ", #8, " A "\n\t"
#define DWF_REGS                                                         \
  register const int8_t *xp_ __asm__("r0") = xp;                         \
  register const int32_t *wp_ __asm__("r1") = wp;                        \
  register const int32_t *qp_ __asm__("r2") = qp;                        \
  register int8_t *yp_ __asm__("r3") = yp;                               \
  register uint32_t off_ __asm__("r10") = off2;                          \
  register int32_t C_ __asm__("r11") = C;                                \
  register int32_t row_ __asm__("r12") = row;                            \
  register int32_t a0 __asm__("r4"), a1 __asm__("r5"), a2 __asm__("r6"), a3 __asm__("r7"); \
  register uint32_t t0 __asm__("r8"), t1 __asm__("r9"), t2 __asm__("lr");
#define DWF_OPS                                                          \
  : "=&r"(a0), "=&r"(a1), "=&r"(a2), "=&r"(a3), "=&r"(t0), "=&r"(t1), "=&r"(t2), \
    "+r"(xp_), "+r"(wp_), "+r"(qp_), "+r"(yp_)                           \
  : "r"(off_), "r"(C_), "r"(row_)                                        \
  : "memory"

static inline __attribute__((always_inline)) void dw_full_groups(const int8_t *xp, int8_t *yp,
                                                                  const int32_t *wp, const int32_t *qp,
                                                                  int32_t G, int32_t P, uint32_t off2,
                                                                  int32_t C, int32_t row) {
  for (; G > 0; --G) {
    DWF_REGS
    /* volatile: it stores the outputs (no register output is used) */
    __asm__ __volatile__(DWF_TAPS DWF_RQ("r4") DWF_RQ("r5") DWF_RQ("r6") DWF_RQ("r7")
                         "strb r4, [r3, #0]\n\t"
                         "strb r5, [r3, #1]\n\t"
                         "strb r6, [r3, #2]\n\t"
                         "strb r7, [r3, #3]\n\t"
                         "add r3, r3, #4\n\t"
                         DWF_OPS);
    xp = xp_;
    wp = wp_;
    qp = qp_;
    yp = yp_;
    (void)t0;
    (void)t1;
    (void)t2;
  }
  if (P) {  /* the partial last group: all 4 lanes computed (zero weights past C), P stored */
    DWF_REGS
    __asm__(DWF_TAPS DWF_RQ("r4") DWF_RQ("r5") DWF_RQ("r6") DWF_OPS);
    (void)t0;
    (void)t1;
    (void)t2;
    (void)a3;
    yp[0] = (int8_t)a0;
    if (P > 1) yp[1] = (int8_t)a1;
    if (P > 2) yp[2] = (int8_t)a2;
  }
}

/* An interior run of npix output pixels (input step xstep), the pixel loop
 * in the asm too: per pixel the full groups, then the partial one (P = C % 4
 * of its outputs stored), pixel by pixel (the output may overlap the
 * input, see the planner). Frame: x, w0, q0, end of the full groups' q, P,
 * pixels left, xstep. */
static inline __attribute__((always_inline)) void dw_run(const int8_t *x, const int32_t *w0, const int32_t *q0,
                                                          int8_t *y, int32_t G, int32_t P, int32_t npix,
                                                          int32_t xstep, uint32_t off2, int32_t C, int32_t row) {
  register const int8_t *r0 __asm__("r0") = x;
  register const int32_t *r1 __asm__("r1") = w0;
  register const int32_t *r2 __asm__("r2") = q0;
  register int8_t *r3 __asm__("r3") = y;
  register const int32_t *r4 __asm__("r4") = q0 + 16 * G;
  register int32_t r5 __asm__("r5") = P;
  register int32_t r6 __asm__("r6") = npix;
  register int32_t r7 __asm__("r7") = xstep;
  register uint32_t off_ __asm__("r10") = off2;
  register int32_t C_ __asm__("r11") = C;
  register int32_t row_ __asm__("r12") = row;
  __asm__ __volatile__(
      "push {r0, r1, r2, r4, r5, r6, r7}\n"
      "5:\n\t"
      "ldm sp, {r0, r1, r2}\n\t"
      "ldr r8, [sp, #12]\n\t"
      "cmp r2, r8\n\t"
      "beq 7f\n"
      "6:\n\t"
      DWF_TAPS DWF_RQ("r4") DWF_RQ("r5") DWF_RQ("r6") DWF_RQ("r7")
      "bfi r4, r5, #8, #8\n\t"
      "bfi r4, r6, #16, #8\n\t"
      "bfi r4, r7, #24, #8\n\t"
      "str r4, [r3], #4\n\t"
      "ldr r8, [sp, #12]\n\t"
      "cmp r2, r8\n\t"
      "bne 6b\n"
      "7:\n\t"
      "ldr r8, [sp, #16]\n\t"
      "cmp r8, #0\n\t"
      "beq 8f\n\t"
      DWF_TAPS DWF_RQ("r4") DWF_RQ("r5") DWF_RQ("r6")
      "ldr r8, [sp, #16]\n\t"
      "strb r4, [r3, #0]\n\t"
      "cmp r8, #2\n\t"
      "blt 9f\n\t"
      "strb r5, [r3, #1]\n\t"
      "beq 9f\n\t"
      "strb r6, [r3, #2]\n"
      "9:\n\t"
      "add r3, r3, r8\n"
      "8:\n\t"
      "ldr r0, [sp, #0]\n\t"
      "ldr r8, [sp, #24]\n\t"
      "add r0, r0, r8\n\t"
      "str r0, [sp, #0]\n\t"
      "ldr r8, [sp, #20]\n\t"
      "subs r8, r8, #1\n\t"
      "str r8, [sp, #20]\n\t"
      "bne 5b\n\t"
      "add sp, sp, #28\n\t"
      : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7)
      : "r"(off_), "r"(C_), "r"(row_)
      : "r8", "r9", "lr", "cc", "memory");
}
#undef DWF_OPS
#undef DWF_REGS
#undef DWF_RQ
#undef DWF_TAPS
#undef DWF_ROW
#endif

/* One output pixel. check: 1, some taps may be outside the input; 2, also a load
 * may pass the end of the input tensor. */
static inline __attribute__((always_inline)) void dw_pixel(const tfk_dw3_params *p, const int8_t *in,
                                                            const int8_t *end, int8_t *y, int iy0,
                                                            int ix0, int check, const int8_t *lut,
                                                            int skip_full) {
  (void)skip_full;
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
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  if (!check && !lut && !skip_full) dw_full_groups(base, y, wg, q, C >> 2, 0, off2, C, row);
  if (!check && !lut) {
    c = 4 * (C >> 2);
    wg += 18 * (C >> 2);
    q += 16 * (C >> 2);
  }
#endif
  for (; c < C; c += 4, wg += 18, q += 16) {
    int32_t a0 = q[0], a1 = q[1], a2 = q[2], a3 = q[3];
    const int8_t *xc = base + c;
    if (!check) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
      /* the 9 taps in one block: gcc would otherwise spill the 8 tap
       * offsets (same arithmetic as DW_TAP) */
      const int8_t *xp = xc;
      const int32_t *wp = wg;
      uint32_t t0, t1, w0, w1;
#define DW_ASM_TAP(ADDR)                                                 \
      "ldr %[t1], " ADDR "\n\t"                                          \
      "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                                \
      "sxtab16 %[t0], %[off], %[t1]\n\t"                                  \
      "sxtab16 %[t1], %[off], %[t1], ror #8\n\t"                          \
      "smlabb %[a0], %[t0], %[w0], %[a0]\n\t"                             \
      "smlatt %[a2], %[t0], %[w0], %[a2]\n\t"                             \
      "smlabb %[a1], %[t1], %[w1], %[a1]\n\t"                             \
      "smlatt %[a3], %[t1], %[w1], %[a3]\n\t"
#define DW_ASM_ROW                                                       \
      DW_ASM_TAP("[%[xp]]") DW_ASM_TAP("[%[xp], %[C]]") DW_ASM_TAP("[%[xp], %[C], lsl #1]")
      __asm__(DW_ASM_ROW "add %[xp], %[xp], %[row]\n\t"
              DW_ASM_ROW "add %[xp], %[xp], %[row]\n\t"
              DW_ASM_ROW
              : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(wp),
                [t0] "=&r"(t0), [t1] "=&r"(t1), [w0] "=&r"(w0), [w1] "=&r"(w1)
              : [off] "r"(off2), [C] "r"(C), [row] "r"(row)
              : "memory");
#undef DW_ASM_ROW
#undef DW_ASM_TAP
#else
      const int8_t *r1 = xc + row, *r2 = r1 + row;
      DW_TAP(0, xc, DW_LD); DW_TAP(1, xc + C, DW_LD); DW_TAP(2, xc + 2 * C, DW_LD);
      DW_TAP(3, r1, DW_LD); DW_TAP(4, r1 + C, DW_LD); DW_TAP(5, r1 + 2 * C, DW_LD);
      DW_TAP(6, r2, DW_LD); DW_TAP(7, r2 + C, DW_LD); DW_TAP(8, r2 + 2 * C, DW_LD);
#endif
    } else if (check == 2) {
      for (int ky = ky0; ky < ky1; ++ky)
        for (int kx = kx0; kx < kx1; ++kx) DW_TAP(ky * 3 + kx, xc + ky * row + kx * C, DW_LDT);
    } else {  /* no load can pass the end of the input */
      for (int ky = ky0; ky < ky1; ++ky)
        for (int kx = kx0; kx < kx1; ++kx) DW_TAP(ky * 3 + kx, xc + ky * row + kx * C, DW_LD);
    }
    if (c + 4 <= C) {
      y[c] = dw_out(a0, q + 4, lut);
      y[c + 1] = dw_out(a1, q + 7, lut);
      y[c + 2] = dw_out(a2, q + 10, lut);
      y[c + 3] = dw_out(a3, q + 13, lut);
    } else {  /* partial group */
      y[c] = dw_out(a0, q + 4, lut);
      if (c + 1 < C) y[c + 1] = dw_out(a1, q + 7, lut);
      if (c + 2 < C) y[c + 2] = dw_out(a2, q + 10, lut);
    }
  }
}
#else
static inline __attribute__((always_inline)) void dw_pixel(const tfk_dw3_params *p, const int8_t *in,
                                                            const int8_t *end, int8_t *y, int iy0,
                                                            int ix0, int check, const int8_t *lut,
                                                            int skip_full) {
  (void)end;
  (void)check;
  (void)skip_full;
  const int32_t C = p->channels, W = p->in_w, H = p->in_h;
  for (int32_t c = 0; c < C; ++c) {
    /* weights: group c/4, word (c & 1), half (c >> 1) & 1 */
    const int32_t *wg = p->weights + (c >> 2) * 18 + (c & 1);
    const int32_t *q = p->q + 16 * (c >> 2);  /* the group's {b0..b3, m K e x4} */
    const int sh = (c & 2) ? 16 : 0;
    int32_t acc = q[c & 3];
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
    y[c] = dw_out(acc, q + 4 + 3 * (c & 3), lut);
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
    if (iy0 + 3 + last > p->in_h) {  /* loads may pass the end of the input */
      for (int ox = 0; ox < p->out_w; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 2, lut, 0);
      continue;
    }
    if (iy0 < 0) {
      for (int ox = 0; ox < p->out_w; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut, 0);
      continue;
    }
    int ox = 0;
    for (; ox < xlo; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut, 0);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (!lut) {
      /* interior run: all in one asm loop (dw_run) */
      const uint32_t off2 = tfk_dup16(p->in_offset);
      const int32_t row = (int32_t)p->in_w * C, G = C >> 2, xstep = sw * C;
      const int8_t *x = in + ((int32_t)iy0 * p->in_w + ox * sw - p->pad_left) * C;
      if (xhi > ox) dw_run(x, p->weights, p->q, y + ox * C, G, C & 3, xhi - ox, xstep, off2, C, row);
      ox = xhi > ox ? xhi : ox;
    }
#endif
    for (; ox < xhi; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 0, lut, 0);
    for (; ox < p->out_w; ++ox) dw_pixel(p, in, end, y + ox * C, iy0, ox * sw - p->pad_left, 1, lut, 0);
  }
}

void tfk_dw3x3(const tfk_dw3_params *p, const int8_t *in, int8_t *out) {
  /* one body without a table (no per-output table load); an activation
   * table, where there is one, is a second pass over the output */
  dw_body(p, in, out, 0);
  if (p->lut) {
    const int8_t *lut = p->lut + 128;
    const int32_t n = (int32_t)p->out_h * p->out_w * p->channels;
    for (int32_t i = 0; i < n; ++i) out[i] = lut[out[i]];
  }
}
