/* PAD and CONCATENATION: pure data movement. */
#include "tfk.h"

void tfk_pad(const tfk_pad_params *p, const int8_t *in, int8_t *out) {
  const int32_t *id = p->in_dims, *od = p->out_dims, *bf = p->before;
  const int8_t v = (int8_t)p->value;
  for (int32_t o0 = 0; o0 < od[0]; ++o0)
    for (int32_t o1 = 0; o1 < od[1]; ++o1)
      for (int32_t o2 = 0; o2 < od[2]; ++o2) {
        int8_t *row = out + ((o0 * od[1] + o1) * od[2] + o2) * od[3];
        const int32_t i0 = o0 - bf[0], i1 = o1 - bf[1], i2 = o2 - bf[2];
        if (i0 < 0 || i0 >= id[0] || i1 < 0 || i1 >= id[1] || i2 < 0 || i2 >= id[2]) {
          memset(row, v, (size_t)od[3]);
          continue;
        }
        const int8_t *src = in + ((i0 * id[1] + i1) * id[2] + i2) * id[3];
        memset(row, v, (size_t)bf[3]);
        memcpy(row + bf[3], src, (size_t)id[3]);
        memset(row + bf[3] + id[3], v, (size_t)(od[3] - bf[3] - id[3]));
      }
}

void tfk_concat(int32_t outer, int32_t n_inputs, const int8_t *const *inputs,
                const int32_t *sizes, int8_t *out) {
  for (int32_t o = 0; o < outer; ++o)
    for (int32_t i = 0; i < n_inputs; ++i) {
      memcpy(out, inputs[i] + o * sizes[i], (size_t)sizes[i]);
      out += sizes[i];
    }
}
