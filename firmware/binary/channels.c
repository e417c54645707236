/* FFT-magnitude and LBP input channels (see channels.h and
 * tinyfake/data/channels.py for the exact definition). */
#include "channels.h"

/* Q15 twiddles: round(32767 * cos/sin(2 pi k / TFKC_N_MAX)), generated from
 * tinyfake/data/channels.py (a test checks they agree). */
const int16_t tfkc_twiddle_cos[TFKC_N_MAX / 2] = {
     32767,  32757,  32728,  32678,  32609,  32521,  32412,  32285,
     32137,  31971,  31785,  31580,  31356,  31113,  30852,  30571,
     30273,  29956,  29621,  29268,  28898,  28510,  28105,  27683,
     27245,  26790,  26319,  25832,  25329,  24811,  24279,  23731,
     23170,  22594,  22005,  21403,  20787,  20159,  19519,  18868,
     18204,  17530,  16846,  16151,  15446,  14732,  14010,  13279,
     12539,  11793,  11039,  10278,   9512,   8739,   7962,   7179,
      6393,   5602,   4808,   4011,   3212,   2410,   1608,    804,
         0,   -804,  -1608,  -2410,  -3212,  -4011,  -4808,  -5602,
     -6393,  -7179,  -7962,  -8739,  -9512, -10278, -11039, -11793,
    -12539, -13279, -14010, -14732, -15446, -16151, -16846, -17530,
    -18204, -18868, -19519, -20159, -20787, -21403, -22005, -22594,
    -23170, -23731, -24279, -24811, -25329, -25832, -26319, -26790,
    -27245, -27683, -28105, -28510, -28898, -29268, -29621, -29956,
    -30273, -30571, -30852, -31113, -31356, -31580, -31785, -31971,
    -32137, -32285, -32412, -32521, -32609, -32678, -32728, -32757
};
const int16_t tfkc_twiddle_sin[TFKC_N_MAX / 2] = {
         0,    804,   1608,   2410,   3212,   4011,   4808,   5602,
      6393,   7179,   7962,   8739,   9512,  10278,  11039,  11793,
     12539,  13279,  14010,  14732,  15446,  16151,  16846,  17530,
     18204,  18868,  19519,  20159,  20787,  21403,  22005,  22594,
     23170,  23731,  24279,  24811,  25329,  25832,  26319,  26790,
     27245,  27683,  28105,  28510,  28898,  29268,  29621,  29956,
     30273,  30571,  30852,  31113,  31356,  31580,  31785,  31971,
     32137,  32285,  32412,  32521,  32609,  32678,  32728,  32757,
     32767,  32757,  32728,  32678,  32609,  32521,  32412,  32285,
     32137,  31971,  31785,  31580,  31356,  31113,  30852,  30571,
     30273,  29956,  29621,  29268,  28898,  28510,  28105,  27683,
     27245,  26790,  26319,  25832,  25329,  24811,  24279,  23731,
     23170,  22594,  22005,  21403,  20787,  20159,  19519,  18868,
     18204,  17530,  16846,  16151,  15446,  14732,  14010,  13279,
     12539,  11793,  11039,  10278,   9512,   8739,   7962,   7179,
      6393,   5602,   4808,   4011,   3212,   2410,   1608,    804
};

void tfkc_grey(const uint8_t *rgb, int pixels, uint8_t *grey)
{
    for (int i = 0; i < pixels; i++) {
        const uint8_t *p = rgb + 3 * i;
        grey[i] = (uint8_t)((77u * p[0] + 150u * p[1] + 29u * p[2]) >> 8);
    }
}

static const int8_t lbp_dy[8] = {-1, -1, -1, 0, 1, 1, 1, 0};
static const int8_t lbp_dx[8] = {-1, 0, 1, 1, 1, 0, -1, -1};

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void tfkc_lbp(const uint8_t *grey, int h, int w, uint8_t *out)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const uint8_t c = grey[y * w + x];
            uint8_t code = 0;
            for (int i = 0; i < 8; i++) {
                int ny = clampi(y + lbp_dy[i], 0, h - 1);
                int nx = clampi(x + lbp_dx[i], 0, w - 1);
                code |= (uint8_t)((grey[ny * w + nx] >= c) << i);
            }
            out[y * w + x] = code;
        }
    }
}

/* In-place radix-2 DIT FFT of n points at stride `step` (n a power of two). */
static void fft_line(int64_t *re, int64_t *im, int n, int step)
{
    for (int i = 1, j = 0; i < n; i++) {   /* bit-reversal permutation */
        int bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            int64_t t = re[i * step]; re[i * step] = re[j * step]; re[j * step] = t;
            t = im[i * step]; im[i * step] = im[j * step]; im[j * step] = t;
        }
    }
    for (int m = 2; m <= n; m <<= 1) {
        const int half = m >> 1, spacing = TFKC_N_MAX / m;
        for (int start = 0; start < n; start += m) {
            for (int j = 0; j < half; j++) {
                const int64_t c = tfkc_twiddle_cos[j * spacing], s = tfkc_twiddle_sin[j * spacing];
                int64_t *ar = re + (start + j) * step, *ai = im + (start + j) * step;
                int64_t *br = re + (start + j + half) * step, *bi = im + (start + j + half) * step;
                const int64_t tr = (*br * c + *bi * s + (1 << 14)) >> 15;
                const int64_t ti = (*bi * c - *br * s + (1 << 14)) >> 15;
                const int64_t xr = *ar, xi = *ai;
                *ar = xr + tr; *ai = xi + ti;
                *br = xr - tr; *bi = xi - ti;
            }
        }
    }
}

/* 256 * log2(p), Mitchell's approximation (8 mantissa bits); 0 for p = 0. */
static int32_t log2_fixed(uint64_t p)
{
    if (p == 0)
        return 0;
    int e = 63 - __builtin_clzll(p);
    uint32_t mant = (uint32_t)((e >= 8 ? p >> (e - 8) : p << (8 - e)) & 0xFF);
    return e * 256 + (int32_t)mant;
}

int tfkc_fft_magnitude(const uint8_t *grey, int n, int64_t *re, int64_t *im, uint8_t *out)
{
    if (n < 4 || n > TFKC_N_MAX || (n & (n - 1)))
        return -1;
    int log2n = 0;
    while ((1 << log2n) < n)
        log2n++;
    for (int i = 0; i < n * n; i++) {
        re[i] = (int64_t)grey[i] - 128;
        im[i] = 0;
    }
    for (int y = 0; y < n; y++)
        fft_line(re + y * n, im + y * n, n, 1);
    for (int x = 0; x < n; x++)
        fft_line(re + x, im + x, n, n);
    const int64_t lmax = 256 * 2 * (8 + 2 * log2n);
    const int h = n / 2;
    for (int y = 0; y < n; y++) {
        for (int x = 0; x < n; x++) {
            const int64_t r = re[y * n + x], i = im[y * n + x];
            const uint64_t p = (uint64_t)(r * r) + (uint64_t)(i * i);
            int64_t b = (int64_t)log2_fixed(p) * 255 / lmax;
            out[((y + h) % n) * n + (x + h) % n] = (uint8_t)(b > 255 ? 255 : b);
        }
    }
    return 0;
}

int tfkc_channels(const uint8_t *rgb, int n, int64_t *scratch, uint8_t *grey_scratch,
                  uint8_t *out5)
{
    tfkc_grey(rgb, n * n, grey_scratch);
    /* FFT and LBP planes go to the tail of out5 first, then interleave. */
    uint8_t *plane_f = out5 + 3 * n * n, *plane_l = out5 + 4 * n * n;
    if (tfkc_fft_magnitude(grey_scratch, n, scratch, scratch + n * n, plane_f))
        return -1;
    tfkc_lbp(grey_scratch, n, n, plane_l);
    /* interleaving would overwrite the planes: copy them into the (now free)
       int64 scratch first; rgb must not alias out5 */
    uint8_t *tmp = (uint8_t *)scratch;
    for (int i = 0; i < 2 * n * n; i++)
        tmp[i] = plane_f[i];
    for (int i = 0; i < n * n; i++) {
        out5[5 * i + 0] = rgb[3 * i + 0];
        out5[5 * i + 1] = rgb[3 * i + 1];
        out5[5 * i + 2] = rgb[3 * i + 2];
        out5[5 * i + 3] = tmp[i];
        out5[5 * i + 4] = tmp[n * n + i];
    }
    return 0;
}
