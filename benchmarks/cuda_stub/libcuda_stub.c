/* A stand-in for the CUDA driver library (libcuda.so.1) that runs no GPU work.
 *
 * benchmarks/bench_cuda_host.py compiles it with gcc into a temporary directory as
 * libcuda.so.1 and puts that directory first on LD_LIBRARY_PATH of a subprocess, so that
 * everything above the driver stays real: nbsoftmax, numba-cuda, cuda.core and cuda.bindings
 * (which resolves every driver entry point through cuGetProcAddress). What the stub does:
 *
 * - one device (ordinal 0) that reports compute capability 9.0 and 132 SMs (an H100 SXM),
 *   one primary context, a thread-local current context;
 * - kernel launches return at once; modules and libraries load any image; a function
 *   reports 1024 threads per block and 32 registers;
 * - device memory is host memory (malloc), so copies and memsets are memcpy/memset and a
 *   test can read results back (they are whatever the copies left: no kernel ran);
 * - streams and events are small heap objects; synchronisation returns at once.
 *
 * An entry point that is not implemented here is reported as not found by cuGetProcAddress:
 * cuda.bindings then raises naming it when it is called, which is how the list below grew.
 * Set NBSOFTMAX_STUB_TRACE=1 to print every name looked up and every call's name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream, *CUevent, *CUlibrary, *CUkernel,
    *CUlinkState;

#define OK 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_SUPPORTED 801

static int tracing = -1;
static void trace(const char *name) {
    if (tracing < 0) {
        const char *v = getenv("NBSOFTMAX_STUB_TRACE");
        tracing = v && *v && *v != '0';
    }
    if (tracing) fprintf(stderr, "[cuda-stub] %s\n", name);
}
#define T trace(__func__)

/* Distinct non-null handles (a context, module, function, ... is never dereferenced by callers). */
static char primary_context[64];
static __thread CUcontext current_context = NULL;

static void *new_handle(void) { return calloc(1, 64); }

/* ------------------------------------------------------------------ init, versions, devices */

CUresult cuInit(unsigned int flags) { T; (void)flags; return OK; }
CUresult cuDriverGetVersion(int *v) { T; *v = 13000; return OK; }
CUresult cuDeviceGetCount(int *n) { T; *n = 1; return OK; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
    T;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return OK;
}
CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    T; (void)d; snprintf(name, (size_t)len, "nbsoftmax stub (no GPU)"); return OK;
}
CUresult cuDeviceGetUuid(unsigned char *uuid, CUdevice d) {
    T; (void)d; for (int i = 0; i < 16; i++) uuid[i] = (unsigned char)(i + 1); return OK;
}
CUresult cuDeviceGetUuid_v2(unsigned char *uuid, CUdevice d) { return cuDeviceGetUuid(uuid, d); }
CUresult cuDeviceGetLuid(char *luid, unsigned int *mask, CUdevice d) {
    T; (void)d; memset(luid, 0, 8); *mask = 0; return OK;
}
CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d) { T; (void)d; *bytes = (size_t)80 << 30; return OK; }
CUresult cuDeviceGetPCIBusId(char *id, int len, CUdevice d) {
    T; (void)d; snprintf(id, (size_t)len, "0000:00:00.0"); return OK;
}
CUresult cuDeviceGetByPCIBusId(CUdevice *d, const char *id) { T; (void)id; *d = 0; return OK; }
CUresult cuDeviceCanAccessPeer(int *can, CUdevice a, CUdevice b) { T; (void)a; (void)b; *can = 0; return OK; }

static int device_attribute(int attrib) {
    switch (attrib) {
    case 1: return 1024;        /* MAX_THREADS_PER_BLOCK */
    case 2: return 1024;        /* MAX_BLOCK_DIM_X */
    case 3: return 1024;        /* MAX_BLOCK_DIM_Y */
    case 4: return 64;          /* MAX_BLOCK_DIM_Z */
    case 5: return 2147483647;  /* MAX_GRID_DIM_X */
    case 6: return 65535;       /* MAX_GRID_DIM_Y */
    case 7: return 65535;       /* MAX_GRID_DIM_Z */
    case 8: return 49152;       /* MAX_SHARED_MEMORY_PER_BLOCK */
    case 9: return 65536;       /* TOTAL_CONSTANT_MEMORY */
    case 10: return 32;         /* WARP_SIZE */
    case 12: return 65536;      /* MAX_REGISTERS_PER_BLOCK */
    case 13: return 1980000;    /* CLOCK_RATE (kHz) */
    case 14: return 1;          /* TEXTURE_ALIGNMENT (any) */
    case 16: return 132;        /* MULTIPROCESSOR_COUNT */
    case 39: return 2048;       /* MAX_THREADS_PER_MULTIPROCESSOR */
    case 41: return 1;          /* UNIFIED_ADDRESSING */
    case 75: return 9;          /* COMPUTE_CAPABILITY_MAJOR */
    case 76: return 0;          /* COMPUTE_CAPABILITY_MINOR */
    case 81: return 233472;     /* MAX_SHARED_MEMORY_PER_MULTIPROCESSOR */
    case 82: return 65536;      /* MAX_REGISTERS_PER_MULTIPROCESSOR */
    case 83: return 1;          /* MANAGED_MEMORY */
    case 97: return 232448;     /* MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
    case 106: return 32;        /* MAX_BLOCKS_PER_MULTIPROCESSOR */
    case 115: return 1;         /* MEMORY_POOLS_SUPPORTED */
    default: return 0;
    }
}
CUresult cuDeviceGetAttribute(int *pi, int attrib, CUdevice d) {
    T; (void)d; *pi = device_attribute(attrib); return OK;
}

/* ------------------------------------------------------------------ contexts */

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d) { T; (void)d; *ctx = primary_context; return OK; }
CUresult cuDevicePrimaryCtxRelease(CUdevice d) { T; (void)d; return OK; }
CUresult cuDevicePrimaryCtxReset(CUdevice d) { T; (void)d; return OK; }
CUresult cuDevicePrimaryCtxSetFlags(CUdevice d, unsigned int f) { T; (void)d; (void)f; return OK; }
CUresult cuDevicePrimaryCtxGetState(CUdevice d, unsigned int *flags, int *active) {
    T; (void)d; *flags = 0; *active = 1; return OK;
}
CUresult cuCtxGetCurrent(CUcontext *ctx) { T; *ctx = current_context; return OK; }
CUresult cuCtxSetCurrent(CUcontext ctx) { T; current_context = ctx; return OK; }
CUresult cuCtxPushCurrent(CUcontext ctx) { T; current_context = ctx; return OK; }
CUresult cuCtxPopCurrent(CUcontext *ctx) {
    T; if (ctx) *ctx = current_context; current_context = NULL; return OK;
}
CUresult cuCtxGetDevice(CUdevice *d) { T; *d = 0; return OK; }
CUresult cuCtxGetDevice_v2(CUdevice *d, CUcontext ctx) { T; (void)ctx; *d = 0; return OK; }
CUresult cuCtxSynchronize(void) { T; return OK; }
CUresult cuCtxSynchronize_v2(CUcontext ctx) { T; (void)ctx; return OK; }
CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *v) { T; (void)ctx; *v = 13000; return OK; }
CUresult cuCtxGetId(CUcontext ctx, unsigned long long *id) { T; (void)ctx; *id = 1; return OK; }
CUresult cuCtxGetFlags(unsigned int *f) { T; *f = 0; return OK; }
CUresult cuCtxGetLimit(size_t *v, int limit) { T; (void)limit; *v = 0; return OK; }
CUresult cuCtxSetLimit(int limit, size_t v) { T; (void)limit; (void)v; return OK; }
CUresult cuCtxGetStreamPriorityRange(int *least, int *greatest) { T; *least = 0; *greatest = -5; return OK; }
CUresult cuCtxCreate(CUcontext *ctx, void *params, unsigned int f, CUdevice d) {
    T; (void)params; (void)f; (void)d; *ctx = new_handle(); return OK;
}
CUresult cuCtxDestroy(CUcontext ctx) { T; (void)ctx; return OK; }
CUresult cuCtxEnablePeerAccess(CUcontext ctx, unsigned int f) { T; (void)ctx; (void)f; return OK; }

/* ------------------------------------------------------------------ memory: host memory */

#define ALIGN 256
static CUresult alloc(CUdeviceptr *p, size_t bytes) {
    void *mem = NULL;
    if (posix_memalign(&mem, ALIGN, bytes ? bytes : 1)) return CUDA_ERROR_OUT_OF_MEMORY;
    *p = (CUdeviceptr)(uintptr_t)mem;
    return OK;
}
CUresult cuMemAlloc(CUdeviceptr *p, size_t bytes) { T; return alloc(p, bytes); }
CUresult cuMemAllocAsync(CUdeviceptr *p, size_t bytes, CUstream s) { T; (void)s; return alloc(p, bytes); }
CUresult cuMemAllocManaged(CUdeviceptr *p, size_t bytes, unsigned int f) { T; (void)f; return alloc(p, bytes); }
CUresult cuMemAllocPitch(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned int e) {
    T; (void)e; *pitch = (w + ALIGN - 1) / ALIGN * ALIGN; return alloc(p, *pitch * h);
}
CUresult cuMemFree(CUdeviceptr p) { T; free((void *)(uintptr_t)p); return OK; }
CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) { T; (void)s; free((void *)(uintptr_t)p); return OK; }
CUresult cuMemAllocHost(void **p, size_t bytes) { T; *p = malloc(bytes ? bytes : 1); return OK; }
CUresult cuMemHostAlloc(void **p, size_t bytes, unsigned int f) { T; (void)f; *p = malloc(bytes ? bytes : 1); return OK; }
CUresult cuMemFreeHost(void *p) { T; free(p); return OK; }
CUresult cuMemHostRegister(void *p, size_t bytes, unsigned int f) { T; (void)p; (void)bytes; (void)f; return OK; }
CUresult cuMemHostUnregister(void *p) { T; (void)p; return OK; }
CUresult cuMemHostGetDevicePointer(CUdeviceptr *d, void *p, unsigned int f) {
    T; (void)f; *d = (CUdeviceptr)(uintptr_t)p; return OK;
}
CUresult cuMemGetInfo(size_t *free_bytes, size_t *total) {
    T; *free_bytes = (size_t)79 << 30; *total = (size_t)80 << 30; return OK;
}
CUresult cuMemGetAddressRange(CUdeviceptr *base, size_t *size, CUdeviceptr p) {
    T; if (base) *base = p; if (size) *size = 0; return OK;
}
CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    T; memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n); return OK;
}
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { (void)s; return cuMemcpy(dst, src, n); }
CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n) {
    T; memmove((void *)(uintptr_t)dst, src, n); return OK;
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) { (void)s; return cuMemcpyHtoD(dst, src, n); }
CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n) {
    T; memmove(dst, (void *)(uintptr_t)src, n); return OK;
}
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) { (void)s; return cuMemcpyDtoH(dst, src, n); }
CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpy(dst, src, n); }
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { (void)s; return cuMemcpy(dst, src, n); }
CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n) {
    (void)dc; (void)sc; return cuMemcpy(dst, src, n);
}
CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dc, CUdeviceptr src, CUcontext sc, size_t n, CUstream s) {
    (void)dc; (void)sc; (void)s; return cuMemcpy(dst, src, n);
}
CUresult cuMemsetD8(CUdeviceptr dst, unsigned char v, size_t n) {
    T; memset((void *)(uintptr_t)dst, v, n); return OK;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) { (void)s; return cuMemsetD8(dst, v, n); }
CUresult cuMemsetD32(CUdeviceptr dst, unsigned int v, size_t n) {
    T; unsigned int *p = (unsigned int *)(uintptr_t)dst; for (size_t i = 0; i < n; i++) p[i] = v; return OK;
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) { (void)s; return cuMemsetD32(dst, v, n); }

/* cuPointerGetAttribute: every pointer is device memory of device 0 in the primary context. */
static CUresult pointer_attribute(void *data, int attrib, CUdeviceptr p) {
    switch (attrib) {
    case 1: *(CUcontext *)data = primary_context; return OK;     /* CONTEXT */
    case 2: *(unsigned int *)data = 2; return OK;                /* MEMORY_TYPE: DEVICE */
    case 3: *(CUdeviceptr *)data = p; return OK;                 /* DEVICE_POINTER */
    case 4: *(void **)data = (void *)(uintptr_t)p; return OK;    /* HOST_POINTER */
    case 6: *(unsigned int *)data = 0; return OK;                /* SYNC_MEMOPS */
    case 7: *(unsigned long long *)data = (unsigned long long)p; return OK; /* BUFFER_ID */
    case 8: *(unsigned int *)data = 0; return OK;                /* IS_MANAGED */
    case 9: *(int *)data = 0; return OK;                         /* DEVICE_ORDINAL */
    case 12: *(CUdeviceptr *)data = p; return OK;                /* RANGE_START_ADDR */
    case 13: *(size_t *)data = 0; return OK;                     /* RANGE_SIZE */
    case 14: *(unsigned int *)data = 1; return OK;               /* MAPPED */
    case 20: *(void **)data = NULL; return OK;                   /* MEMPOOL_HANDLE */
    default: memset(data, 0, sizeof(void *)); return OK;
    }
}
CUresult cuPointerGetAttribute(void *data, int attrib, CUdeviceptr p) { T; return pointer_attribute(data, attrib, p); }
CUresult cuPointerGetAttributes(unsigned int n, int *attribs, void **data, CUdeviceptr p) {
    T;
    for (unsigned int i = 0; i < n; i++) pointer_attribute(data[i], attribs[i], p);
    return OK;
}
CUresult cuPointerSetAttribute(const void *v, int attrib, CUdeviceptr p) { T; (void)v; (void)attrib; (void)p; return OK; }

/* ------------------------------------------------------------------ streams and events */

CUresult cuStreamCreate(CUstream *s, unsigned int f) { T; (void)f; *s = new_handle(); return OK; }
CUresult cuStreamCreateWithPriority(CUstream *s, unsigned int f, int prio) { T; (void)f; (void)prio; *s = new_handle(); return OK; }
CUresult cuStreamDestroy(CUstream s) { T; if ((uintptr_t)s > 2) free(s); return OK; }
CUresult cuStreamSynchronize(CUstream s) { T; (void)s; return OK; }
CUresult cuStreamQuery(CUstream s) { T; (void)s; return OK; }
CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int f) { T; (void)s; (void)e; (void)f; return OK; }
CUresult cuStreamGetFlags(CUstream s, unsigned int *f) { T; (void)s; *f = 0; return OK; }
CUresult cuStreamGetPriority(CUstream s, int *p) { T; (void)s; *p = 0; return OK; }
CUresult cuStreamGetCtx(CUstream s, CUcontext *ctx) { T; (void)s; *ctx = primary_context; return OK; }
CUresult cuStreamGetCtx_v2(CUstream s, CUcontext *ctx, void **green) {
    T; (void)s; *ctx = primary_context; if (green) *green = NULL; return OK;
}
CUresult cuStreamGetDevice(CUstream s, CUdevice *d) { T; (void)s; *d = 0; return OK; }
CUresult cuStreamGetId(CUstream s, unsigned long long *id) { T; *id = (unsigned long long)(uintptr_t)s; return OK; }
typedef void (*host_fn)(void *);
CUresult cuLaunchHostFunc(CUstream s, host_fn fn, void *data) { T; (void)s; fn(data); return OK; }
typedef void (*stream_callback)(CUstream, CUresult, void *);
CUresult cuStreamAddCallback(CUstream s, stream_callback fn, void *data, unsigned int f) {
    T; (void)f; fn(s, OK, data); return OK;
}
CUresult cuEventCreate(CUevent *e, unsigned int f) { T; (void)f; *e = new_handle(); return OK; }
CUresult cuEventDestroy(CUevent e) { T; free(e); return OK; }
CUresult cuEventRecord(CUevent e, CUstream s) { T; (void)e; (void)s; return OK; }
CUresult cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int f) { T; (void)e; (void)s; (void)f; return OK; }
CUresult cuEventSynchronize(CUevent e) { T; (void)e; return OK; }
CUresult cuEventQuery(CUevent e) { T; (void)e; return OK; }
CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) { T; (void)a; (void)b; *ms = 0.0f; return OK; }
CUresult cuEventElapsedTime_v2(float *ms, CUevent a, CUevent b) { return cuEventElapsedTime(ms, a, b); }

/* ------------------------------------------------------------------ modules, libraries, kernels */

CUresult cuModuleLoadData(CUmodule *m, const void *image) { T; (void)image; *m = new_handle(); return OK; }
CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n, void *o, void **v) {
    T; (void)image; (void)n; (void)o; (void)v; *m = new_handle(); return OK;
}
CUresult cuModuleLoadFatBinary(CUmodule *m, const void *image) { T; (void)image; *m = new_handle(); return OK; }
CUresult cuModuleUnload(CUmodule m) { T; free(m); return OK; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) { T; (void)m; (void)name; *f = new_handle(); return OK; }
CUresult cuModuleGetGlobal(CUdeviceptr *p, size_t *bytes, CUmodule m, const char *name) {
    T; (void)m; (void)name; size_t b = 64; if (bytes) *bytes = b; return p ? alloc(p, b) : OK;
}
CUresult cuModuleGetLoadingMode(int *mode) { T; *mode = 1; return OK; }
CUresult cuLibraryLoadData(CUlibrary *l, const void *code, void *jo, void **jv, unsigned int jn,
                           void *lo, void **lv, unsigned int ln) {
    T; (void)code; (void)jo; (void)jv; (void)jn; (void)lo; (void)lv; (void)ln;
    *l = new_handle(); return OK;
}
CUresult cuLibraryUnload(CUlibrary l) { T; free(l); return OK; }
CUresult cuLibraryGetKernel(CUkernel *k, CUlibrary l, const char *name) { T; (void)l; (void)name; *k = new_handle(); return OK; }
CUresult cuLibraryGetModule(CUmodule *m, CUlibrary l) { T; (void)l; *m = new_handle(); return OK; }
CUresult cuLibraryGetGlobal(CUdeviceptr *p, size_t *bytes, CUlibrary l, const char *name) {
    T; (void)l; (void)name; size_t b = 64; if (bytes) *bytes = b; return p ? alloc(p, b) : OK;
}
CUresult cuKernelGetFunction(CUfunction *f, CUkernel k) { T; *f = k; return OK; }
CUresult cuKernelGetLibrary(CUlibrary *l, CUkernel k) { T; (void)k; *l = new_handle(); return OK; }
CUresult cuKernelGetName(const char **name, CUkernel k) { T; (void)k; *name = "stub_kernel"; return OK; }
CUresult cuFuncGetName(const char **name, CUfunction f) { T; (void)f; *name = "stub_kernel"; return OK; }

static int function_attribute(int attrib) {
    switch (attrib) {
    case 0: return 1024;  /* MAX_THREADS_PER_BLOCK */
    case 4: return 32;    /* NUM_REGS */
    case 5: return 90;    /* PTX_VERSION */
    case 6: return 90;    /* BINARY_VERSION */
    case 8: return 49152; /* MAX_DYNAMIC_SHARED_SIZE_BYTES */
    default: return 0;
    }
}
CUresult cuFuncGetAttribute(int *pi, int attrib, CUfunction f) { T; (void)f; *pi = function_attribute(attrib); return OK; }
CUresult cuKernelGetAttribute(int *pi, int attrib, CUkernel k, CUdevice d) {
    T; (void)k; (void)d; *pi = function_attribute(attrib); return OK;
}
CUresult cuFuncSetAttribute(CUfunction f, int attrib, int v) { T; (void)f; (void)attrib; (void)v; return OK; }
CUresult cuKernelSetAttribute(int attrib, int v, CUkernel k, CUdevice d) { T; (void)attrib; (void)v; (void)k; (void)d; return OK; }
CUresult cuFuncSetCacheConfig(CUfunction f, int c) { T; (void)f; (void)c; return OK; }
CUresult cuKernelSetCacheConfig(CUkernel k, int c, CUdevice d) { T; (void)k; (void)c; (void)d; return OK; }
CUresult cuFuncGetModule(CUmodule *m, CUfunction f) { T; (void)f; *m = new_handle(); return OK; }

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, CUfunction f, int block, size_t smem) {
    T; (void)f; (void)smem; *n = block > 0 ? 2048 / block : 1; if (*n > 32) *n = 32; return OK;
}
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, CUfunction f, int block, size_t smem, unsigned int fl) {
    (void)fl; return cuOccupancyMaxActiveBlocksPerMultiprocessor(n, f, block, smem);
}
typedef size_t (*smem_fn)(int);
CUresult cuOccupancyMaxPotentialBlockSize(int *grid, int *block, CUfunction f, smem_fn fn, size_t smem, int limit) {
    T; (void)f; (void)fn; (void)smem; *block = limit > 0 && limit < 1024 ? limit : 1024; *grid = 132 * 2; return OK;
}

/* Launches: nothing runs. The time spent above this call is what the benchmark measures. */
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem,
                        CUstream s, void **params, void **extra) {
    T; (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)smem;
    (void)s; (void)params; (void)extra; return OK;
}
CUresult cuLaunchKernelEx(const void *config, CUfunction f, void **params, void **extra) {
    T; (void)config; (void)f; (void)params; (void)extra; return OK;
}
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                   unsigned int bx, unsigned int by, unsigned int bz,
                                   unsigned int smem, CUstream s, void **params) {
    T; (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)smem; (void)s;
    (void)params; return OK;
}

/* The driver's JIT linker: the "linked" image is a copy of the last input (never executed). */
typedef struct { void *image; size_t size; } link_state;
CUresult cuLinkCreate(unsigned int n, void *o, void **v, CUlinkState *st) {
    T; (void)n; (void)o; (void)v; *st = calloc(1, sizeof(link_state)); return OK;
}
CUresult cuLinkAddData(CUlinkState st, int type, void *data, size_t size, const char *name,
                       unsigned int n, void *o, void **v) {
    T; (void)type; (void)name; (void)n; (void)o; (void)v;
    link_state *l = st; free(l->image); l->image = malloc(size ? size : 1);
    memcpy(l->image, data, size); l->size = size; return OK;
}
CUresult cuLinkAddFile(CUlinkState st, int type, const char *path, unsigned int n, void *o, void **v) {
    T; (void)st; (void)type; (void)path; (void)n; (void)o; (void)v; return OK;
}
CUresult cuLinkComplete(CUlinkState st, void **cubin, size_t *size) {
    T; link_state *l = st; *cubin = l->image; *size = l->size; return OK;
}
CUresult cuLinkDestroy(CUlinkState st) { T; link_state *l = st; free(l->image); free(l); return OK; }

/* ------------------------------------------------------------------ errors */

CUresult cuGetErrorName(CUresult e, const char **s) { T; (void)e; *s = "CUDA_ERROR_STUB"; return OK; }
CUresult cuGetErrorString(CUresult e, const char **s) { T; (void)e; *s = "error from the nbsoftmax CUDA stub"; return OK; }

/* ------------------------------------------------------------------ cuGetProcAddress */

typedef struct { const char *name; void *fn; } entry;
#define E(f) {#f, (void *)f}
static const entry entries[] = {
    E(cuInit), E(cuDriverGetVersion), E(cuDeviceGetCount), E(cuDeviceGet), E(cuDeviceGetName),
    E(cuDeviceGetUuid), E(cuDeviceGetUuid_v2), E(cuDeviceGetLuid), E(cuDeviceTotalMem),
    E(cuDeviceGetPCIBusId), E(cuDeviceGetByPCIBusId), E(cuDeviceCanAccessPeer), E(cuDeviceGetAttribute),
    E(cuDevicePrimaryCtxRetain), E(cuDevicePrimaryCtxRelease), E(cuDevicePrimaryCtxReset),
    E(cuDevicePrimaryCtxSetFlags), E(cuDevicePrimaryCtxGetState), E(cuCtxGetCurrent),
    E(cuCtxSetCurrent), E(cuCtxPushCurrent), E(cuCtxPopCurrent), E(cuCtxGetDevice),
    E(cuCtxGetDevice_v2), E(cuCtxSynchronize), E(cuCtxSynchronize_v2), E(cuCtxGetApiVersion),
    E(cuCtxGetId), E(cuCtxGetFlags), E(cuCtxGetLimit), E(cuCtxSetLimit),
    E(cuCtxGetStreamPriorityRange), E(cuCtxCreate), E(cuCtxDestroy), E(cuCtxEnablePeerAccess),
    E(cuMemAlloc), E(cuMemAllocAsync), E(cuMemAllocManaged), E(cuMemAllocPitch), E(cuMemFree),
    E(cuMemFreeAsync), E(cuMemAllocHost), E(cuMemHostAlloc), E(cuMemFreeHost), E(cuMemHostRegister),
    E(cuMemHostUnregister), E(cuMemHostGetDevicePointer), E(cuMemGetInfo), E(cuMemGetAddressRange),
    E(cuMemcpy), E(cuMemcpyAsync), E(cuMemcpyHtoD), E(cuMemcpyHtoDAsync), E(cuMemcpyDtoH),
    E(cuMemcpyDtoHAsync), E(cuMemcpyDtoD), E(cuMemcpyDtoDAsync), E(cuMemcpyPeer),
    E(cuMemcpyPeerAsync), E(cuMemsetD8), E(cuMemsetD8Async), E(cuMemsetD32), E(cuMemsetD32Async),
    E(cuPointerGetAttribute), E(cuPointerGetAttributes), E(cuPointerSetAttribute),
    E(cuStreamCreate), E(cuStreamCreateWithPriority), E(cuStreamDestroy), E(cuStreamSynchronize),
    E(cuStreamQuery), E(cuStreamWaitEvent), E(cuStreamGetFlags), E(cuStreamGetPriority),
    E(cuStreamGetCtx), E(cuStreamGetCtx_v2), E(cuStreamGetDevice), E(cuStreamGetId),
    E(cuLaunchHostFunc), E(cuStreamAddCallback), E(cuEventCreate), E(cuEventDestroy),
    E(cuEventRecord), E(cuEventRecordWithFlags), E(cuEventSynchronize), E(cuEventQuery),
    E(cuEventElapsedTime), E(cuEventElapsedTime_v2), E(cuModuleLoadData), E(cuModuleLoadDataEx),
    E(cuModuleLoadFatBinary), E(cuModuleUnload), E(cuModuleGetFunction), E(cuModuleGetGlobal),
    E(cuModuleGetLoadingMode), E(cuLibraryLoadData), E(cuLibraryUnload), E(cuLibraryGetKernel),
    E(cuLibraryGetModule), E(cuLibraryGetGlobal), E(cuKernelGetFunction), E(cuKernelGetLibrary),
    E(cuKernelGetName), E(cuFuncGetName), E(cuFuncGetAttribute), E(cuKernelGetAttribute),
    E(cuFuncSetAttribute), E(cuKernelSetAttribute), E(cuFuncSetCacheConfig),
    E(cuKernelSetCacheConfig), E(cuFuncGetModule), E(cuOccupancyMaxActiveBlocksPerMultiprocessor),
    E(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags), E(cuOccupancyMaxPotentialBlockSize),
    E(cuLaunchKernel), E(cuLaunchKernelEx), E(cuLaunchCooperativeKernel), E(cuLinkCreate),
    E(cuLinkAddData), E(cuLinkAddFile), E(cuLinkComplete), E(cuLinkDestroy), E(cuGetErrorName),
    E(cuGetErrorString),
};

/* Versioned names ("cuMemAlloc" asked at version 12000 means cuMemAlloc_v2) all map to the one
 * implementation above; the per-thread-stream flag changes nothing here. */
static void *lookup(const char *symbol) {
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (strcmp(entries[i].name, symbol) == 0) return entries[i].fn;
    return NULL;
}
CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags,
                             int *status) {
    (void)version; (void)flags;
    if (tracing < 0) trace("cuGetProcAddress_v2");
    void *fn = lookup(symbol);
    if (tracing) fprintf(stderr, "[cuda-stub] lookup %s%s\n", symbol, fn ? "" : " (not implemented)");
    *pfn = fn;
    if (status) *status = fn ? 0 : 2; /* CU_GET_PROC_ADDRESS_SUCCESS / SYMBOL_NOT_FOUND */
    return fn ? OK : CUDA_ERROR_NOT_FOUND;
}
CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, unsigned long long flags) {
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
