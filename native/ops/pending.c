/* PENDING(issue 17): ops declared in the schema whose implementations are being written on
 * their own branches; each moves to its own file and leaves this one, which then goes. */
#include "op.h"

static sl_status_t not_yet(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  return sl_node_fail(m, n, "is not implemented yet");
}
static void nothing(const sl_model_t* m, const sl_node_t* n) { (void)m; (void)n; }

const sl_op_def_t sl_op_compare = {SL_OP_SCHEMA(COMPARE), 2, 2, not_yet, nothing, NULL};
const sl_op_def_t sl_op_logical = {SL_OP_SCHEMA(LOGICAL), 1, 2, not_yet, nothing, NULL};
const sl_op_def_t sl_op_where = {SL_OP_SCHEMA(WHERE), 3, 3, not_yet, nothing, NULL};
