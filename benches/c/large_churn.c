/* large_churn.c: hakmem-bench's `large-churn` through the C ABI, to run
 * under LD_PRELOAD (for allocators the Rust suite cannot link side by side,
 * e.g. the system's mimalloc 2.x). See docs/benchmarks.md.
 *
 *   cc -O2 -fno-builtin -o large_churn benches/c/large_churn.c
 *   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ./large_churn [iterations=2000] [fill=0]
 *
 * The shape of mimalloc-bench's malloc-large: 20 slots; each iteration picks
 * a random slot and a random size in 5..25 MiB, allocates the new block,
 * touches it (fill=0: one byte per 4 KiB page; fill=1: memset of every
 * byte, as make_unique<char[]> zero-fills in the original), then frees the
 * slot's old block and stores the new one. The random sequence is the Rust
 * workload's (xorshift64* seeded by one splitmix64 step, seed 42), so both
 * allocate the same sizes. Prints the seconds of the loop (leftovers freed
 * inside it) and a checksum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 20
#define MIN_SIZE (5UL << 20)
#define MAX_SIZE (25UL << 20)
#define PAGE 4096UL

static uint64_t state;

static void seed(uint64_t s) {
    uint64_t z = s + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    state = z ? z : 0x2545F4914F6CDD1DULL;
}

static uint64_t next(void) {
    uint64_t x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) { return (size_t)(((next() >> 32) * (uint64_t)n) >> 32); }

int main(int argc, char **argv) {
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    int fill = argc > 2 ? atoi(argv[2]) : 0;
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned long check = 0;
    struct timespec t0, t1;
    seed(42);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long it = 0; it < iterations; it++) {
        size_t i = below(SLOTS);
        size_t size = MIN_SIZE + below(MAX_SIZE - MIN_SIZE + 1);
        unsigned char *p = malloc(size);
        if (!p) {
            perror("malloc");
            return 1;
        }
        if (fill)
            memset(p, (int)it, size);
        else
            for (size_t off = 0; off < size; off += PAGE)
                ((volatile unsigned char *)p)[off] = (unsigned char)it;
        p[size - 1] = (unsigned char)it;
        if (slot[i]) {
            check += slot[i][0] + slot[i][len[i] - 1];
            free(slot[i]);
        }
        slot[i] = p;
        len[i] = size;
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slot[i]) {
            check += slot[i][0];
            free(slot[i]);
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("large_churn iterations=%ld fill=%d seconds=%.3f check=%lu\n", iterations, fill,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, check);
    return 0;
}
