/* The op table, indexed by the schema's OpType and built from its generated list: entry
 * SL_OP_<NAME> is sl_op_<name> (ops/<file>.c), so the op order is stated in the schema only. */
#include "op.h"

#define DECLARE(NAME, name, value) extern const sl_op_def_t sl_op_##name;
SL_OP_TYPE_LIST(DECLARE)

#define ENTRY(NAME, name, value) [SL_OP_##NAME] = &sl_op_##name,
const sl_op_def_t* const sl_op_table[SL_OP_COUNT] = {SL_OP_TYPE_LIST(ENTRY)};

/* Each entry sits at its own value, and the values are 0..SL_OP_COUNT-1 with no gap, so no
 * entry the loader can index is NULL. */
#define AT_OWN_VALUE(NAME, name, value) \
  _Static_assert(SL_OP_##NAME == (value), "sl_op_table: " #NAME " is not at its OpType value");
SL_OP_TYPE_LIST(AT_OWN_VALUE)
#define ONE(NAME, name, value) +1
_Static_assert(0 SL_OP_TYPE_LIST(ONE) == SL_OP_COUNT, "sl_op_table: OpType values must be 0..COUNT-1");
