/* glibc bench-malloc-simple's shape, one batch size at a time, for LD_PRELOAD
 * comparisons (docs/benchmarks.md, "glibc's shape at 16 bytes"). Not built
 * by the bench: gcc -O2 -o /tmp/gs benches/c/glibc_simple_batch.c, then
 * LD_PRELOAD=LIB /tmp/gs SIZE MODE ALLOCS [BATCH]; MODE 0 writes each block
 * byte by byte, 1 with memset. Prints ns per malloc+free pair. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void *arr[1600];
int main(int argc,char**argv){
  size_t size=atoi(argv[1]); int mode=atoi(argv[2]); long allocs=atol(argv[3]);
  int B[4]={25,100,400,1600}; int only=argc>4?atoi(argv[4]):0; unsigned long chk=0;
  double t0=now();
  for(int rep=0;rep<3;rep++)
  for(int b=0;b<4;b++){ int n=B[b]; if(only && n!=only) continue; long it=allocs/n;
    for(long j=0;j<it;j++){
      for(int i=0;i<n;i++){ unsigned char *p=malloc(size);
        if(mode==0){ for(size_t k=0;k<size;k++) ((volatile unsigned char*)p)[k]=(unsigned char)(i+k); }
        else memset(p,i,size);
        arr[i]=p; }
      int h=n/2;
      for(int i=0;i<h;i++){ unsigned char*p=arr[i]; chk+=p[0]; free(p);}
      for(int i=n-1;i>=h;i--){ unsigned char*p=arr[i]; chk+=p[0]; free(p);}
    }}
  double t=now()-t0; printf("%.1f ns/pair chk %lu\n", t*1e9/(3.0*4*allocs), chk);
}
