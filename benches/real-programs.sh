# The real programs (and the two C harnesses) that benches/rss-real.sh and
# benches/secure-real.sh run: sourced, not run. Needs `tmp` (a scratch
# directory) and the repository root as the working directory; defines one
# function p_NAME per program, the list `progs`, and exports them so that
# `bash -c p_NAME` finds them.
cc -O2 -o "$tmp/tiny_hot" benches/c/tiny_hot.c
cc -O2 -o "$tmp/large_churn" benches/c/large_churn.c
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >"$tmp/hello.c"
seq 1 300000 >"$tmp/seq"
p_python_sum() { python3 -c 'print(sum(len(str(i)) for i in range(10**6)))'; }
p_python_dict() { python3 -c 'd = {i: str(i) * 5 for i in range(300000)}; print(len(d))'; }
p_perl_hash() { perl -e 'my %h; $h{$_} = [1..5] for 1..200000; print scalar(keys %h), "\n"'; }
p_gcc_compile() { gcc -O2 -o "$tmp/hello" "$tmp/hello.c"; }
p_git_log() { git -C "$PWD" log --oneline -n 200; }
p_sort_big() { sort -r "$tmp/seq"; }
p_sqlite3() { sqlite3 :memory: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*), sum(length(printf('%x', x * x))) FROM c;"; }
p_tar_gzip() { tar -czf "$tmp/t.tgz" -C "$PWD" crates; }
p_c_tiny_hot() { "$tmp/tiny_hot"; }
p_c_large_churn() { "$tmp/large_churn"; }
progs=(python_sum python_dict perl_hash gcc_compile git_log sort_big sqlite3 tar_gzip c_tiny_hot c_large_churn)
export -f p_python_sum p_python_dict p_perl_hash p_gcc_compile p_git_log p_sort_big p_sqlite3 p_tar_gzip p_c_tiny_hot p_c_large_churn
export tmp
