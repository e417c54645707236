/* The self-test input and its expected output, generated on the host by
 * tinyfake.firmware.selftest with the tflite-micro wheel as the oracle. */
#ifndef TF_SELFTEST_H
#define TF_SELFTEST_H
#include <stdint.h>
#include "model.h"
extern const int8_t tf_selftest_input[MODEL_INPUT_BYTES];
extern const int8_t tf_selftest_expected[MODEL_OUTPUT_BYTES];
#endif
