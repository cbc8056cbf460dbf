/*
 * raw-shm: the shared-memory floor of ipc-bench. Two processes share one mapping and
 * spin on atomic sequence words; the payload is copied into shared memory and out of
 * it again each way. No framing, no runtime, no system call on the hot path: what is
 * left is the cost of moving cache lines between CPUs.
 *
 * Layout of the mapping (private to the bench):
 *   0      down: u64, messages the parent has published (1, 2, ...)
 *   128    up:   u64, round trips: the last message echoed; streams: messages consumed
 *   256    stop: u64, set by the parent when it is done
 *   4096   slots x slot bytes: the parent's messages (round trips use slot 0)
 *   4096 + slots x slot: the child's echo
 *
 * A waiting side spins (with the CPU's pause hint) and, after SPIN_ALONE tries, also
 * yields the CPU, so the two sides pinned to one CPU still take turns (16 pause hints:
 * far longer than an answer takes from another CPU, far shorter than a time slice).
 */
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define SPIN_ALONE 16u
#define DATA_OFFSET 4096u

struct ctl {
    _Alignas(128) _Atomic uint64_t down;
    _Alignas(128) _Atomic uint64_t up;
    _Alignas(128) _Atomic uint64_t stop;
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait until *word >= target; 0 if told to stop first. */
static int wait_for(_Atomic uint64_t *word, uint64_t target, _Atomic uint64_t *stop) {
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(word, memory_order_acquire) >= target) return 1;
        if (stop && atomic_load_explicit(stop, memory_order_relaxed)) return 0;
        if (spins < SPIN_ALONE) relax(); else sched_yield();
    }
}

static uint8_t *down_slot(void *base, size_t slot, size_t i) {
    return (uint8_t *)base + DATA_OFFSET + slot * i;
}

static uint8_t *up_slot(void *base, size_t slot, size_t slots) {
    return (uint8_t *)base + DATA_OFFSET + slot * slots;
}

size_t ipc_bench_shm_len(size_t slot, size_t slots) {
    return DATA_OFFSET + slot * (slots + 1);
}

void *ipc_bench_shm_map(int fd, size_t len) {
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return base == MAP_FAILED ? NULL : base;
}

void ipc_bench_shm_unmap(void *base, size_t len) { munmap(base, len); }

/* Parent: round trip number `seq` (1, 2, ...) of `len` bytes; the echo lands in `out`. */
void ipc_bench_shm_round_trip(void *base, size_t slot, size_t slots, uint64_t seq,
                              const uint8_t *msg, size_t len, uint8_t *out) {
    struct ctl *c = base;
    memcpy(down_slot(base, slot, 0), msg, len);
    atomic_store_explicit(&c->down, seq, memory_order_release);
    wait_for(&c->up, seq, NULL);
    memcpy(out, up_slot(base, slot, slots), len);
}

/* Parent: messages from+1 ..= to, each `len` bytes, through `slots` slots; returns once
 * the child has consumed them all. */
void ipc_bench_shm_stream(void *base, size_t slot, size_t slots, uint64_t from, uint64_t to,
                          const uint8_t *msg, size_t len) {
    struct ctl *c = base;
    for (uint64_t k = from + 1; k <= to; k++) {
        if (k > slots) wait_for(&c->up, k - slots, NULL);
        memcpy(down_slot(base, slot, (size_t)((k - 1) % slots)), msg, len);
        atomic_store_explicit(&c->down, k, memory_order_release);
    }
    wait_for(&c->up, to, NULL);
}

void ipc_bench_shm_stop(void *base) {
    struct ctl *c = base;
    atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
}

/* Child: echo each message (echo != 0) or consume it into `scratch`, until stopped.
 * Returns the messages handled. */
uint64_t ipc_bench_shm_serve(void *base, size_t slot, size_t slots, size_t len, int echo,
                             uint8_t *scratch) {
    struct ctl *c = base;
    uint64_t done = 0;
    while (wait_for(&c->down, done + 1, &c->stop)) {
        uint64_t last = atomic_load_explicit(&c->down, memory_order_acquire);
        for (uint64_t k = done + 1; k <= last; k++) {
            if (echo) {
                memcpy(scratch, down_slot(base, slot, 0), len);
                memcpy(up_slot(base, slot, slots), scratch, len);
            } else {
                memcpy(scratch, down_slot(base, slot, (size_t)((k - 1) % slots)), len);
            }
            atomic_store_explicit(&c->up, k, memory_order_release);
        }
        done = last;
    }
    return done;
}
