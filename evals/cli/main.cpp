#include <malloc.h>

#include "evals/cli/cli.h"

int main(int argc, char** argv) {
  // The engine frees and reallocates multi-megabyte activation buffers every layer. glibc would map
  // each from the kernel afresh and fault in zeroed pages every time (about 5% of a long prefill);
  // kept in the heap instead, they are reused.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return v4b::cli::run_cli(argc, argv);
}
