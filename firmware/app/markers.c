#include "markers.h"

/* noipa: never inlined, cloned or merged with each other (GCC's identical
 * code folding would otherwise give both one address). */
volatile unsigned tf_mark_state;

__attribute__((noipa)) void tf_mark_begin(void) { tf_mark_state = 1; }
__attribute__((noipa)) void tf_mark_end(void) { tf_mark_state = 2; }
__attribute__((noipa)) void tf_mark_op(void) { tf_mark_state = 3; }
