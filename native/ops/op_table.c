/* The op table, indexed by the schema's OpType. */
#include <assert.h>

#include "../runtime/internal.h"

extern const sl_op_def_t sl_op_conv2d, sl_op_fully_connected, sl_op_add, sl_op_mul, sl_op_activation,
    sl_op_max_pool2d, sl_op_avg_pool2d, sl_op_global_avg_pool, sl_op_concat, sl_op_pad, sl_op_reshape,
    sl_op_softmax, sl_op_layer_norm, sl_op_matmul, sl_op_transpose, sl_op_gather, sl_op_sub, sl_op_div,
    sl_op_cast, sl_op_mean_pool, sl_op_l2_normalize, sl_op_resize_bilinear, sl_op_depth_to_space, sl_op_prelu;

const sl_op_def_t* const sl_op_table[] = {
    &sl_op_conv2d,     &sl_op_fully_connected, &sl_op_add,    &sl_op_mul,
    &sl_op_activation, &sl_op_max_pool2d,      &sl_op_avg_pool2d, &sl_op_global_avg_pool,
    &sl_op_concat,     &sl_op_pad,             &sl_op_reshape, &sl_op_softmax,
    &sl_op_layer_norm, &sl_op_matmul,     &sl_op_transpose, &sl_op_gather,
    &sl_op_sub,        &sl_op_div,        &sl_op_cast,      &sl_op_mean_pool,
    &sl_op_l2_normalize, &sl_op_resize_bilinear, &sl_op_depth_to_space, &sl_op_prelu,
};
static_assert(sizeof(sl_op_table) / sizeof(sl_op_table[0]) == SL_OP_COUNT,
              "one op table entry per sl_op_type_t");
