/* MAXIMUM and MINIMUM on int8 tensors, with broadcasting (portable C).
 * TFLite's kernels compare the raw quantized values (no rescaling), so the
 * result is exact for any quantization the converter chose. */
#include "tfk.h"

#define TFK_MAX8(x, y) ((x) > (y) ? (x) : (y))
#define TFK_MIN8(x, y) ((x) < (y) ? (x) : (y))

#define TFK_MINMAX_BODY(OP)                                                          \
  if (!bc) {                                                                        \
    for (int32_t i = 0; i < n; ++i) out[i] = OP(a[i], b[i]);                         \
    return;                                                                         \
  }                                                                                 \
  for (int32_t i0 = 0; i0 < bc->dims[0]; ++i0)                                      \
    for (int32_t i1 = 0; i1 < bc->dims[1]; ++i1)                                    \
      for (int32_t i2 = 0; i2 < bc->dims[2]; ++i2) {                                \
        const int8_t *pa = a + i0 * bc->a_stride[0] + i1 * bc->a_stride[1] + i2 * bc->a_stride[2]; \
        const int8_t *pb = b + i0 * bc->b_stride[0] + i1 * bc->b_stride[1] + i2 * bc->b_stride[2]; \
        const int32_t sa = bc->a_stride[3], sb = bc->b_stride[3];                   \
        for (int32_t i3 = 0; i3 < bc->dims[3]; ++i3) {                              \
          const int8_t va = pa[i3 * sa], vb = pb[i3 * sb];                           \
          *out++ = OP(va, vb);                                                      \
        }                                                                           \
      }

void tfk_maximum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_MINMAX_BODY(TFK_MAX8)
}

void tfk_minimum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_MINMAX_BODY(TFK_MIN8)
}
