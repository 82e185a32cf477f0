#include <malloc.h>
#include "veil_syscalls.h"

int veil_malloc_single_arena(void) { return mallopt(M_ARENA_MAX, 1); }

int veil_malloc_trim(void) { return malloc_trim(0); }
