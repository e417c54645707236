/* Binary layers, portable C. See tfk_binary.h for the exact definition. */
#include "tfk.h"

#if !TFK_USE_DSP
void tfkb_pack(const tfkb_pack_params *p, const int8_t *x, uint32_t *bits)
{
  const int32_t c = p->channels, nw = TFKB_WORDS(c);
  for (int32_t px = 0; px < p->pixels; ++px, x += c, bits += nw) {
    for (int32_t i = 0; i < nw; ++i) {
      uint32_t word = 0;
      const int32_t end = c - 32 * i < 32 ? c - 32 * i : 32;
      for (int32_t j = 0; j < end; ++j)
        word |= (uint32_t)(x[32 * i + j] >= (p->threshold8 ? p->threshold8[32 * i + j]
                                                           : p->threshold[32 * i + j])) << j;
      bits[i] = word;
    }
  }
}


void tfkb_conv(const tfkb_conv_params *p, const uint32_t *x, int8_t *out)
{
  const int32_t nw = TFKB_WORDS(p->in_c), k = p->k;
  for (int32_t oy = 0; oy < p->out_h; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += p->out_c) {
      for (int32_t o = 0; o < p->out_c; ++o) {
        int32_t mism = 0, taps = 0;
        for (int32_t ky = 0; ky < k; ++ky) {
          const int32_t iy = oy * p->stride - p->pad_top + ky;
          if (iy < 0 || iy >= p->in_h) continue;
          for (int32_t kx = 0; kx < k; ++kx) {
            const int32_t ix = ox * p->stride - p->pad_left + kx;
            if (ix < 0 || ix >= p->in_w) continue;
            const uint32_t *px = x + (iy * p->in_w + ix) * nw;
            const uint32_t *pw = p->weights + ((o * k + ky) * k + kx) * nw;
            for (int32_t i = 0; i < nw; ++i) mism += __builtin_popcount(px[i] ^ pw[i]);
            taps++;
          }
        }
        const int32_t acc = taps * p->in_c - 2 * mism + p->bias[o];
        const int32_t v = p->rq ? tfk_rqs(acc, p->rq + 3 * o)
                                : tfk_mbqm(acc, p->mult[o], p->shift[o]) + p->out_zp;
        out[o] = tfk_clamp8(v, p->act_min, p->act_max);
      }
    }
  }
}
#endif /* !TFK_USE_DSP */
