/* ADD and MUL (int8, with broadcasting), and table lookups for unary ops. */
#include "tfk.h"

static inline int8_t add_one(const tfk_add_params *p, int32_t a, int32_t b) {
  /* reference AddElementwise: align both inputs on a common scale 2^20 finer,
   * add, then rescale to the output */
  const int32_t sa = tfk_mbqm((a + p->a_offset) * (1 << p->left_shift), p->a_mult, p->a_shift);
  const int32_t sb = tfk_mbqm((b + p->b_offset) * (1 << p->left_shift), p->b_mult, p->b_shift);
  const int32_t o = tfk_mbqm(sa + sb, p->out_mult, p->out_shift) + p->out_offset;
  return tfk_clamp8(o, p->act_min, p->act_max);
}

static inline int8_t mul_one(const tfk_mul_params *p, int32_t a, int32_t b) {
  const int32_t o = p->out_offset + tfk_mbqm((a + p->a_offset) * (b + p->b_offset), p->out_mult, p->out_shift);
  return tfk_clamp8(o, p->act_min, p->act_max);
}

/* One loop nest for both ops: OP(p, a, b) per output element. Reads a[i]/b[j]
 * before writing out[i] in the same order, so in-place use is safe. */
#define TFK_BINARY_LOOP(OP)                                                         \
  if (!bc) {                                                                        \
    for (int32_t i = 0; i < n; ++i) out[i] = OP(p, a[i], b[i]);                     \
    return;                                                                         \
  }                                                                                 \
  for (int32_t i0 = 0; i0 < bc->dims[0]; ++i0)                                      \
    for (int32_t i1 = 0; i1 < bc->dims[1]; ++i1)                                    \
      for (int32_t i2 = 0; i2 < bc->dims[2]; ++i2) {                                \
        const int8_t *pa = a + i0 * bc->a_stride[0] + i1 * bc->a_stride[1] + i2 * bc->a_stride[2]; \
        const int8_t *pb = b + i0 * bc->b_stride[0] + i1 * bc->b_stride[1] + i2 * bc->b_stride[2]; \
        const int32_t sa = bc->a_stride[3], sb = bc->b_stride[3];                   \
        for (int32_t i3 = 0; i3 < bc->dims[3]; ++i3) *out++ = OP(p, pa[i3 * sa], pb[i3 * sb]); \
      }

void tfk_add(const tfk_add_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_BINARY_LOOP(add_one)
}

void tfk_mul(const tfk_mul_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out) {
  TFK_BINARY_LOOP(mul_one)
}

void tfk_lut(const int8_t *table, int32_t n, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) out[i] = table[(uint8_t)in[i]];
}
