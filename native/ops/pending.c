/* PENDING(issue 17): ops declared in the schema whose implementations are being written on
 * their own branches; each moves to its own file and leaves this one, which then goes. */
#include "op.h"

static sl_status_t not_yet(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  return sl_node_fail(m, n, "is not implemented yet");
}
static void nothing(const sl_model_t* m, const sl_node_t* n) { (void)m; (void)n; }

const sl_op_def_t sl_op_cumsum = {SL_OP_SCHEMA(CUMSUM), 1, 1, not_yet, nothing, NULL};
const sl_op_def_t sl_op_expand = {SL_OP_SCHEMA(EXPAND), 1, 1, not_yet, nothing, NULL};
const sl_op_def_t sl_op_gather_elements = {SL_OP_SCHEMA(GATHER_ELEMENTS), 2, 2, not_yet, nothing, NULL};
const sl_op_def_t sl_op_group_norm = {SL_OP_SCHEMA(GROUP_NORM), 1, 3, not_yet, nothing, NULL};
