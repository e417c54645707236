/* The host build's input stage: the host loads the int8 model input. */
#ifndef TFK_INPUT_H
#define TFK_INPUT_H
#include <stdint.h>
#include "model.h"
#define TFK_INPUT_CHANNELS_FFT_LBP 0
#define TFK_LOAD_BYTES MODEL_INPUT_BYTES
#endif
