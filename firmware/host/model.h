/* The host build's stand-in model (firmware/host/README: the real protocol.c
 * with only the UART, the clock and the model call stood in). */
#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>

#define MODEL_NAME "host stand-in"
#define MODEL_HASH "h0s7h0s7h0s7h0s7"
#define MODEL_INPUT_H 4
#define MODEL_INPUT_W 4
#define MODEL_INPUT_C 3
#define MODEL_INPUT_BYTES (MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C)
#define MODEL_OUTPUT_BYTES 2
#define MODEL_INPUT_SCALE (0.003921569f)
#define MODEL_INPUT_ZERO_POINT (-128)
#define MODEL_OUTPUT_SCALE (0.00390625f)
#define MODEL_OUTPUT_ZERO_POINT (-128)
#define MODEL_ARENA_BYTES 64
#define MODEL_WEIGHT_BYTES 16
#define MODEL_MACS 48ULL
#define MODEL_NUM_OPS 1

int model_invoke(const int8_t *input, int8_t *output);
#endif
