/* The registry's table, built from the lists, and selection. Tests and benchmarks walk the
 * same table, so nothing here is restated by hand. */
#include "kernels.h"

#include <string.h>
#if SL_ARCH_ARM64 && defined(__linux__)
#include <stdio.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1ul << 10) /* <asm/hwcap.h> */
#endif
#ifndef HWCAP_CPUID
#define HWCAP_CPUID (1ul << 11) /* EL0 reads of the ID registers, emulated by the kernel */
#endif
#endif

#if SL_ARCH_X86
#include <cpuid.h>
#endif

#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) \
  {#name, SL_FAMILY_##family, isa, pixels, rows, efficiency, {.family = name}},
const sl_ukernel_t sl_ukernels[] = {
#define SL_LIST_ALL 1
#include "lists.inc"
#undef SL_LIST_ALL
};
#undef SL_UKERNEL
const size_t sl_ukernel_count = sizeof(sl_ukernels) / sizeof(sl_ukernels[0]);

#define SL_FAMILY_NAME(family, rows_select, fn_type) #family,
const char* const sl_family_names[SL_FAMILY_COUNT] = {SL_FAMILIES(SL_FAMILY_NAME)};
#undef SL_FAMILY_NAME
#define SL_FAMILY_ROWS_SELECT(family, rows_select, fn_type) rows_select,
const bool sl_family_rows_select[SL_FAMILY_COUNT] = {SL_FAMILIES(SL_FAMILY_ROWS_SELECT)};
#undef SL_FAMILY_ROWS_SELECT

bool sl_cpu_part_in_order(uint32_t implementer, uint32_t part) {
  if (implementer == 0x41) return part == 0xd03 || part == 0xd05; /* Arm: Cortex-A53, Cortex-A55 */
  /* Qualcomm's Kryo 2xx Silver (an A53), Kryo 3xx and 4xx Silver (A55s) */
  if (implementer == 0x51) return part == 0x801 || part == 0x803 || part == 0x805;
  return false;
}

/* A hex number after "NAME<blanks>:" at the start of line (UINT32_MAX otherwise). */
static uint32_t cpuinfo_hex(const char* line, const char* name) {
  size_t n = strlen(name);
  if (strncmp(line, name, n) != 0) return UINT32_MAX;
  line += n;
  while (*line == ' ' || *line == '\t') line++;
  if (*line++ != ':') return UINT32_MAX;
  while (*line == ' ' || *line == '\t') line++;
  if (line[0] != '0' || (line[1] != 'x' && line[1] != 'X')) return UINT32_MAX;
  uint32_t v = 0;
  int digits = 0;
  for (line += 2; digits < 8; line++, digits++) {
    const char c = *line;
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) break;
    v = v << 4 | (uint32_t)d;
  }
  return digits > 0 ? v : UINT32_MAX;
}

void sl_cpuinfo_line(sl_cpuinfo_t* s, const char* line) {
  const uint32_t implementer = cpuinfo_hex(line, "CPU implementer"), part = cpuinfo_hex(line, "CPU part");
  if (implementer != UINT32_MAX) s->implementer = implementer;
  if (part == UINT32_MAX) return;
  const int core = sl_cpu_part_in_order(s->implementer, part);
  s->in_order = s->in_order < 0 ? core : s->in_order && core;
}

int sl_cpuinfo_in_order(const char* text) {
  sl_cpuinfo_t s = {UINT32_MAX, -1};
  for (const char* line = text; line != NULL && *line;) {
    sl_cpuinfo_line(&s, line);
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  return s.in_order;
}

#if SL_ARCH_ARM64 && defined(__linux__)
/* Every core /proc/cpuinfo lists (a phone's big cores keep the out-of-order kernels), else this
 * core's MIDR_EL1 where the kernel lets EL0 read it. */
static bool cpu_in_order(void) {
  sl_cpuinfo_t s = {UINT32_MAX, -1};
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (f != NULL) {
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) sl_cpuinfo_line(&s, line);
    fclose(f);
  }
  if (s.in_order >= 0) return s.in_order != 0;
  if (!(getauxval(AT_HWCAP) & HWCAP_CPUID)) return false;
  uint64_t midr;
  __asm__("mrs %0, midr_el1" : "=r"(midr));
  return sl_cpu_part_in_order((uint32_t)(midr >> 24) & 0xff, (uint32_t)(midr >> 4) & 0xfff);
}
#endif

uint32_t sl_cpu_isa(void) {
  uint32_t isa = SL_ISA_SCALAR;
#if SL_ARCH_X86
  isa |= SL_ISA_SSE2; /* the x86-64 baseline */
  /* cpuid itself rather than __builtin_cpu_supports, whose data lives in the compiler's runtime library
   * (libgcc, compiler-rt) and is not filled in every build (zig cc's wheels saw no AVX). */
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX) && (c & bit_FMA)) {
    unsigned xcr0_lo, xcr0_hi; /* XCR0: which register states the OS saves */
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    bool ymm = (xcr0_lo & 0x06u) == 0x06u, zmm = (xcr0_lo & 0xe6u) == 0xe6u; /* + opmask, zmm0-15, zmm16-31 */
    if (ymm && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2)) {
      isa |= SL_ISA_AVX2_FMA;
      if (zmm && (b & bit_AVX512F)) isa |= SL_ISA_AVX512;
    }
  }
#endif
#if SL_ARCH_ARM64
  isa |= SL_ISA_NEON; /* part of the AArch64 baseline */
#if defined(__linux__)
  /* FEAT_FP16's vector half arithmetic, as the kernel reports it (EL0 cannot read ID registers
   * everywhere); other systems stay on fp32. */
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDHP) isa |= SL_ISA_NEON_FP16;
  if (cpu_in_order()) isa |= SL_ISA_NEON_INORDER;
#endif
#endif
#if SL_ARCH_WASM_SIMD128
  isa |= SL_ISA_WASM_SIMD128; /* validated by the engine when the module loaded */
#endif
#if SL_ARCH_WASM_RELAXED_SIMD
  isa |= SL_ISA_WASM_RELAXED_SIMD; /* likewise: hosts load this build only where it validates */
#endif
  return isa;
}

size_t sl_cpu_l2_bytes(void) {
#if SL_ARCH_X86
  unsigned a, b, c, d; /* leaf 0x80000006: ECX[31:16] the L2 size in KB, on Intel and AMD alike */
  if (__get_cpuid(0x80000006, &a, &b, &c, &d)) return (size_t)(c >> 16) * 1024;
#endif
  return 0;
}

const sl_ukernel_t* sl_ukernel_select(uint32_t isa, sl_family_t family, uint32_t rows) {
  uint32_t level = UINT32_MAX; /* the ISA of the family's first runnable entry: the best one */
  for (size_t i = 0; i < sl_ukernel_count; i++) {
    const sl_ukernel_t* k = &sl_ukernels[i];
    if (k->family != family || (k->isa & ~isa) != 0) continue;
    if (level == UINT32_MAX) level = k->isa;
    if (k->isa == level && (rows == 0 || k->rows == rows)) return k;
  }
  return NULL;
}

int32_t sl_kernel_count(void) { return (int32_t)sl_ukernel_count; }

const char* sl_kernel_name(int32_t index) {
  return index >= 0 && (size_t)index < sl_ukernel_count ? sl_ukernels[index].name : NULL;
}

uint32_t sl_kernel_isa(int32_t index) {
  return index >= 0 && (size_t)index < sl_ukernel_count ? sl_ukernels[index].isa : 0;
}
