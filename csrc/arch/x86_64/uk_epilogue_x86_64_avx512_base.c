/* Epilogue kernels compiled for AVX-512 (see uk_epilogue_impl.inl). */
#if defined(__x86_64__)
#include "../../uk_runtime.h"
#define UK_EPI_SUFFIX avx512
#include "../../uk_epilogue_impl.inl"
#endif
