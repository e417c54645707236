/* Binary (1-bit weight, 1-bit activation) layers: XNOR-popcount convolution.
 *
 * Layout and arithmetic are defined by tinyfake/models/binary.py (the host
 * reference); these kernels equal it bit for bit.
 *   - packing: per pixel ceil(C/32) uint32 words, channel c = bit c%32 of
 *     word c/32, unused bits 0; weights [O][K][K][words];
 *   - activation bit = x >= threshold[c] (1 = +1, 0 = -1);
 *   - d = taps*C - 2 * sum popcount(x ^ w) over taps inside the image
 *     (== 2*popcount(xnor) - n, zero padding);
 *   - out = clamp((d*mult[o] + bias[o] + 2^(shift-1)) >> shift, -128, 127).
 */
#ifndef TFK_BINARY_H
#define TFK_BINARY_H

#include <stdint.h>

#define TFKB_WORDS(c) (((c) + 31) / 32)

/* int8 NHWC (pixels x channels) -> packed bits (pixels x TFKB_WORDS(channels)). */
void tfkb_pack(const int8_t *x, int pixels, int channels, const int16_t *threshold,
               uint32_t *bits);

/* Binary conv on packed input (h x w x words), weights (oc x k x k x words),
 * int8 output (oh x ow x oc). Portable: __builtin_popcount per word. */
void tfkb_conv(const uint32_t *x, int h, int w, int channels, const uint32_t *wt, int oc,
               int k, int stride, int pad, const int32_t *mult, const int32_t *bias, int shift,
               int8_t *out);

/* Same result; tuned for Cortex-M7 (no popcount instruction): SWAR popcount
 * of the XOR words accumulated in bytes before one horizontal sum, a
 * border-free fast path for interior outputs, and unrolling by two words. */
void tfkb_conv_m7(const uint32_t *x, int h, int w, int channels, const uint32_t *wt, int oc,
                  int k, int stride, int pad, const int32_t *mult, const int32_t *bias,
                  int shift, int8_t *out);

#endif
