// The C++ operators under LD_PRELOAD: every form of new/delete reaches
// hakmem (its blocks are hakmem's per malloc_usable_size/ownership), sizes
// and alignments hold, nothrow new returns null on failure and throwing new
// throws std::bad_alloc. With argv[1] = "sized_mismatch" the program calls
// a sized delete with the wrong size, which the secure mode must stop.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <vector>

static unsigned long passed, failed;
#define CHECK(c, ...)                                                          \
    do {                                                                       \
        if (c) {                                                               \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
        }                                                                      \
    } while (0)

struct alignas(256) Wide {
    unsigned char b[300];
};

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "sized_mismatch")) {
        char *p = static_cast<char *>(::operator new(100));
        ::operator delete(p, 101); // wrong size
        printf("survived\n");
        return 0;
    }
    for (size_t n : {1, 24, 100, 5000, 70000}) {
        char *p = new char[n];
        memset(p, 0x5a, n);
        CHECK(malloc_usable_size(p) >= n, "new[%zu]: usable %zu", n, malloc_usable_size(p));
        delete[] p;
        void *q = ::operator new(n);
        CHECK(malloc_usable_size(q) >= n, "new(%zu)", n);
        ::operator delete(q, n);
        void *r = ::operator new(n, std::nothrow);
        CHECK(r != nullptr, "nothrow new(%zu)", n);
        ::operator delete(r, std::nothrow);
    }
    for (size_t a : {32, 64, 256, 4096, 65536}) {
        void *p = ::operator new(1000, std::align_val_t(a));
        CHECK(reinterpret_cast<uintptr_t>(p) % a == 0, "aligned new %zu: %p", a, p);
        CHECK(malloc_usable_size(p) >= 1000, "aligned new %zu usable", a);
        ::operator delete(p, 1000, std::align_val_t(a));
        void *q = ::operator new[](77, std::align_val_t(a), std::nothrow);
        CHECK(q && reinterpret_cast<uintptr_t>(q) % a == 0, "aligned nothrow new[] %zu", a);
        ::operator delete[](q, std::align_val_t(a));
    }
    Wide *w = new Wide[5];
    CHECK(reinterpret_cast<uintptr_t>(w) % 256 == 0, "new Wide[5] alignment");
    delete[] w;
    std::vector<std::vector<int>> vv;
    for (int i = 0; i < 2000; i++)
        vv.emplace_back(i % 100, i);
    long sum = 0;
    for (auto &v : vv)
        for (int x : v)
            sum += x;
    CHECK(sum > 0, "vectors");
    vv.clear();
    // Failure: nothrow returns null, throwing new throws bad_alloc.
    size_t huge = size_t(1) << 62;
    void *n = ::operator new(huge, std::nothrow);
    CHECK(n == nullptr, "nothrow new(2^62) = %p", n);
    bool threw = false;
    try {
        void *t = ::operator new(huge);
        ::operator delete(t);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new(2^62) did not throw bad_alloc");
    printf("test_cxx: %lu passed, %lu failed\n", passed, failed);
    return failed ? 1 : 0;
}
