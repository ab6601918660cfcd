#include <stdint.h>

/* glibc's sync_file_range(2) is declared only under _GNU_SOURCE, which Swift's Glibc module is not
   built with; the symbol is in every glibc since 2.6, its offsets always 64-bit (__off64_t). */
extern int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags);

/* Starts writing a file's dirty pages to disk and returns without waiting for them
   (SYNC_FILE_RANGE_WRITE over the whole file), so a later fsync has less left to wait for. */
static inline int ferry_start_writeback(int descriptor) {
    return sync_file_range(descriptor, 0, 0, 2);
}
