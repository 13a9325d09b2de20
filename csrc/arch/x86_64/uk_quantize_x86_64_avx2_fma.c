/* The per-row int8 quantizer compiled with AVX2 flags (8-wide division and conversions). */
#include <string.h>

#include "../../uk_runtime.h"

#if defined(__x86_64__) || defined(_M_X64)
#define UK_QUANTIZE_ROWS uk_quantize_rows_s8_range_avx2
#include "../../uk_quantize_impl.inl"
#endif
