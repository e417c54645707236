"""TFLite Micro's integer quantization arithmetic, reproduced exactly.

Two uses: (1) compile-time parameters the reference computes in Prepare
(multiplier/shift pairs, activation ranges), and (2) 256-entry lookup tables
for pure int8 -> int8 ops (HARD_SWISH, LOGISTIC, requantize), built by running
the reference's integer math on every possible input. All arithmetic uses
Python ints with explicit int16/int32 wrapping so results match C bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def tflite_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(d: float) -> tuple[int, int]:
    """QuantizeMultiplier: d ~= m * 2^(shift - 31), m in [2^30, 2^31)."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = int(tflite_round(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def srdhm32(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return wrap32(_tdiv(ab + nudge, 1 << 31))


def srdhm16(a: int, b: int) -> int:
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return wrap16(_tdiv(ab + nudge, 1 << 15))


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT (rounds half away from zero)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding, TFLM's default build)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdbpot(srdhm32(wrap32(x * (1 << left)), m), right)


def mbqm_array(x, m, shift) -> np.ndarray:
    """`mbqm` element-wise on numpy arrays (x int32 range; m, shift broadcast)."""
    x, m, shift = (np.asarray(v, np.int64) for v in (x, m, shift))
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    xl = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    ab = xl * m + np.where(xl * m >= 0, 1 << 30, 1 - (1 << 30))
    hi = np.where(ab >= 0, ab >> 31, -((-ab) >> 31))  # C division: toward zero
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (hi < 0)
    return (hi >> right) + ((hi & mask) > threshold)


def activation_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (act: schema enum value)."""
    qmin, qmax = -128, 127
    s = np.float32(scale)

    def q(f: float) -> int:  # float32 division, as the reference does
        return zp + int(tflite_round(float(np.float32(f) / s)))

    if act == 0:       # NONE
        return qmin, qmax
    if act == 1:       # RELU
        return max(qmin, q(0.0)), qmax
    if act == 2:       # RELU_N1_TO_1
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    if act == 3:       # RELU6
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    raise ValueError(act)


def fast_requant(mult: list[int], shift: list[int], out_zp: int, acc_bound: int) -> np.ndarray | None:
    """Per-channel {m, K, e} for the runtime's tfk_rq (SMMLAR form of
    MultiplyByQuantizedMultiplier + zero point), or None when a channel is
    outside its exact range: right shift 1..22 and |accumulator| < 2^30."""
    if acc_bound >= (1 << 30) - 1:
        return None
    rows = []
    for m, s in zip(mult, shift):
        e = -int(s)
        if not 1 <= e <= 22 or not (1 << 30) <= int(m) < (1 << 31):
            return None
        rows.append((int(m), (1 << (e - 1)) + int(out_zp) * (1 << e), e))
    return np.array(rows, dtype=np.int64)


def shifted_requant(mult: list[int], shift: list[int], out_zp: int, acc_bound: int) -> np.ndarray | None:
    """Per-channel {m, K, sh} for the runtime's tfk_rqs (MultiplyByQuantizedMultiplier
    + zero point in one rounding multiply, either shift direction), or None
    when a channel is outside the exact range. sh < 0: tfk_rq's right shift
    -sh; sh >= 1: a left shift of sh - 1, where srdhm(x * 2^s, m) =
    floor((x * 2^(s+1) * m + 2^31) / 2^32) needs no second rounding."""
    rows = []
    for m, s in zip(mult, shift):
        m, s = int(m), int(s)
        if not (1 << 30) <= m < (1 << 31):
            return None
        if s < 0:
            e = -s
            if e > 22 or acc_bound >= (1 << 30) - 1:
                return None
            rows.append((m, (1 << (e - 1)) + int(out_zp) * (1 << e), -e))
        else:
            if acc_bound >= 1 << (30 - s):
                return None
            rows.append((m, int(out_zp), s + 1))
    return np.array(rows, dtype=np.int64)


def clamp_lut(act_min: int, act_max: int) -> np.ndarray | None:
    """Table clamping int8 to [act_min, act_max]; None when that is all of int8."""
    if act_min <= -128 and act_max >= 127:
        return None
    return int8_table(lambda q: min(act_max, max(act_min, q)))


# --- lookup tables for int8 -> int8 unary ops --------------------------------

def int8_table(fn) -> np.ndarray:
    """Entry i holds fn(q) for the int8 value q whose bit pattern is i."""
    return np.array([fn(q if q < 128 else q - 256) for q in range(256)], dtype=np.int8)


def requantize_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """QUANTIZE int8 -> int8 (reference Requantize)."""
    m, s = quantize_multiplier(float(in_scale) / float(out_scale))
    return int8_table(lambda q: min(127, max(-128, mbqm(q - in_zp, m, s) + out_zp)))


def _downscale_int16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m32 >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m32 + (1 << 15)) >> 16


def _sat_left_shift16(v: int, amount: int) -> int:
    return min(INT16_MAX, max(INT16_MIN, v * (1 << amount)))


def _sdhm16(a: int, b: int) -> int:
    """SaturatingDoublingHighMul (rounds toward zero)."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return wrap16(_tdiv(a * b, 1 << 15))


def hard_swish_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """HARD_SWISH int8, following the reference's 16-bit fixed-point path."""
    f32 = np.float32
    hires = f32(1.0 / 128.0) * f32(in_scale)
    out_m32, out_exp = quantize_multiplier(float(f32(hires / f32(out_scale))))
    relu_m32, relu_exp = quantize_multiplier(float(f32(hires / f32(3.0 / 32768.0))))
    if out_exp > 0:
        raise ValueError("HARD_SWISH output multiplier exponent > 0")
    out_m16 = _downscale_int16(out_m32)
    relu_m16 = _downscale_int16(relu_m32)

    def fn(q: int) -> int:
        x = wrap16(q - in_zp)
        hires_x = wrap16(x * 128)
        pre_out = srdhm16(hires_x, out_m16)
        r = hires_x
        if relu_exp > 0:
            r = _sat_left_shift16(r, relu_exp - 1)
        r = srdhm16(r, relu_m16)
        if relu_exp > 0:
            r = _sat_left_shift16(r, 1)
        if relu_exp < 0:
            r = rdbpot(r, -relu_exp)
        r = wrap16((r + (1 << 15)) >> 1)
        o = rdbpot(_sdhm16(r, pre_out), -out_exp)
        o = wrap16(o + out_zp)
        return min(127, max(-128, o))

    return int8_table(fn)


# gemmlowp fixed-point logistic, int32 raw values (FixedPoint<int32_t, N>).

def _fp_mul(a: int, b: int) -> int:
    return srdhm32(a, b)


def _sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def _exp_on_interval(a: int) -> int:
    """exp(x) for x in [-1/4, 0), Q0.31."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = _fp_mul(x, x)
    x3 = _fp_mul(x2, x)
    x4 = _fp_mul(x2, x2)
    x4_over_4 = _sat_mul_pot(x4, -2)
    poly = _sat_mul_pot(wrap32(_fp_mul(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap32(constant_term + _fp_mul(constant_term, wrap32(x + poly)))


def _exp_on_negative_values(a: int, integer_bits: int) -> int:
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_q_minus_q = wrap32((a & mask) - one_quarter)
    result = _exp_on_interval(_sat_mul_pot(a_mod_q_minus_q, integer_bits))  # Rescale<0>
    remainder = wrap32(a_mod_q_minus_q - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                           (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            if remainder & (1 << (frac_bits + exponent)):
                result = _fp_mul(result, mult)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _one_over_one_plus_x(a: int) -> int:
    """1 / (1 + x) for x in (0, 1); input Q0.31, output Q0.31."""
    # RoundingHalfSum(a, One) with One = INT32_MAX in Q0.31
    s = a + INT32_MAX
    half_denominator = wrap32(_tdiv(s + (1 if s >= 0 else -1), 2))
    c48_17, cneg32_17 = 1515870810, -1010580540   # Q2.29
    x = wrap32(c48_17 + _fp_mul(half_denominator, cneg32_17))
    one_q2 = 1 << 29
    for _ in range(3):
        hd_x = _fp_mul(half_denominator, x)
        one_minus = wrap32(one_q2 - hd_x)
        x = wrap32(x + _sat_mul_pot(_fp_mul(x, one_minus), 2))   # Rescale<2> of Q4 value
    return _sat_mul_pot(x, 1)   # Rescale<0>(ExactMulByPot<-1>(x)): Q1 -> Q0


def gemmlowp_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic on FixedPoint<int32_t, integer_bits>; result Q0.31."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else wrap32(-a)
    pos = _one_over_one_plus_x(_exp_on_negative_values(wrap32(-abs_a), integer_bits))
    return pos if a > 0 else wrap32(INT32_MAX - pos)


def logistic_lut(in_scale: float, in_zp: int) -> np.ndarray:
    """LOGISTIC int8 (output scale 1/256, zero point -128 by definition)."""
    input_integer_bits = 4
    real_mult = float(in_scale) * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real_mult)
    mult = int(tflite_round(q * (1 << 31)))
    # CalculateInputRadius(4, left_shift, 31)
    radius = math.floor(1.0 * ((1 << input_integer_bits) - 1)
                        * (1 << (31 - input_integer_bits)) / (1 << left_shift))

    def fn(qv: int) -> int:
        x = qv - in_zp
        if x <= -radius:
            return -128
        if x >= radius:
            return 127
        x_q4 = mbqm(x, mult, left_shift)
        out_q0 = gemmlowp_logistic(x_q4, input_integer_bits)
        o = rdbpot(out_q0, 31 - 8) - 128
        return min(127, max(-128, o))

    return int8_table(fn)


SOFTMAX_DIFF_BITS = 5       # kScaledDiffIntegerBits
SOFTMAX_ACCUM_BITS = 12     # kAccumulationIntegerBits


def softmax_exp_table(beta: float, in_scale: float) -> np.ndarray:
    """int32 table: entry d = exp(-d * beta * scale) in Q0.31 as the reference
    computes it for an input d steps below the row maximum (0 where the
    reference skips the element because it is below diff_min)."""
    real = min(float(beta) * float(in_scale) * (1 << (31 - SOFTMAX_DIFF_BITS)), float((1 << 31) - 1))
    mult, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS))
                        / (1 << left_shift))
    diff_min = -radius
    table = []
    for d in range(256):
        diff = -d
        if diff < diff_min:
            table.append(0)
            continue
        rescaled = srdhm32(wrap32(diff * (1 << left_shift)), mult)  # ...GreaterThanOne
        table.append(_exp_on_negative_values(rescaled, SOFTMAX_DIFF_BITS))
    return np.array(table, dtype=np.int64)

