#ifndef VEIL_INJECT_H
#define VEIL_INJECT_H

#include <sys/types.h>

/* Makes the stopped (or running) process `pid` close its descriptor `fd`, by running one close(2)
   in it under ptrace: the instruction at its program counter is replaced by `syscall` for one
   single step, then its code and registers are put back. The process is left as it was found:
   in group-stop if it was stopped. Returns close's result (0), or -errno of the step that failed.
   x86-64 only (-ENOSYS elsewhere). */
int veil_inject_close(pid_t pid, int fd);

/* pidfd_getfd(2): a copy of `pid`'s descriptor `fd` in this process (close-on-exec), or -errno. */
int veil_take_fd(pid_t pid, int fd);

#endif
