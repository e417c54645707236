/* tinyfake runtime: int8 kernels called by the generated model.c.
 *
 * Every kernel reproduces TensorFlow Lite Micro's reference kernel bit for
 * bit. Quantization parameters that the reference computes in Prepare
 * (multipliers, shifts, activation ranges, lookup tables) are computed by the
 * compiler and passed in as constants, so the kernels are pure integer loops:
 * no heap, no float, no state.
 *
 * Two implementations share these signatures: portable C99 (tfk_*.c) and a
 * Cortex-M7 variant using ARMv7E-M DSP dual-MAC instructions (cortex_m/).
 * TFK_USE_DSP picks one at build time; it defaults to the compiler's
 * __ARM_FEATURE_DSP. Both produce identical outputs.
 */
#ifndef TFK_H
#define TFK_H

#include <stdint.h>
#include <string.h>

#include "tfk_binary.h"

#ifndef TFK_USE_DSP
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TFK_USE_DSP 1
#else
#define TFK_USE_DSP 0
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fixed-point helpers (gemmlowp / TFLM "double rounding") ---------- */

/* SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating. */
static inline int32_t tfk_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1ll << 30) : (1ll - (1ll << 30));
  return (int32_t)((ab + nudge) / (1ll << 31));
}

/* RoundingDivideByPOT: x / 2^e rounded half away from zero. */
static inline int32_t tfk_rdbpot(int32_t x, int e) {
  int32_t mask = (int32_t)((1ll << e) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier: x * m * 2^(shift - 31), reference rounding. */
static inline int32_t tfk_mbqm(int32_t x, int32_t m, int32_t shift) {
  int left = shift > 0 ? shift : 0;
  int right = shift > 0 ? 0 : -shift;
  /* shift through unsigned: the reference's left shift wraps, C's would be UB */
  return tfk_rdbpot(tfk_srdhm((int32_t)((uint32_t)x << left), m), right);
}

static inline int8_t tfk_clamp8(int32_t v, int32_t lo, int32_t hi) {
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Fast exact requantization: MultiplyByQuantizedMultiplier(x, m, -e) + zp for
 * a right shift e >= 1 and |x| < 2^30 (the compiler checks both per layer).
 * The reference's two roundings (round-half-up high multiply, then
 * round-half-away-from-zero shift) collapse into one rounding multiply-
 * accumulate: with K = 2^(e-1) + zp * 2^e,
 *   result = SMMLAR(2x, m, K + (x >> 31)) >> e
 * where SMMLAR(a, b, c) = (c * 2^32 + a * b + 2^31) >> 32. q = {m, K, e}. */
static inline int32_t tfk_rq(int32_t x, const int32_t *q) {
  const int32_t x2 = (int32_t)((uint32_t)x << 1);
  const int32_t c = q[1] + (x >> 31);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(x2), "r"(q[0]), "r"(c));
  return r >> q[2];
#else
  const int64_t t = (int64_t)c * 4294967296ll + (int64_t)x2 * q[0] + 2147483648ll;
  return (int32_t)(t >> 32) >> q[2];
#endif
}

/* The same for either shift direction, q = {m, K, sh}: sh < 0 is tfk_rq's
 * right shift e = -sh; sh >= 1 is a left shift s = sh - 1 with K = zp:
 * srdhm(x * 2^s, m) = (x * 2^(s+1) * m + 2^31) >> 32 needs no second
 * rounding, so r = SMMLAR(x << sh, m, zp) (exact while |x| << sh fits 31
 * bits; the compiler checks, tinyfake.compiler.quant.shifted_requant). */
static inline int32_t tfk_smmlar(int32_t a, int32_t b, int32_t c) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
#else
  return (int32_t)(((int64_t)c * 4294967296ll + (int64_t)a * b + 2147483648ll) >> 32);
#endif
}

static inline int32_t tfk_rqs(int32_t x, const int32_t *q) {
  if (q[2] < 0) return tfk_smmlar((int32_t)((uint32_t)x << 1), q[0], q[1] + (x >> 31)) >> -q[2];
  return tfk_smmlar((int32_t)((uint32_t)x << q[2]), q[0], q[1]);
}

/* Saturate to int8 (SSAT on Arm). */
static inline int32_t tfk_sat8(int32_t v) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  int32_t r;
  __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
  return r;
#else
  return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* ---- convolutions ------------------------------------------------------ */

/* CONV_2D and DEPTHWISE_CONV_2D, NHWC int8, per-channel requantization.
 * Weights: conv [out_c][k_h][k_w][in_c / groups]; depthwise [k_h][k_w][out_c]
 * with out_c = in_c * depth_mult. A grouped CONV_2D (groups > 1) has
 * output channel o read the in_c / groups input channels of its group
 * o / (out_c / groups), like TFLite's reference ConvPerChannel. Taps outside
 * the input are skipped (= padding with the input zero point), which is
 * also how a preceding PAD is fused. */
typedef struct {
  int16_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
  int16_t k_h, k_w, stride_h, stride_w, dil_h, dil_w;
  int16_t pad_top, pad_left, depth_mult, groups;
  int32_t in_offset;           /* -input zero point */
  int32_t out_offset;          /* output zero point */
  int32_t act_min, act_max;
  const int8_t *weights;
  const int32_t *bias;         /* may be NULL */
  const int32_t *mult;         /* per output channel */
  const int32_t *shift;        /* per output channel */
} tfk_conv_params;

void tfk_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out, int16_t *scratch);
/* The reference loop order (any groups): tfk_conv2d on portable builds, and
 * the Cortex-M7 variant's path for grouped convolutions. */
void tfk_conv2d_ref(const tfk_conv_params *p, const int8_t *in, int8_t *out);
void tfk_depthwise_conv2d(const tfk_conv_params *p, const int8_t *in, int8_t *out);
/* int16 scratch the conv needs (in elements); the planner reserves it. */
#define TFK_CONV_SCRATCH(k_h, k_w, in_c) ((int32_t)(k_h) * (k_w) * (in_c) + 4)

/* Pointwise (1x1, stride 1, no padding) CONV_2D as a matrix product over
 * pixels, without im2col. The compiler pads each weight row with zeros to
 * in_c4 (in_c rounded up to 4) and folds the input zero point into the bias
 * (bias + in_offset * sum(w)), so the inner loop is a pure int8 dot product.
 * rq: per output channel {m, K, e} for tfk_rq. lut: NULL, or a 256-entry
 * table applied to every output (a fused element-wise activation, or the
 * activation clamp when it is narrower than int8). */
typedef struct {
  int32_t pixels, in_c, out_c, in_c4;
  const int8_t *weights;       /* [out_c][in_c4] */
  const int32_t *bias;         /* folded, per output channel */
  const int32_t *rq;           /* [out_c][3] */
  const int8_t *lut;
} tfk_pw_params;

void tfk_conv1x1(const tfk_pw_params *p, const int8_t *in, int8_t *out);

/* Requantization of a doubled accumulator: x2 = 2x (the kernels below get
 * it for free by doubling weights and bias at compile time), q = {m, K, e}
 * of tfk_rq (same exact range: |x| < 2^30, e >= 1). */
static inline int32_t tfk_rq2(int32_t x2, int32_t m, int32_t K, int32_t e) {
  const int32_t c = K + (x2 >> 31);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(x2), "r"(m), "r"(c));
  return r >> e;
#else
  const int64_t t = (int64_t)c * 4294967296ll + (int64_t)x2 * m + 2147483648ll;
  return (int32_t)(t >> 32) >> e;
#endif
}

/* Pointwise CONV_2D with int16 weights (for layers with many pixels, where
 * the extra flash buys the most): the 2 pixels of a pass are widened once
 * into int16 pairs (SXTB16 lane order), then every output channel is a run
 * of SMLADs against pre-widened weights, 2 pixels x 2 output channels per
 * pass. Output channels go in pairs (an odd last one is paired with zeros).
 * Weights per pair and group of 4 input channels: {2w0, 2w2}, {2w1, 2w3} of
 * the first channel, then the same of the second (doubled, zero-padded to
 * in_c4); q per pair {2b0, 2b1, m0, K0, e0, e1, m1, K1} (b: folded bias;
 * m, K, e: see tfk_rq2). lut: NULL, or the activation table indexed by the
 * signed int8 value (entry v + 128). in_c4 <= TFK_PW16_MAX_C4. */
#define TFK_PW16_MAX_C4 256
typedef struct {
  int32_t pixels, in_c, out_c, in_c4;
  const int32_t *weights;      /* [ceil(out_c / 2)][in_c4 / 4][4] */
  const int32_t *q;            /* [ceil(out_c / 2)][8] */
  const int8_t *lut;           /* 256 entries, index v + 128, or NULL */
} tfk_pw16_params;

void tfk_pw16(const tfk_pw16_params *p, const int8_t *in, int8_t *out);

/* 3x3 DEPTHWISE_CONV_2D, depth multiplier 1, any stride / padding.
 * Channels go 4 at a time (zero-padded past the last channel). Weights per
 * group of 4 channels and tap: the words {2w[c0], 2w[c2]}, {2w[c1], 2w[c3]}
 * (doubled int16, the lane order SXTB16 gives the input); q per group of
 * 4 channels {2b0, 2b1, 2b2, 2b3, m0, K0, e0, ..., m3, K3, e3} (tfk_rq2;
 * padding taps are skipped, so the input offset cannot be folded into the
 * bias). lut as for tfk_pw16 (index v+128), applied as a second pass. */
typedef struct {
  int16_t in_h, in_w, channels, out_h, out_w;
  int16_t stride_h, stride_w, pad_top, pad_left;
  int32_t in_offset;
  const int32_t *weights;      /* [ceil(channels/4)][9][2] */
  const int32_t *q;            /* [ceil(channels/4)][16] */
  const int8_t *lut;
} tfk_dw3_params;

void tfk_dw3x3(const tfk_dw3_params *p, const int8_t *in, int8_t *out);

/* CONV_2D (batch 1, no dilation) without im2col: in NHWC the k_w taps of
 * one kernel row are k_w * in_c contiguous input bytes, so an interior
 * output pixel is k_h dot products of contiguous rows. Weight rows are
 * zero-padded to row4 (a multiple of 4) and `bias` has the input offset
 * folded in (valid where every tap is inside the input); border pixels use
 * `bias0` (the original bias) and skip outside taps like the reference. */
typedef struct {
  int16_t in_h, in_w, in_c, out_h, out_w, out_c;
  int16_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
  int32_t row4, in_offset;
  const int8_t *weights;       /* [out_c][k_h][row4] */
  const int32_t *bias;         /* folded */
  const int32_t *bias0;        /* original (zeros when the op has none) */
  const int32_t *rq;           /* [out_c][3] */
  const int8_t *lut;
} tfk_convrow_params;

void tfk_conv_rows(const tfk_convrow_params *p, const int8_t *in, int8_t *out);

/* Grouped 1x1 CONV_2D (tfk_gconv.c; stride 1, no padding) over `pixels` pixels: weight
 * rows zero-padded to grp_in4 (grp_in = in_c / groups rounded up to 4), input
 * offset folded into the bias, rq per output channel {m, K, e} for tfk_rq,
 * outputs clamped to [act_min, act_max]. grp_in4 <= TFK_GPW_MAX_GI4. */
#define TFK_GPW_MAX_GI4 256
typedef struct {
  int32_t pixels, in_c, out_c, groups, grp_in, grp_in4;
  int32_t act_min, act_max;
  const int8_t *weights;       /* [out_c][grp_in4] */
  const int32_t *bias;         /* folded, per output channel */
  const int32_t *rq;           /* [out_c][3] */
} tfk_gpw_params;

void tfk_grouped_conv1x1(const tfk_gpw_params *p, const int8_t *in, int8_t *out);

/* FULLY_CONNECTED: weights [out_depth][in_depth]; per-tensor (mult/shift
 * of length 1) or per-channel. */
typedef struct {
  int16_t batches, in_depth, out_depth, per_channel;
  int32_t in_offset, w_offset, out_offset;
  int32_t act_min, act_max;
  const int8_t *weights;
  const int32_t *bias;         /* may be NULL */
  const int32_t *mult;
  const int32_t *shift;
} tfk_fc_params;

void tfk_fully_connected(const tfk_fc_params *p, const int8_t *in, int8_t *out);

/* ---- element-wise binary ops with broadcasting -------------------------- */

/* Output shape (4D, NHWC order) and per-input element strides; a stride of 0
 * broadcasts that dimension. Used when shapes differ; NULL means same shape. */
typedef struct {
  int32_t dims[4];
  int32_t a_stride[4];
  int32_t b_stride[4];
} tfk_bcast;

typedef struct {
  int32_t a_offset, b_offset, out_offset, left_shift;
  int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift;
  int32_t act_min, act_max;
  const int32_t *rq;           /* NULL, or {a, b, out} triplets for tfk_rq (exact fast path); an input
                                * triplet {0, 0, 0}: multiplier exactly 1/2, rescale = (q + offset) << 19 */
} tfk_add_params;

typedef struct {
  int32_t a_offset, b_offset, out_offset;
  int32_t out_mult, out_shift;
  int32_t act_min, act_max;
  const int32_t *rq;           /* NULL, or the output's triplet for tfk_rq (exact fast path) */
} tfk_mul_params;

/* n: element count when bc == NULL. Safe in place (out == a or out == b)
 * when that input has the output's shape. */
void tfk_add(const tfk_add_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out);
void tfk_mul(const tfk_mul_params *p, const tfk_bcast *bc, int32_t n,
             const int8_t *a, const int8_t *b, int8_t *out);

/* MAXIMUM / MINIMUM: the larger / smaller raw int8 value, element by element
 * (TFLite compares the quantized values as they are; the converter gives
 * both inputs and the output one scale). bc / n as for tfk_add. Safe in
 * place. */
void tfk_maximum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out);
void tfk_minimum(const tfk_bcast *bc, int32_t n, const int8_t *a, const int8_t *b, int8_t *out);

/* ---- reductions and pooling ---------------------------------------------- */

/* MEAN over a contiguous block of axes: input viewed as [outer][reduce][inner]. */
typedef struct {
  int32_t outer, reduce, inner;
  int32_t in_zp, out_zp;
  int32_t mult, shift;         /* already folded with 1/reduce */
} tfk_mean_params;

void tfk_mean(const tfk_mean_params *p, const int8_t *in, int8_t *out);

typedef struct {
  int16_t batches, in_h, in_w, channels, out_h, out_w;
  int16_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
  int32_t act_min, act_max;
} tfk_pool_params;

void tfk_avg_pool(const tfk_pool_params *p, const int8_t *in, int8_t *out);
void tfk_max_pool(const tfk_pool_params *p, const int8_t *in, int8_t *out);

/* ---- data movement --------------------------------------------------------- */

/* PAD on a 4D int8 tensor with a constant value. */
typedef struct {
  int32_t in_dims[4];
  int32_t before[4];
  int32_t out_dims[4];
  int32_t value;
} tfk_pad_params;

void tfk_pad(const tfk_pad_params *p, const int8_t *in, int8_t *out);

/* CONCATENATION along one axis: input i contributes sizes[i] contiguous
 * bytes to each of `outer` output rows. */
void tfk_concat(int32_t outer, int32_t n_inputs, const int8_t *const *inputs,
                const int32_t *sizes, int8_t *out);

/* GATHER along one axis with constant positions: input viewed as
 * [outer][axis_size][inner], output [outer][n_index][inner],
 * out[o][j][:] = in[o][index[j]][:]. Not in place. */
void tfk_gather(int32_t outer, int32_t axis_size, int32_t inner, int32_t n_index,
                const int32_t *index, const int8_t *in, int8_t *out);

/* TRANSPOSE of a (up to) 4D tensor: out_dims is the output shape and
 * in_stride[d] the input element stride of output dimension d. Not in place. */
typedef struct {
  int32_t out_dims[4];
  int32_t in_stride[4];
} tfk_transpose_params;

void tfk_transpose(const tfk_transpose_params *p, const int8_t *in, int8_t *out);

/* Any int8 -> int8 unary op (HARD_SWISH, LOGISTIC, requantize, ...) as a
 * 256-entry table indexed by the input's bit pattern. Safe in place. */
void tfk_lut(const int8_t *table, int32_t n, const int8_t *in, int8_t *out);

/* PRELU int8 -> int8 over rows of `channels` values, alpha per channel (or
 * one alpha when alpha_per_channel is 0). See tfk_prelu.c. */
typedef struct {
  int32_t outer, channels, alpha_per_channel;
  int32_t in_offset, alpha_offset, out_zp;   /* -input zp, -alpha zp, output zp */
  int32_t mult2, shift2;                     /* negative branch */
  const int8_t *alpha;
  const int8_t *pos_lut;                     /* non-negative branch, per int8 value */
  const int32_t *rq2;                        /* NULL or {m, K, e} of the negative branch */
} tfk_prelu_params;

void tfk_prelu(const tfk_prelu_params *p, const int8_t *in, int8_t *out);

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128) over rows of
 * `depth` values (depth <= 256). exp_table[d] is the reference's Q0.31
 * exp() of an input d steps below the row maximum (0 where the reference
 * skips it), computed by the compiler for the op's beta and input scale. */
void tfk_softmax(const int32_t *exp_table, int32_t outer, int32_t depth, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

/* The loop nest of every two-input element-wise kernel (ADD, MUL, MAXIMUM,
 * MINIMUM), broadcasting through `bc` (NULL: same shapes): OP(p, a, b) per
 * output element. Reads a[i]/b[j] before writing out[i] in the same order,
 * so in-place use is safe. */
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

/* ---- depthwise, any kernel (tfk_dwk.c) --------------------------------- */

/* DEPTHWISE_CONV_2D / grouped CONV_2D with one input channel per group:
 * any k_h x k_w, stride, padding and depth multiplier; batch 1, no
 * dilation. Output channels go in groups of 4 lanes; mode says which input
 * channels the lanes of a group read (1: in_off + j, 2: in_off + j / 2,
 * 4: in_off) and lane j writes output channel out_off + j * out_stride.
 * Weights per group and tap (taps = k_h * k_w, row-major): the words
 * {2w[l0], 2w[l2]}, {2w[l1], 2w[l3]} (doubled int16, SXTB16 lane order);
 * q per group TFK_DWK_Q words {in_off, out_off, lanes, 2b0, 2b1, 2b2, 2b3,
 * m0, K0, e0, ..., m3, K3, e3} (tfk_rq2; taps outside the input are
 * skipped, so the bias does not hold the input offset). Outputs are
 * clamped to [act_min, act_max]. */
#define TFK_DWK_Q 19
typedef struct {
  int16_t in_h, in_w, in_c, out_h, out_w, out_c;
  int16_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
  int16_t mode, groups, out_stride, taps;
  int32_t in_offset, act_min, act_max;
  const int32_t *weights;      /* [groups][taps][2] */
  const int32_t *q;            /* [groups][TFK_DWK_Q] */
} tfk_dwk_params;

#ifdef __cplusplus
extern "C" {
#endif
void tfk_dwk(const tfk_dwk_params *p, const int8_t *in, int8_t *out);
#ifdef __cplusplus
}
#endif

#endif /* TFK_H */
