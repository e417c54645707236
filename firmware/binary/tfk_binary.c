/* Binary layers, portable C. See tfk_binary.h for the exact definition. */
#include "tfk_binary.h"

void tfkb_pack(const int8_t *x, int pixels, int channels, const int16_t *threshold,
               uint32_t *bits)
{
    const int nw = TFKB_WORDS(channels);
    for (int p = 0; p < pixels; p++) {
        const int8_t *px = x + p * channels;
        uint32_t *pb = bits + p * nw;
        for (int i = 0; i < nw; i++) {
            uint32_t word = 0;
            int end = channels - 32 * i < 32 ? channels - 32 * i : 32;
            for (int j = 0; j < end; j++) {
                int c = 32 * i + j;
                word |= (uint32_t)(px[c] >= threshold[c]) << j;
            }
            pb[i] = word;
        }
    }
}

static int8_t requant(int32_t d, int32_t mult, int32_t bias, int shift)
{
    int64_t v = (int64_t)d * mult + bias + ((int64_t)1 << (shift - 1));
    v >>= shift;  /* arithmetic shift (floor) as in the reference */
    if (v < -128) v = -128;
    if (v > 127) v = 127;
    return (int8_t)v;
}

void tfkb_conv(const uint32_t *x, int h, int w, int channels, const uint32_t *wt, int oc,
               int k, int stride, int pad, const int32_t *mult, const int32_t *bias, int shift,
               int8_t *out)
{
    const int nw = TFKB_WORDS(channels);
    const int oh = (h + 2 * pad - k) / stride + 1;
    const int ow = (w + 2 * pad - k) / stride + 1;
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            int8_t *po = out + (oy * ow + ox) * oc;
            for (int o = 0; o < oc; o++) {
                int mism = 0, taps = 0;
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= w) continue;
                        const uint32_t *px = x + (iy * w + ix) * nw;
                        const uint32_t *pw = wt + ((o * k + ky) * k + kx) * nw;
                        for (int i = 0; i < nw; i++)
                            mism += __builtin_popcount(px[i] ^ pw[i]);
                        taps++;
                    }
                }
                po[o] = requant(taps * channels - 2 * mism, mult[o], bias[o], shift);
            }
        }
    }
}
