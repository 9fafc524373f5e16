/* RESHAPE: same elements of any dtype, the new shape is the output tensor's. */
#include <string.h>

#include "op.h"

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x->dtype != y->dtype || x->sparse != NULL)
    return sl_node_fail(m, n, "input (%s) and output (%s) must have one dense dtype", x->name, y->name);
  if (x->num_elems != y->num_elems)
    return sl_node_fail(m, n, "cannot reshape %zu elements into %zu", x->num_elems, y->num_elems);
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t* x = sl_in(m, n, 0);
  memcpy(sl_out(m, n, 0)->data, x->data, x->num_bytes);
}

const sl_op_def_t sl_op_reshape = {SL_OP_SCHEMA(RESHAPE), 1, 1, prepare, run, prepare};
