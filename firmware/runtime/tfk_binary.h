/* Binary (1-bit weight, 1-bit activation) convolution: XNOR-popcount.
 *
 * The compiler runs a TFLite pair "sign" (1x1 DEPTHWISE_CONV_2D whose
 * output is +-1) -> CONV_2D with +-1 weights on these kernels; the result
 * equals TFLite Micro's int8 kernels on that pair bit for bit, and the host
 * reference tinyfake/models/binary.py (binary_conv_ref) defines it:
 *   - packing: per pixel ceil(C/32) uint32 words, channel c = bit c%32 of
 *     word c/32, unused bits 0; weights [O][K][K][words], bit 1 = +1;
 *   - activation bit = x >= threshold[c] (1 = +1, 0 = -1);
 *   - d = n - 2 * sum popcount(x ^ w) over the taps inside the input,
 *     n = taps * C (padding taps are skipped: the +-1 tensor's zero point
 *     is 0, so TFLite's padding contributes nothing either);
 *   - out = clamp(MultiplyByQuantizedMultiplier(d + bias[o], mult[o],
 *     shift[o]) + out_zp, act_min, act_max), TFLite's per-channel rounding.
 *     rq (when not NULL) holds it per channel as tfk_rqs's {m, K, sh}: the
 *     same arithmetic in one rounding multiply.
 */
#ifndef TFK_BINARY_H
#define TFK_BINARY_H

#include <stdint.h>

#define TFKB_WORDS(c) (((c) + 31) / 32)

typedef struct {
  int32_t pixels, channels;
  const int16_t *threshold;    /* per channel, in [-128, 128]; NULL when threshold8 is given */
  const int8_t *threshold8;    /* the same as int8 (4 lanes per compare on Cortex-M7), or
                                  NULL when one is 128 or channels is not a multiple of 4 */
} tfkb_pack_params;

/* int8 NHWC (pixels x channels) -> packed bits (pixels x TFKB_WORDS(channels)). */
void tfkb_pack(const tfkb_pack_params *p, const int8_t *x, uint32_t *bits);

typedef struct {
  int16_t in_h, in_w, in_c, out_h, out_w, out_c, k, stride, pad_top, pad_left;
  int32_t out_zp, act_min, act_max;
  const uint32_t *weights;     /* [out_c][k][k][words] */
  const int32_t *bias;         /* per output channel */
  const int32_t *mult, *shift; /* per output channel; NULL when rq is given */
  const int32_t *rq;           /* NULL, or [out_c][3] {m, K, sh} (tfk_rqs) */
  const uint8_t *wpop;         /* [out_c][k*k] popcount of each tap's weight words (k > 1) */
  const uint16_t *wpop16;      /* the same when a tap has more than 255 weight bits set */
} tfkb_conv_params;

/* Most input words one output pixel reads (k*k*words) and largest k. */
#define TFKB_MAX_TAP_WORDS 576
#define TFKB_MAX_K 8

/* Packed input (in_h x in_w x words) -> int8 output (out_h x out_w x out_c).
 * Portable C (__builtin_popcount), or with TFK_USE_DSP the Cortex-M7 form
 * (cortex_m/tfk_binary_m7.c: no popcount instruction on ARMv7E-M). */
void tfkb_conv(const tfkb_conv_params *p, const uint32_t *x, int8_t *out);

#endif
