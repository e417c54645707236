/* GATHER (constant positions) and TRANSPOSE on int8 tensors: pure data
 * movement, so equal to TFLite's kernels by construction (portable C). */
#include <string.h>

#include "tfk.h"

void tfk_gather(int32_t outer, int32_t axis_size, int32_t inner, int32_t n_index,
                const int32_t *index, const int8_t *in, int8_t *out) {
  for (int32_t o = 0; o < outer; ++o) {
    const int8_t *src = in + o * axis_size * inner;
    if (inner == 1) {
      for (int32_t j = 0; j < n_index; ++j) out[j] = src[index[j]];
    } else {
      for (int32_t j = 0; j < n_index; ++j) memcpy(out + j * inner, src + index[j] * inner, (size_t)inner);
    }
    out += n_index * inner;
  }
}

void tfk_transpose(const tfk_transpose_params *p, const int8_t *in, int8_t *out) {
  const int32_t *d = p->out_dims, *s = p->in_stride;
  for (int32_t i0 = 0; i0 < d[0]; ++i0)
    for (int32_t i1 = 0; i1 < d[1]; ++i1)
      for (int32_t i2 = 0; i2 < d[2]; ++i2) {
        const int8_t *src = in + i0 * s[0] + i1 * s[1] + i2 * s[2];
        for (int32_t i3 = 0; i3 < d[3]; ++i3) *out++ = src[i3 * s[3]];
      }
}
