#!/usr/bin/env bash
# The misuse matrix of docs/security.md: every case of
# crates/preload/tests/c/test_misuse.c, one process each, under glibc,
# scudo, mimalloc's secure build, hakmem and hakmem's secure mode, in one
# run. A case is "abort" when the allocator stopped it with SIGABRT, the
# signal's name when it died of another signal, "reported, went on" when
# the program ran on past the misuse after a diagnostic on stderr (mimalloc
# reports some misuse and ignores the call; its errors are shown with
# MIMALLOC_SHOW_ERRORS=1), and "missed" when it ran on silently.
#
#   bash benches/misuse-matrix.sh [out-dir]   (default target/misuse-matrix)
#
# Needs target/release/libhakmem.so (cargo build --release). Installs
# Debian's libclang-rt-14-dev (scudo) when missing, as root. Builds
# mimalloc's secure variant (MI_SECURE=4) from the source the `mimalloc`
# crate bundles (in ~/.cargo/registry, present after the bench's build), with
# MI_MALLOC_OVERRIDE so that it replaces malloc under LD_PRELOAD.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/misuse-matrix}
mkdir -p "$out"
lib=$PWD/target/release/libhakmem.so
[ -f "$lib" ] || { echo "misuse-matrix: build target/release/libhakmem.so first" >&2; exit 1; }

scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | head -1 || true)
if [ -z "$scudo" ] && [ "$(id -u)" -eq 0 ]; then
    echo "misuse-matrix: installing libclang-rt-14-dev (scudo)" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq libclang-rt-14-dev >/dev/null
    scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | head -1 || true)
fi
misrc=$(ls -d "$HOME"/.cargo/registry/src/*/libmimalloc-sys-*/c_src/mimalloc/v3 2>/dev/null | head -1 || true)
mis=
if [ -n "$misrc" ]; then
    cc -O2 -shared -fPIC -DMI_SECURE=4 -DMI_MALLOC_OVERRIDE -DNDEBUG -I"$misrc/include" "$misrc/src/static.c" \
        -o "$out/libmimalloc-secure.so" -lpthread && mis=$PWD/$out/libmimalloc-secure.so
fi
cc -O2 -g -pthread -fno-builtin -Icrates/preload/tests/c -o "$out/test_misuse" \
    crates/preload/tests/c/test_misuse.c -ldl

names=(glibc scudo mimalloc-secure hakmem hakmem-secure)
run_case() { # allocator case
    local pre= env=(HAKMEM_NONE=1)
    case $1 in
        glibc) ;;
        scudo) [ -n "$scudo" ] || { echo "n/a"; return; }; pre=$scudo ;;
        mimalloc-secure) [ -n "$mis" ] || { echo "n/a"; return; }; pre=$mis; env=(MIMALLOC_SHOW_ERRORS=1) ;;
        hakmem) pre=$lib ;;
        hakmem-secure) pre=$lib; env=(HAKMEM_SECURE=1) ;;
    esac
    local rc=0
    env "${env[@]}" MISUSE_ANY_ALLOCATOR=1 LD_PRELOAD="$pre" timeout 20 \
        "$out/test_misuse" "$2" >"$out/stdout" 2>"$out/stderr" || rc=$?
    if [ $rc -eq 0 ] && grep -q survived "$out/stdout"; then
        # Went on past the misuse: with a diagnostic, or silently.
        if [ -s "$out/stderr" ]; then echo "reported, went on"; else echo "missed"; fi
    elif [ $rc -gt 128 ]; then
        local s; s=$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))
        [ "$s" = ABRT ] && echo "abort" || echo "SIG$s"
    else
        echo "exit $rc"
    fi
}

cases=(double_tiny double_mid double_span double_after_allocations double_a_b_a
    double_after_cache_flush double_other_thread_first double_other_thread_second
    double_two_other_threads first_call_small_int first_call_stack invalid_stack
    invalid_static invalid_small_int invalid_far invalid_interior_other_thread
    invalid_misaligned_other_thread invalid_span_interior
    invalid_interior_owner_at_flush secure_interior_by_owner
    secure_misaligned_by_owner realloc_freed realloc_stack usable_size_freed
    usable_size_interior secure_overflow_one_byte secure_overflow_large
    secure_underflow_one_byte secure_write_after_free
    secure_corrupted_free_list_link secure_corrupted_slab_list_link secure_malloc0_read
    secure_slab_overflow_far secure_medium_slab_overflow_far)

{
    echo "misuse matrix, $(date -u +%F), $(uname -r); scudo: ${scudo:-missing}; mimalloc secure: ${misrc:-missing}"
    echo
    printf '| case |'; for n in "${names[@]}"; do printf ' %s |' "$n"; done; echo
    printf '| --- |'; for n in "${names[@]}"; do printf ' --- |'; done; echo
    for c in "${cases[@]}"; do
        printf '| %s |' "$c"
        for n in "${names[@]}"; do printf ' %s |' "$(run_case "$n" "$c")"; done
        echo
    done
} | tee "$out/matrix.md"
