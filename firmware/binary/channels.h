/* FFT-magnitude and LBP input channels, integer form (exactly as
 * tinyfake/data/channels.py defines them; the host and the board compute the
 * same bytes). */
#ifndef TFK_CHANNELS_H
#define TFK_CHANNELS_H

#include <stdint.h>

#define TFKC_N_MAX 256

extern const int16_t tfkc_twiddle_cos[TFKC_N_MAX / 2];
extern const int16_t tfkc_twiddle_sin[TFKC_N_MAX / 2];

/* uint8 RGB (pixels x 3) -> uint8 grey: (77 R + 150 G + 29 B) >> 8 */
void tfkc_grey(const uint8_t *rgb, int pixels, uint8_t *grey);

/* 8-neighbour radius-1 local binary pattern, edge-clamped (h x w). */
void tfkc_lbp(const uint8_t *grey, int h, int w, uint8_t *out);

/* log-magnitude spectrum of (grey - 128), n x n, n a power of two in
 * [4, TFKC_N_MAX], fftshifted. re/im: scratch of n*n int64 each.
 * Returns 0, or -1 when n is not allowed. */
int tfkc_fft_magnitude(const uint8_t *grey, int n, int64_t *re, int64_t *im, uint8_t *out);

/* RGB (n x n x 3) -> R, G, B, FFT, LBP (n x n x 5). scratch: 2*n*n int64
 * + n*n bytes. Returns 0 or -1. */
int tfkc_channels(const uint8_t *rgb, int n, int64_t *scratch, uint8_t *grey_scratch,
                  uint8_t *out5);

#endif
