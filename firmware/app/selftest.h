/* The self-test's expected output, generated on the host by
 * tinyfake.firmware.selftest with the tflite-micro wheel as the oracle, for
 * the LCG input (seed 1) that protocol.c makes in place of a LOAD: the int8
 * model input, or for an RGB + FFT + LBP model the RGB face the board makes
 * the input from. */
#ifndef TF_SELFTEST_H
#define TF_SELFTEST_H
#include <stdint.h>
#include "model.h"
#include "tf_input.h"
extern const int8_t tf_selftest_expected[MODEL_OUTPUT_BYTES];
#endif
