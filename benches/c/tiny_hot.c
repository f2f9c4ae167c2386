/* tiny_hot.c: the LD_PRELOAD harness of hakmem-bench's `instructions` mode.
 *
 *   tiny_hot [size=64] [batch=100] [rounds=60000]
 *
 * Allocates a batch of `batch` blocks of `size` bytes with malloc, writes
 * one byte of each, frees them in allocation order, `rounds` times: the
 * seeds' bench_tiny_hot shape. Built with -fno-builtin so that the compiler
 * cannot elide or merge the malloc/free pairs. Run it under
 * LD_PRELOAD=libhakmem.so (or another allocator) to measure that allocator
 * through the C ABI.
 */
#include <stdio.h>
#include <stdlib.h>

#define MAX_BATCH 4096

static void *slots[MAX_BATCH];

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t batch = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    long rounds = argc > 3 ? strtol(argv[3], NULL, 10) : 60000;
    unsigned long check = 0;
    if (size == 0 || batch == 0 || batch > MAX_BATCH) {
        fprintf(stderr, "usage: tiny_hot size(>0) batch(1..%d) rounds\n", MAX_BATCH);
        return 2;
    }
    for (long r = 0; r < rounds; r++) {
        for (size_t i = 0; i < batch; i++) {
            unsigned char *p = malloc(size);
            if (p == NULL)
                abort();
            *(volatile unsigned char *)p = (unsigned char)i;
            slots[i] = p;
        }
        for (size_t i = 0; i < batch; i++) {
            check += *(volatile unsigned char *)slots[i];
            free(slots[i]);
        }
    }
    printf("tiny_hot size=%zu batch=%zu rounds=%ld pairs=%ld check=%lu\n", size, batch,
           rounds, rounds * (long)batch, check);
    return 0;
}
