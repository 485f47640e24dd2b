/*
 * A stand-in libamd_smi.so for tests: the AMD SMI functions cardfill calls, answering like a
 * node of dual-GCD AMD Instinct GPUs, so that the real loading and FFI path runs without one.
 *
 * Build: gcc -shared -fPIC -o libamd_smi.so stub.c
 *
 * Environment:
 *   CARDFILL_STUB_AMDSMI_COUNT   GPU processors (GCDs), two per socket (default 8)
 *   CARDFILL_STUB_AMDSMI_NAME    market name (default "AMD Instinct MI250X")
 *   CARDFILL_STUB_AMDSMI_INIT    "fail": amdsmi_init returns an error
 *   CARDFILL_STUB_AMDSMI_STEP    accumulator counts added per read (default 100000000)
 *
 * Processor i (0-based): 68702699520 bytes of VRAM, a 560 W power cap (in uW), an energy
 * accumulator starting at (i + 1) * 10^9 counts of 15.3 uJ; GCDs of odd index (the second
 * die of a package) report no energy, as MI250X secondary dies do.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AMDSMI_STATUS_SUCCESS 0
#define AMDSMI_STATUS_INVAL 1
#define AMDSMI_STATUS_NOT_SUPPORTED 2
#define AMDSMI_STATUS_INIT_ERROR 34

#define MAX_GPUS 64

typedef void *amdsmi_socket_handle;
typedef void *amdsmi_processor_handle;

typedef struct {
    char market_name[256];
    uint32_t vendor_id;
    uint32_t subvendor_id;
    uint64_t device_id;
    uint32_t rev_id;
    char asic_serial[32];
    uint32_t oam_id;
    uint32_t num_of_compute_units;
    uint64_t target_graphics_version;
    uint32_t reserved[22];
} amdsmi_asic_info_t;

typedef struct {
    uint64_t power_cap;
    uint64_t default_power_cap;
    uint64_t dpm_cap;
    uint64_t min_power_cap;
    uint64_t max_power_cap;
} amdsmi_power_cap_info_t;

static int initialised = 0;
static uint64_t counters[MAX_GPUS];
static uintptr_t processors[MAX_GPUS];

static int count(void) {
    const char *v = getenv("CARDFILL_STUB_AMDSMI_COUNT");
    int n = v ? atoi(v) : 8;
    return n < 0 ? 0 : (n > MAX_GPUS ? MAX_GPUS : n);
}

static int index_of(amdsmi_processor_handle h) {
    uintptr_t p = (uintptr_t)h;
    if (!initialised || p < 1 || p > (uintptr_t)count()) return -1;
    return (int)(p - 1);
}

int amdsmi_init(uint64_t flags) {
    const char *v = getenv("CARDFILL_STUB_AMDSMI_INIT");
    if (v && strcmp(v, "fail") == 0) return AMDSMI_STATUS_INIT_ERROR;
    if (!(flags & (1 << 1))) return AMDSMI_STATUS_INVAL;
    for (int i = 0; i < MAX_GPUS; i++) {
        counters[i] = (uint64_t)(i + 1) * 1000000000ull;
        processors[i] = (uintptr_t)(i + 1);
    }
    initialised = 1;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_shut_down(void) {
    initialised = 0;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_socket_handles(uint32_t *n, amdsmi_socket_handle *out) {
    if (!initialised || !n) return AMDSMI_STATUS_INVAL;
    uint32_t sockets = (uint32_t)(count() + 1) / 2;
    if (!out) {
        *n = sockets;
        return AMDSMI_STATUS_SUCCESS;
    }
    if (*n < sockets) return AMDSMI_STATUS_INVAL;
    for (uint32_t s = 0; s < sockets; s++) out[s] = (amdsmi_socket_handle)(uintptr_t)(1000 + s);
    *n = sockets;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_processor_handles(amdsmi_socket_handle socket, uint32_t *n,
                                 amdsmi_processor_handle *out) {
    if (!initialised || !n) return AMDSMI_STATUS_INVAL;
    int s = (int)((uintptr_t)socket - 1000);
    int first = 2 * s, total = count();
    if (s < 0 || first >= total) return AMDSMI_STATUS_INVAL;
    uint32_t here = (uint32_t)(total - first >= 2 ? 2 : 1);
    if (!out) {
        *n = here;
        return AMDSMI_STATUS_SUCCESS;
    }
    if (*n < here) return AMDSMI_STATUS_INVAL;
    for (uint32_t i = 0; i < here; i++) out[i] = (amdsmi_processor_handle)processors[first + i];
    *n = here;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_gpu_asic_info(amdsmi_processor_handle h, amdsmi_asic_info_t *info) {
    if (index_of(h) < 0 || !info) return AMDSMI_STATUS_INVAL;
    memset(info, 0, sizeof *info);
    const char *name = getenv("CARDFILL_STUB_AMDSMI_NAME");
    strncpy(info->market_name, name ? name : "AMD Instinct MI250X", sizeof info->market_name - 1);
    info->vendor_id = 0x1002;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_gpu_memory_total(amdsmi_processor_handle h, uint32_t type, uint64_t *total) {
    if (index_of(h) < 0 || !total || type != 0) return AMDSMI_STATUS_INVAL;
    *total = 68702699520ull;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_power_cap_info(amdsmi_processor_handle h, uint32_t sensor,
                              amdsmi_power_cap_info_t *info) {
    if (index_of(h) < 0 || !info || sensor != 0) return AMDSMI_STATUS_INVAL;
    memset(info, 0, sizeof *info);
    info->power_cap = 560000000ull;
    info->default_power_cap = 560000000ull;
    info->max_power_cap = 560000000ull;
    return AMDSMI_STATUS_SUCCESS;
}

int amdsmi_get_energy_count(amdsmi_processor_handle h, uint64_t *energy, float *resolution,
                            uint64_t *timestamp) {
    int i = index_of(h);
    if (i < 0 || !energy || !resolution || !timestamp) return AMDSMI_STATUS_INVAL;
    if (i % 2 == 1) return AMDSMI_STATUS_NOT_SUPPORTED;
    const char *v = getenv("CARDFILL_STUB_AMDSMI_STEP");
    counters[i] += v ? strtoull(v, NULL, 10) : 100000000ull;
    *energy = counters[i];
    *resolution = 15.3f;
    *timestamp = 0;
    return AMDSMI_STATUS_SUCCESS;
}
