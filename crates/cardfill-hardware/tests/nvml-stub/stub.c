/*
 * A stand-in libnvidia-ml.so for tests: the NVML functions cardfill calls, answering like
 * a machine of identical GPUs, so that the real loading and FFI path runs without a GPU.
 *
 * Build: gcc -shared -fPIC -o libnvidia-ml.so.1 stub.c   (-DSTUB_OLD_DRIVER leaves out
 * nvmlDeviceGetTotalEnergyConsumption and nvmlDeviceGetMemoryInfo_v2, as old drivers do).
 *
 * Environment:
 *   CARDFILL_STUB_NVML_COUNT        GPUs (default 8)
 *   CARDFILL_STUB_NVML_NAME         product name (default "NVIDIA H100 80GB HBM3")
 *   CARDFILL_STUB_NVML_INIT         "driver-not-loaded" or "unknown": nvmlInit fails so
 *   CARDFILL_STUB_NVML_NO_ENERGY    "1": the energy counter is not supported
 *   CARDFILL_STUB_NVML_STEP_MJ      millijoules the counter advances per read (default 1000000)
 *   CARDFILL_STUB_NVML_RESET_AFTER  N: after N reads of a GPU its counter restarts from 0
 *   CARDFILL_STUB_NVML_POWER_MW     power draw in milliwatts (default 350000)
 *   CARDFILL_STUB_NVML_BASE_MJ      added to every counter reading (another process, later)
 *
 * Device i (0-based): UUID GPU-00000000-1111-2222-3333-00000000000<i>, 85520809984 bytes,
 * 700 W limit, MIG disabled; its counter starts at (i + 1) * 10^9 mJ and gains STEP_MJ on
 * every read. Driver 550.54.15, CUDA 12.4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef int nvmlReturn_t;
typedef struct stub_device *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 64

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

#ifndef STUB_OLD_DRIVER
static unsigned long long reads[MAX_GPUS];
#endif

static long env_num(const char *name, long fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    return strtol(v, NULL, 10);
}

static unsigned int count(void) {
    long n = env_num("CARDFILL_STUB_NVML_COUNT", 8);
    if (n < 0) n = 0;
    if (n > MAX_GPUS) n = MAX_GPUS;
    return (unsigned int)n;
}

/* Handles are 1-based indices disguised as pointers. */
static int index_of(nvmlDevice_t d, unsigned int *i) {
    uintptr_t v = (uintptr_t)d;
    if (v == 0 || v > count()) return 0;
    *i = (unsigned int)(v - 1);
    return 1;
}

static nvmlReturn_t copy_str(const char *s, char *out, unsigned int len) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
    const char *v = getenv("CARDFILL_STUB_NVML_INIT");
    if (v && strcmp(v, "driver-not-loaded") == 0) return NVML_ERROR_DRIVER_NOT_LOADED;
    if (v && strcmp(v, "unknown") == 0) return NVML_ERROR_UNKNOWN;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return nvmlInit_v2(); }
nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int len) {
    return copy_str("550.54.15", version, len);
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
    if (!v) return NVML_ERROR_INVALID_ARGUMENT;
    *v = 12040;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return nvmlSystemGetCudaDriverVersion_v2(v); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!n) return NVML_ERROR_INVALID_ARGUMENT;
    *n = count();
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *n) { return nvmlDeviceGetCount_v2(n); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (!d || i >= count()) return NVML_ERROR_INVALID_ARGUMENT;
    *d = (nvmlDevice_t)(uintptr_t)(i + 1);
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *d) {
    return nvmlDeviceGetHandleByIndex_v2(i, d);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *out) {
    unsigned int i;
    if (!out || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    *out = i;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    unsigned int i;
    const char *n = getenv("CARDFILL_STUB_NVML_NAME");
    if (!index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_str(n && *n ? n : "NVIDIA H100 80GB HBM3", name, len);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len) {
    unsigned int i;
    char buf[64];
    if (!index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(buf, sizeof buf, "GPU-00000000-1111-2222-3333-%012u", i);
    return copy_str(buf, uuid, len);
}

#ifndef STUB_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    unsigned int i;
    if (!m || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    m->total = 85520809984ULL;
    m->reserved = 0;
    m->used = 0;
    m->free = m->total;
    return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    unsigned int i;
    if (!m || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    m->total = 85520809984ULL;
    m->used = 0;
    m->free = m->total;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *mw) {
    unsigned int i;
    if (!mw || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    *mw = 700000;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
    return nvmlDeviceGetPowerManagementLimit(d, mw);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    unsigned int i;
    if (!mw || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    *mw = (unsigned int)env_num("CARDFILL_STUB_NVML_POWER_MW", 350000);
    return NVML_SUCCESS;
}

#ifndef STUB_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
    unsigned int i;
    unsigned long long k, reset_after, step;
    const char *no = getenv("CARDFILL_STUB_NVML_NO_ENERGY");
    if (!mj || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    if (no && strcmp(no, "1") == 0) return NVML_ERROR_NOT_SUPPORTED;
    k = __atomic_add_fetch(&reads[i], 1, __ATOMIC_SEQ_CST);
    step = (unsigned long long)env_num("CARDFILL_STUB_NVML_STEP_MJ", 1000000);
    reset_after = (unsigned long long)env_num("CARDFILL_STUB_NVML_RESET_AFTER", 0);
    if (reset_after > 0 && k > reset_after)
        *mj = (k - reset_after) * step;
    else
        *mj = (unsigned long long)(i + 1) * 1000000000ULL + k * step
              + (unsigned long long)env_num("CARDFILL_STUB_NVML_BASE_MJ", 0);
    return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending) {
    unsigned int i;
    if (!current || !pending || !index_of(d, &i)) return NVML_ERROR_INVALID_ARGUMENT;
    *current = 0;
    *pending = 0;
    return NVML_SUCCESS;
}
