/* Epilogue kernels compiled for AVX2+FMA (see uk_epilogue_impl.inl). */
#if defined(__x86_64__)
#include "../../uk_runtime.h"
#define UK_EPI_SUFFIX avx2
#include "../../uk_epilogue_impl.inl"
#endif
