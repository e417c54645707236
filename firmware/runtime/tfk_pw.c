/* Pointwise CONV_2D (1x1, stride 1, no padding): out[p][o] = requant(
 * bias[o] + sum_k w[o][k] * in[p][k]), with the input offset folded into the
 * bias by the compiler. Portable C, and (TFK_USE_DSP) a Cortex-M7 loop that
 * computes 2 pixels x 2 output channels per pass: 4 input channels per step,
 * SXTB16 / SXTB16 ROR 8 unpack activations and weights into the same lane
 * order, SMLAD does two MACs. Weight rows are zero-padded to in_c4, so the
 * 4-byte activation loads may run into the next pixel: those bytes meet
 * zero weights. Pixels whose loads would leave the tensor take the scalar
 * path. tfk_pw16 on the device: the channel-pair passes (and, for 1-3 input
 * groups and an even out_c, the whole pixel-pair loop with the widening) are
 * hand-allocated asm (LDM of widened pixels, weights and requantization
 * constants); an activation table is a second pass over the output. */
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

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define PW16A_HEAD \
  "push {r0, r1, r2, r3, r4}\n\t" \
  "mov r1, r5\n" \
  "1:\n\t" \
  "ldrd r0, r12, [sp]\n\t" \
  "ldrd r4, r5, [lr]\n\t" \
  "ldrd r2, r3, [lr], #8\n"
#define PW16A_GROUP \
  "ldm r0!, {r6, r7, r8, r9}\n\t" \
  "ldm r1!, {r10, r11}\n\t" \
  "smlad r2, r6, r10, r2\n\t" \
  "smlad r2, r7, r11, r2\n\t" \
  "smlad r4, r8, r10, r4\n\t" \
  "smlad r4, r9, r11, r4\n\t" \
  "ldm r1!, {r10, r11}\n\t" \
  "smlad r3, r6, r10, r3\n\t" \
  "smlad r3, r7, r11, r3\n\t" \
  "smlad r5, r8, r10, r5\n\t" \
  "smlad r5, r9, r11, r5\n\t"
#define PW16A_TAIL_NOPOP \
  "ldm lr!, {r6, r7, r8, r9, r10, r11}\n\t" \
  "add r12, r7, r2, asr #31\n\t" \
  "smmlar r2, r2, r6, r12\n\t" \
  "add r12, r7, r4, asr #31\n\t" \
  "smmlar r4, r4, r6, r12\n\t" \
  "asr r2, r2, r8\n\t" \
  "asr r4, r4, r8\n\t" \
  "ssat r2, #8, r2\n\t" \
  "ssat r4, #8, r4\n\t" \
  "add r12, r11, r3, asr #31\n\t" \
  "smmlar r3, r3, r10, r12\n\t" \
  "add r12, r11, r5, asr #31\n\t" \
  "smmlar r5, r5, r10, r12\n\t" \
  "asr r3, r3, r9\n\t" \
  "asr r5, r5, r9\n\t" \
  "ssat r3, #8, r3\n\t" \
  "ssat r5, #8, r5\n\t" \
  "ldrd r6, r7, [sp, #8]\n\t" \
  "strb r2, [r6], #1\n\t" \
  "strb r3, [r6], #1\n\t" \
  "strb r4, [r7], #1\n\t" \
  "strb r5, [r7], #1\n\t" \
  "strd r6, r7, [sp, #8]\n\t" \
  "ldr r8, [sp, #16]\n\t" \
  "cmp lr, r8\n\t" \
  "bne 1b\n\t"
#define PW16A_TAIL PW16A_TAIL_NOPOP "add sp, sp, #20\n\t"

/* Two pixels, the oc / 2 full output channel pairs, with the registers
 * assigned by hand (LDM needs ascending lists): per group of 4 input
 * channels one LDM of the widened pixels and two of weights, 8 SMLAD; per
 * pair one LDM of {m0, K0, e0, e1, m1, K1}. Same arithmetic as pw16_pass
 * (no table). xb, ya, yb, G and the end of q are parked on the stack. */
static inline __attribute__((always_inline)) void pw16_pairs(const tfk_pw16_params *p, const uint32_t *xb,
                                                              int32_t groups, int8_t *ya, int8_t *yb,
                                                              const int G) {
  const int32_t pairs = p->out_c >> 1;
  if (pairs > 0) {
    register const uint32_t *r0 __asm__("r0") = xb;
    register int32_t r1 __asm__("r1") = groups;
    register int8_t *r2 __asm__("r2") = ya;
    register int8_t *r3 __asm__("r3") = yb;
    register const int32_t *r4 __asm__("r4") = p->q + 8 * pairs;
    register const int32_t *r5 __asm__("r5") = p->weights;
    register const int32_t *q __asm__("lr") = p->q;
    if (G) /* groups unrolled, x rewound */
      __asm__ __volatile__(PW16A_HEAD ".rept %c[G]\n\t" PW16A_GROUP ".endr\n\t" PW16A_TAIL
                           : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(q)
                           : [G] "i"(G)
                           : "r6", "r7", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
    else
      __asm__ __volatile__(PW16A_HEAD "2:\n\t" PW16A_GROUP "subs r12, r12, #1\n\t" "bne 2b\n\t" PW16A_TAIL
                           : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(q)
                           :
                           : "r6", "r7", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
  }
  if (p->out_c & 1) {  /* the odd last channel (its pair's second one is zero) */
    const uint32_t *w = (const uint32_t *)p->weights + pairs * groups * 4;
    const int32_t *qq = p->q + 8 * pairs;
    int32_t a = qq[0], c = qq[0];
    for (int32_t g = 0; g < groups; ++g) {
      a = tfk_smlad(xb[4 * g], w[4 * g], a);
      a = tfk_smlad(xb[4 * g + 1], w[4 * g + 1], a);
      c = tfk_smlad(xb[4 * g + 2], w[4 * g], c);
      c = tfk_smlad(xb[4 * g + 3], w[4 * g + 1], c);
    }
    ya[2 * pairs] = pw16_out(a, qq[2], qq[3], qq[4], 0);
    yb[2 * pairs] = pw16_out(c, qq[2], qq[3], qq[4], 0);
  }
}

#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* npp pixel pairs from xa (G = in_c4 / 4 a constant, out_c even, every
 * 4-byte load inside the input), all in one asm block: widen the two pixels
 * into xb (as pw16_body), then the channel pairs as pw16_pairs. */
static inline __attribute__((always_inline)) void pw16_pixel_pairs(const tfk_pw16_params *p, uint32_t *xb,
                                                                    const int8_t *xa, int8_t *y, int32_t npp,
                                                                    const int G) {
  const int32_t ic = p->in_c, oc = p->out_c;
  register uint32_t *r0 __asm__("r0") = xb;
  register int32_t r1 __asm__("r1") = G;
  register int8_t *r2 __asm__("r2") = y;
  register int8_t *r3 __asm__("r3") = y + oc;
  register const int32_t *r4 __asm__("r4") = p->q + 8 * (oc >> 1);
  register const int8_t *r5 __asm__("r5") = xa;
  register int32_t r6 __asm__("r6") = ic;
  register int32_t r7 __asm__("r7") = npp;
  register const int32_t *r8 __asm__("r8") = p->weights;
  register const int32_t *r9 __asm__("r9") = p->q;
  register int32_t r10 __asm__("r10") = oc;
  __asm__ __volatile__(
      "push {r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10}\n"
      "3:\n\t"
      "ldrd r0, r1, [sp, #20]\n\t"      /* xa, ic */
      "ldr r2, [sp, #0]\n\t"            /* xb */
      ".rept %c[G]\n\t"
      "ldr r7, [r0, r1]\n\t"
      "ldr r6, [r0], #4\n\t"
      "sxtb16 r8, r6\n\t"
      "sxtb16 r9, r6, ror #8\n\t"
      "sxtb16 r10, r7\n\t"
      "sxtb16 r11, r7, ror #8\n\t"
      "stm r2!, {r8, r9, r10, r11}\n\t"
      ".endr\n\t"
      "add r0, r0, r1, lsl #1\n\t"
      "sub r0, r0, %[G4]\n\t"
      "str r0, [sp, #20]\n\t"
      "ldr r1, [sp, #32]\n\t"           /* weights */
      "ldr lr, [sp, #36]\n"             /* q */
      "1:\n\t"
      "ldrd r0, r12, [sp]\n\t"
      "ldrd r4, r5, [lr]\n\t"
      "ldrd r2, r3, [lr], #8\n\t"
      ".rept %c[G]\n\t" PW16A_GROUP ".endr\n\t"
      PW16A_TAIL_NOPOP
      "ldrd r6, r7, [sp, #8]\n\t"       /* ya = y + oc, yb = y + 2 oc */
      "ldr r8, [sp, #40]\n\t"
      "mov r6, r7\n\t"
      "add r7, r7, r8\n\t"
      "strd r6, r7, [sp, #8]\n\t"
      "ldr r8, [sp, #28]\n\t"
      "subs r8, r8, #1\n\t"
      "str r8, [sp, #28]\n\t"
      "bne 3b\n\t"
      "add sp, sp, #44\n\t"
      : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8), "+r"(r9),
        "+r"(r10)
      : [G] "i"(G), [G4] "i"(4 * G)
      : "r11", "r12", "lr", "cc", "memory");
}
#endif

#undef PW16A_HEAD
#undef PW16A_GROUP
#undef PW16A_TAIL
#undef PW16A_TAIL_NOPOP

static inline __attribute__((always_inline)) void pw16_body(const tfk_pw16_params *p, const int8_t *in,
                                                             int8_t *out, const int8_t *lut, const int G) {
  uint32_t xb[TFK_PW16_MAX_C4];  /* 2 pixels x in_c4 int16 */
  const int32_t n = p->pixels, ic = p->in_c, oc = p->out_c, groups = G ? G : p->in_c4 >> 2;
  const int8_t *end = in + n * ic;
  const int8_t *xa = in;
  int8_t *y = out;
  int32_t px = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  if (G && !lut && !(oc & 1)) {
    /* pixel pairs whose 4-byte loads stay inside the input: (2k+1) ic + 4G <= n ic */
    const int32_t num = n * ic - ic - 4 * G;
    int32_t npp = num < 0 ? 0 : num / (2 * ic) + 1;
    if (npp > n / 2) npp = n / 2;
    if (npp > 0) {
      pw16_pixel_pairs(p, xb, xa, y, npp, G);
      px = 2 * npp;
      xa += px * ic;
      y += px * oc;
    }
  }
#endif
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
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (!lut) pw16_pairs(p, xb, groups, y, y + oc, G);
    else
#endif
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
  /* one body per group count, without a table (no per-output table load);
   * an activation table, where there is one, is a second pass */
  switch (p->in_c4 >> 2) {
    case 1: pw16_body(p, in, out, 0, 1); break;
    case 2: pw16_body(p, in, out, 0, 2); break;
    case 3: pw16_body(p, in, out, 0, 3); break;
    default: pw16_body(p, in, out, 0, 0); break;
  }
  if (p->lut) {
    const int8_t *lut = p->lut + 128;
    const int32_t n = p->pixels * p->out_c;
    for (int32_t i = 0; i < n; ++i) out[i] = lut[out[i]];
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
