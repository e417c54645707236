/* Binary layers for Cortex-M7 (ARMv7E-M has no popcount instruction); same
 * results as the portable kernels (see tfk_binary.h).
 *
 * Packing compares 4 channels at once: SSUB8 sets one GE flag per byte where
 * x >= threshold, SEL turns them into 0x80 bytes, and one multiply gathers
 * the 4 flag bits into a nibble.
 *
 * Convolution: per output pixel the k*k taps' input words form one
 * contiguous run (a pointwise conv reads the pixel in place; otherwise they
 * are gathered, with zero words for taps outside the input), so every output
 * channel is a single XOR-popcount run against its contiguous weights
 * [k][k][words]. A zero word XOR w counts popcount(w) mismatches that a
 * skipped tap must not count: the compiler's table wpop[o][tap] (or wpop16) takes them
 * back out on border pixels. Popcount is SWAR (2-bit, 4-bit, byte counts,
 * accumulated as bytes over up to 30 words, then one horizontal sum); two
 * output channels per pass share the input loads. Requantization is the
 * exact one-multiply form tfk_rqs. A pointwise conv goes one output channel
 * at a time over all pixels instead, so its weights and requantization
 * constants stay in registers (one or two words per pixel, no fused
 * activation: the common binary 1x1 layers). */
#include "tfk.h"

#if TFK_USE_DSP
#include "tfk_simd.h"

/* 0x80 in each byte lane where (int8) x >= (int8) t, else 0 */
static inline uint32_t ge_bytes(uint32_t x, uint32_t t)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  uint32_t r;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %3, %4"
          : "=&r"(r) : "r"(x), "r"(t), "r"(0x80808080u), "r"(0u) : "cc");
  return r;
#else
  uint32_t r = 0;
  for (int b = 0; b < 32; b += 8)
    if ((int8_t)(x >> b) >= (int8_t)(t >> b)) r |= 0x80u << b;
  return r;
#endif
}

void tfkb_pack(const tfkb_pack_params *p, const int8_t *x, uint32_t *bits)
{
  const int32_t c = p->channels, nw = TFKB_WORDS(c);
  if (!p->threshold8) {  /* a threshold of 128 (never +1) or channels not a multiple of 4 */
    for (int32_t px = 0; px < p->pixels; ++px, x += c, bits += nw)
      for (int32_t i = 0; i < nw; ++i) {
        uint32_t word = 0;
        const int32_t end = c - 32 * i < 32 ? c - 32 * i : 32;
        for (int32_t j = 0; j < end; ++j)
          word |= (uint32_t)(x[32 * i + j] >= p->threshold[32 * i + j]) << j;
        bits[i] = word;
      }
    return;
  }
  const int32_t groups = c / 4;
  for (int32_t px = 0; px < p->pixels; ++px, x += c, bits += nw) {
    const int8_t *t = p->threshold8;
    const int8_t *xs = x;
    for (int32_t i = 0; i < nw; ++i) {
      const int32_t g_end = groups - 8 * i < 8 ? groups - 8 * i : 8;
      uint32_t word = 0;
      for (int32_t g = 0; g < g_end; ++g, xs += 4, t += 4)
        word |= ((ge_bytes(tfk_ld32(xs), tfk_ld32(t)) * 0x00204081u) >> 28) << (4 * g);
      bits[i] = word;
    }
  }
}

static inline uint32_t nibble_counts(uint32_t v)
{
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  return (v + (v >> 4)) & 0x0F0F0F0Fu;  /* 4 byte counts, each <= 8 */
}

/* sum of the 4 byte counts; `small`: each is < 64 so one multiply adds them */
static inline int32_t hsum_bytes(uint32_t v, int small)
{
  if (small) return (int32_t)((v * 0x01010101u) >> 24);
  v = (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
  return (int32_t)((v & 0xFFFFu) + (v >> 16));
}

static inline int8_t bin_out(const tfkb_conv_params *p, int32_t o, int32_t acc)
{
  const int32_t v = p->rq ? tfk_rqs(acc, p->rq + 3 * o) : tfk_mbqm(acc, p->mult[o], p->shift[o]) + p->out_zp;
  return tfk_clamp8(v, p->act_min, p->act_max);
}

/* mismatches of x against weight runs w0, w1 of n words (n > 30: chunks) */
static void xor_pop2_long(const uint32_t *x, const uint32_t *w0, const uint32_t *w1, int32_t n,
                          int32_t *m0, int32_t *m1)
{
  int32_t t0 = 0, t1 = 0;
  while (n > 0) {
    const int32_t chunk = n < 30 ? n : 30;
    uint32_t a0 = 0, a1 = 0;
    for (int32_t i = 0; i < chunk; ++i) {
      const uint32_t xv = x[i];
      a0 += nibble_counts(xv ^ w0[i]);
      a1 += nibble_counts(xv ^ w1[i]);
    }
    t0 += hsum_bytes(a0, 0);
    t1 += hsum_bytes(a1, 0);
    x += chunk, w0 += chunk, w1 += chunk, n -= chunk;
  }
  *m0 = t0;
  *m1 = t1;
}

/* All output channels of one pixel: xs = its `total` input words; n = valid
 * taps x channels; skipped taps (nskip of them) are taken back out. */
static inline __attribute__((always_inline)) void pixel(const tfkb_conv_params *p, const uint32_t *xs,
                                                        int32_t total, int32_t n,
                                                        const uint8_t *skipped, int32_t nskip,
                                                        int8_t *out)
{
  const int32_t oc = p->out_c, kk = p->k * p->k;
  const int small = total < 8;  /* byte counts <= 8 * 7 < 64 */
  const uint32_t *w = p->weights;
  for (int32_t o = 0; o < oc; o += 2, w += 2 * total) {
    const uint32_t *w1 = o + 1 < oc ? w + total : w;  /* an odd last channel pairs with itself */
    int32_t m0, m1;
    if (total <= 30) {
      uint32_t a0 = 0, a1 = 0;
      for (int32_t i = 0; i < total; ++i) {
        const uint32_t xv = xs[i];
        a0 += nibble_counts(xv ^ w[i]);
        a1 += nibble_counts(xv ^ w1[i]);
      }
      m0 = hsum_bytes(a0, small);
      m1 = hsum_bytes(a1, small);
    } else {
      xor_pop2_long(xs, w, w1, total, &m0, &m1);
    }
    for (int32_t s = 0; s < nskip; ++s) {
      const int32_t t0 = o * kk + skipped[s], t1 = t0 + kk;
      m0 -= p->wpop ? p->wpop[t0] : p->wpop16[t0];
      if (o + 1 < oc) m1 -= p->wpop ? p->wpop[t1] : p->wpop16[t1];
    }
    out[o] = bin_out(p, o, n - 2 * m0 + p->bias[o]);
    if (o + 1 < oc) out[o + 1] = bin_out(p, o + 1, n - 2 * m1 + p->bias[o + 1]);
  }
}

/* popcount of one word */
static inline int32_t popcount32(uint32_t v)
{
  v = nibble_counts(v);
  v += v >> 8;
  v += v >> 16;
  return (int32_t)(v & 63u);
}

/* Pointwise conv with one or two words per pixel, one output channel at a
 * time over all pixels: its weights and requantization constants stay in
 * registers. `right`: the channel's tfk_rqs form is a right shift, else a
 * left shift; `nw` and `right` are
 * constants after inlining, so each loop holds only what it needs. */
static inline __attribute__((always_inline)) void pw_channel(const uint32_t *x, int32_t pixels,
                                                             int32_t nw, uint32_t w0, uint32_t w1,
                                                             int32_t base, const int32_t *q,
                                                             int right, int8_t *po, int32_t oc)
{
  const int32_t m = q[0], K = q[1], sh = right ? -q[2] : q[2];
  for (int32_t px = pixels; px > 0; --px, x += nw, po += oc) {
    int32_t pc = popcount32(x[0] ^ w0);
    if (nw == 2) pc += popcount32(x[1] ^ w1);
    const int32_t acc = base - 2 * pc;
    const int32_t r = right ? tfk_smmlar((int32_t)((uint32_t)acc << 1), m, K + (acc >> 31)) >> sh
                            : tfk_smmlar((int32_t)((uint32_t)acc << sh), m, K);
    *po = (int8_t)tfk_sat8(r);
  }
}

static void pointwise_by_channel(const tfkb_conv_params *p, const uint32_t *x, int8_t *out)
{
  const int32_t nw = TFKB_WORDS(p->in_c), oc = p->out_c, pixels = p->out_h * p->out_w;
  for (int32_t o = 0; o < oc; ++o) {
    const uint32_t *w = p->weights + o * nw;
    const int32_t *q = p->rq + 3 * o;
    const int32_t base = p->in_c + p->bias[o];
    const uint32_t w1 = nw == 2 ? w[1] : 0;
    if (nw == 1 && q[2] < 0) pw_channel(x, pixels, 1, w[0], 0, base, q, 1, out + o, oc);
    else if (nw == 1) pw_channel(x, pixels, 1, w[0], 0, base, q, 0, out + o, oc);
    else if (q[2] < 0) pw_channel(x, pixels, 2, w[0], w1, base, q, 1, out + o, oc);
    else pw_channel(x, pixels, 2, w[0], w1, base, q, 0, out + o, oc);
  }
}

/* (no memcpy/memset calls for the few words a tap gathers) */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void tfkb_conv(const tfkb_conv_params *p, const uint32_t *x, int8_t *out)
{
  const int32_t nw = TFKB_WORDS(p->in_c), k = p->k, kk = k * k, total = kk * nw, oc = p->out_c;
  if (k == 1 && p->stride == 1 && p->in_h == p->out_h && p->in_w == p->out_w) {
    if (p->rq && nw <= 2 && p->act_min == -128 && p->act_max == 127) {
      pointwise_by_channel(p, x, out);
      return;
    }
    const int32_t pixels = p->out_h * p->out_w;
    for (int32_t px = 0; px < pixels; ++px, x += nw, out += oc)
      pixel(p, x, nw, p->in_c, 0, 0, out);
    return;
  }
  uint32_t xg[TFKB_MAX_TAP_WORDS];
  uint8_t skipped[TFKB_MAX_K * TFKB_MAX_K];  /* taps outside the input, this pixel */
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    const int32_t y0 = oy * p->stride - p->pad_top;
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += oc) {
      const int32_t x0 = ox * p->stride - p->pad_left;
      int32_t nskip = 0;
      uint32_t *g = xg;
      for (int32_t ky = 0; ky < k; ++ky) {
        const int32_t iy = y0 + ky;
        for (int32_t kx = 0; kx < k; ++kx, g += nw) {
          const int32_t ix = x0 + kx;
          if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
            skipped[nskip++] = (uint8_t)(ky * k + kx);
            for (int32_t i = 0; i < nw; ++i) g[i] = 0;
          } else {
            const uint32_t *src = x + (iy * p->in_w + ix) * nw;
            for (int32_t i = 0; i < nw; ++i) g[i] = src[i];
          }
        }
      }
      pixel(p, xg, total, (kk - nskip) * p->in_c, skipped, nskip, out);
    }
  }
}

#endif /* TFK_USE_DSP */
