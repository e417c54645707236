/* The self-test input and its expected output, generated on the host by
 * tinyfake.firmware.selftest with the tflite-micro wheel as the oracle. The
 * input is what the host would LOAD (TFK_LOAD_BYTES): the int8 model input,
 * or for an RGB + FFT + LBP model the RGB face the board makes it from. */
#ifndef TF_SELFTEST_H
#define TF_SELFTEST_H
#include <stdint.h>
#include "model.h"
#include "tf_input.h"
extern const int8_t tf_selftest_input[TFK_LOAD_BYTES];
extern const int8_t tf_selftest_expected[MODEL_OUTPUT_BYTES];
#endif
