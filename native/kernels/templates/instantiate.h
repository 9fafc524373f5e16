/* Defines every kernel the lists give one ISA: its isa/<isa>.c includes that ISA's vec header
 * and sets SL_LIST_<ISA> first. */
#include "matrix.h"
#include "rows.h"
#include "winograd.h"
#include "dwconv_nc.h"

#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) SL_DEFINE_##family(name, pixels, rows)
#include "../lists.inc"
#undef SL_UKERNEL
