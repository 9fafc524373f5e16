/* Portable C: every kernel the lists give SL_ISA_SCALAR, from the templates on one-lane vectors. */
#include "../kernels.h"
#include "../vec/scalar.h"
#define SL_LIST_SCALAR 1
#include "../templates/instantiate.h"
