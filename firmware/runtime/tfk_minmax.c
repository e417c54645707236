/* MAXIMUM and MINIMUM on int8 tensors, with broadcasting (portable C).
 * TFLite's kernels compare the raw quantized values (no rescaling), so the
 * result is exact for any quantization the converter chose. */
#include "tfk.h"

/* p is unused: TFK_BINARY_LOOP passes the kernel's params first */
#define TFK_MAX8(p, x, y) ((x) > (y) ? (x) : (y))
#define TFK_MIN8(p, x, y) ((x) < (y) ? (x) : (y))

void tfk_maximum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_BINARY_LOOP(TFK_MAX8)
}

void tfk_minimum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_BINARY_LOOP(TFK_MIN8)
}
