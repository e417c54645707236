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

/* Fast paths (p->rq set by the compiler when every step is in tfk_rq's exact
 * range): the same arithmetic with one rounding multiply-accumulate per
 * MultiplyByQuantizedMultiplier. */
static inline __attribute__((always_inline)) int8_t act_clamp(const int32_t *lim, int32_t v, int full) {
  v = tfk_sat8(v);
  if (!full) v = v < lim[0] ? lim[0] : (v > lim[1] ? lim[1] : v);
  return (int8_t)v;
}

/* ha / hb: that input's multiplier is exactly 1/2 (rq triple {0, 0, 0}),
 * so its rescale is (q + offset) << 19, exactly */
static inline __attribute__((always_inline)) int8_t add_fast(const tfk_add_params *p, int32_t a, int32_t b, int full,
                                                              int ha, int hb) {
  const int32_t sa = ha ? (a + p->a_offset) * (1 << 19) : tfk_rq((a + p->a_offset) * (1 << 20), p->rq);
  const int32_t sb = hb ? (b + p->b_offset) * (1 << 19) : tfk_rq((b + p->b_offset) * (1 << 20), p->rq + 3);
  return act_clamp(&p->act_min, tfk_rq(sa + sb, p->rq + 6), full);
}

static inline __attribute__((always_inline)) int8_t mul_fast(const tfk_mul_params *p, int32_t a, int32_t b, int full) {
  return act_clamp(&p->act_min, tfk_rq((a + p->a_offset) * (b + p->b_offset), p->rq), full);
}

#define ADD_FULL(p, a, b) add_fast(p, a, b, 1, 0, 0)
#define ADD_LIM(p, a, b) add_fast(p, a, b, 0, 0, 0)
#define ADD_FULL_HA(p, a, b) add_fast(p, a, b, 1, 1, 0)
#define ADD_LIM_HA(p, a, b) add_fast(p, a, b, 0, 1, 0)
#define ADD_FULL_HB(p, a, b) add_fast(p, a, b, 1, 0, 1)
#define ADD_LIM_HB(p, a, b) add_fast(p, a, b, 0, 0, 1)
#define ADD_FULL_HAB(p, a, b) add_fast(p, a, b, 1, 1, 1)
#define ADD_LIM_HAB(p, a, b) add_fast(p, a, b, 0, 1, 1)
#define MUL_FULL(p, a, b) mul_fast(p, a, b, 1)
#define MUL_LIM(p, a, b) mul_fast(p, a, b, 0)

#define ADD_VARIANT(name, OP) \
  static void name(const tfk_add_params *p, const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, \
                   int8_t *out) { TFK_BINARY_LOOP(OP) }
ADD_VARIANT(add_full, ADD_FULL)
ADD_VARIANT(add_lim, ADD_LIM)
ADD_VARIANT(add_full_ha, ADD_FULL_HA)
ADD_VARIANT(add_lim_ha, ADD_LIM_HA)
ADD_VARIANT(add_full_hb, ADD_FULL_HB)
ADD_VARIANT(add_lim_hb, ADD_LIM_HB)
ADD_VARIANT(add_full_hab, ADD_FULL_HAB)
ADD_VARIANT(add_lim_hab, ADD_LIM_HAB)
static void mul_full(const tfk_mul_params *p, const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) { TFK_BINARY_LOOP(MUL_FULL) }
static void mul_lim(const tfk_mul_params *p, const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out) { TFK_BINARY_LOOP(MUL_LIM) }

void tfk_add(const tfk_add_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out) {
  if (p->rq) {
    const int full = p->act_min <= -128 && p->act_max >= 127;
    const int h = (p->rq[0] == 0 ? 1 : 0) | (p->rq[3] == 0 ? 2 : 0);
    switch (h) {
      case 0: (full ? add_full : add_lim)(p, bc, n, a, b, out); break;
      case 1: (full ? add_full_ha : add_lim_ha)(p, bc, n, a, b, out); break;
      case 2: (full ? add_full_hb : add_lim_hb)(p, bc, n, a, b, out); break;
      default: (full ? add_full_hab : add_lim_hab)(p, bc, n, a, b, out); break;
    }
    return;
  }
  TFK_BINARY_LOOP(add_one)
}

void tfk_mul(const tfk_mul_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out) {
  if (p->rq) {
    if (p->act_min <= -128 && p->act_max >= 127) mul_full(p, bc, n, a, b, out);
    else mul_lim(p, bc, n, a, b, out);
    return;
  }
  TFK_BINARY_LOOP(mul_one)
}

void tfk_lut(const int8_t *table, int32_t n, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) out[i] = table[(uint8_t)in[i]];
}
