/* Binary conv tuned for Cortex-M7 (ARMv7E-M has no popcount instruction).
 *
 * For each output pixel and channel, the XOR words of all taps are reduced
 * with a bit-sliced popcount: 2-bit and 4-bit partial counts per word, then
 * byte counts summed over up to 31 words (31 * 8 < 256) before one
 * multiply-based horizontal sum. Interior outputs skip the border tests:
 * their k*k*words input words are gathered once per pixel, so each output
 * channel is a single contiguous popcount run (pixel_channels).
 * Same result as tfkb_conv (host reference: tinyfake/models/binary.py).
 */
#include "../tfk_binary.h"

/* Interior outputs gather their k*k*words input words (up to this many, on
 * the stack) so every output channel is one contiguous popcount run. */
#define TFKB_M7_GATHER 288

static inline uint32_t nibble_counts(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return (v + (v >> 4)) & 0x0F0F0F0Fu;  /* 4 byte counts, each <= 8 */
}

static inline int hsum_bytes(uint32_t v)
{
    /* byte counts <= 255 each -> sum, without overflow of a 32-bit multiply
       only when the total fits 8 bits; so fold in two 16-bit halves */
    v = (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
    return (int)((v & 0xFFFFu) + (v >> 16));
}

static inline int8_t requant(int32_t d, int32_t mult, int32_t bias, int shift)
{
    int64_t v = (int64_t)d * mult + bias + ((int64_t)1 << (shift - 1));
    v >>= shift;
    if (v < -128) v = -128;
    if (v > 127) v = 127;
    return (int8_t)v;
}

/* popcount of (a[i] ^ b[i]) over n words */
static inline int xor_pop(const uint32_t *a, const uint32_t *b, int n)
{
    int total = 0;
    while (n > 0) {
        int chunk = n < 30 ? n : 30;
        uint32_t acc = 0;
        int i = 0;
        for (; i + 1 < chunk; i += 2)
            acc += nibble_counts(a[i] ^ b[i]) + nibble_counts(a[i + 1] ^ b[i + 1]);
        if (i < chunk)
            acc += nibble_counts(a[i] ^ b[i]);
        total += hsum_bytes(acc);
        a += chunk;
        b += chunk;
        n -= chunk;
    }
    return total;
}

/* All output channels of one interior pixel: `total` gathered input words
 * against each channel's `total` contiguous weight words. Kept out of line
 * so its small loop gets the registers. */
__attribute__((noinline)) static void pixel_channels(const uint32_t *xg, const uint32_t *wt,
                                                     int total, int oc, int n,
                                                     const int32_t *mult, const int32_t *bias,
                                                     int shift, int8_t *po)
{
    if (total <= 30) {  /* byte counts cannot overflow: one horizontal sum */
        for (int o = 0; o < oc; o++, wt += total) {
            uint32_t acc = 0;
            int i = 0;
            for (; i + 1 < total; i += 2)
                acc += nibble_counts(xg[i] ^ wt[i]) + nibble_counts(xg[i + 1] ^ wt[i + 1]);
            if (i < total)
                acc += nibble_counts(xg[i] ^ wt[i]);
            po[o] = requant(n - 2 * hsum_bytes(acc), mult[o], bias[o], shift);
        }
        return;
    }
    for (int o = 0; o < oc; o++, wt += total)
        po[o] = requant(n - 2 * xor_pop(xg, wt, total), mult[o], bias[o], shift);
}

void tfkb_conv_m7(const uint32_t *x, int h, int w, int channels, const uint32_t *wt, int oc,
                  int k, int stride, int pad, const int32_t *mult, const int32_t *bias,
                  int shift, int8_t *out)
{
    const int nw = TFKB_WORDS(channels);
    const int oh = (h + 2 * pad - k) / stride + 1;
    const int ow = (w + 2 * pad - k) / stride + 1;
    const int row_words = k * nw;     /* one weight row (k taps) */
    for (int oy = 0; oy < oh; oy++) {
        const int y0 = oy * stride - pad;
        const int ky0 = y0 < 0 ? -y0 : 0;
        const int ky1 = y0 + k > h ? h - y0 : k;
        for (int ox = 0; ox < ow; ox++) {
            const int x0 = ox * stride - pad;
            const int kx0 = x0 < 0 ? -x0 : 0;
            const int kx1 = x0 + k > w ? w - x0 : k;
            const int taps = (ky1 - ky0) * (kx1 - kx0);
            const int n = taps * channels;
            const int span = (kx1 - kx0) * nw; /* contiguous input words per row */
            int8_t *po = out + (oy * ow + ox) * oc;
            if (taps == k * k && k * row_words <= TFKB_M7_GATHER) {
                /* interior: gather the k rows of input words once; each output
                   channel is then one popcount run over k*k*nw contiguous words
                   (weights [o][ky][kx][words] are contiguous per channel) */
                uint32_t xg[TFKB_M7_GATHER];
                for (int ky = 0; ky < k; ky++) {
                    const uint32_t *px = x + ((y0 + ky) * w + x0) * nw;
                    for (int i = 0; i < row_words; i++)
                        xg[ky * row_words + i] = px[i];
                }
                pixel_channels(xg, wt, k * row_words, oc, n, mult, bias, shift, po);
                continue;
            }
            for (int o = 0; o < oc; o++) {
                const uint32_t *wo = wt + o * k * row_words;
                int mism = 0;
                for (int ky = ky0; ky < ky1; ky++) {
                    const uint32_t *px = x + ((y0 + ky) * w + x0 + kx0) * nw;
                    const uint32_t *pw = wo + ky * row_words + kx0 * nw;
                    mism += xor_pop(px, pw, span);
                }
                po[o] = requant(n - 2 * mism, mult[o], bias[o], shift);
            }
        }
    }
}
