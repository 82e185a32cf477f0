#ifndef VEIL_SYSCALLS_H
#define VEIL_SYSCALLS_H

#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>

/* Small typed wrappers for the Linux calls Swift cannot make directly (variadic, missing from
   glibc 2.36, or struct-shaped): used by the runtime, the shim and the warden, never between
   clone and execve (that code is veil_spawn.c). Each returns the result or -errno. */
/* An O_PATH fd of `path` through a detached, read-only bind mount (open_tree + mount_setattr):
   exec'ing it gives a process whose /proc/PID/exe can never be opened for writing. */
int veil_readonly_exe_fd(const char *path);
/* openat2(2); glibc 2.36 has no wrapper. */
int veil_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int veil_pivot_root(const char *new_root, const char *put_old);
int veil_close_range(unsigned int first, unsigned int last, unsigned int flags);
int veil_pidfd_open(pid_t pid, unsigned int flags);
int veil_pidfd_send_signal(int pidfd, int sig);
int veil_memfd_create(const char *name, unsigned int flags);
int veil_capset(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]);
int veil_capget(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]);
int veil_execveat_fd(int fd, char *const argv[], char *const envp[]);
/* Marks veil's init puts in the argument registers execve(2) does not read (the 4th to 6th):
   the sandbox policy lets that one exec through without notifying the warden, which keeps no
   handle on the init's memory (SandboxPolicy.observations), so the program's start never waits
   for the warden. */
#define VEIL_EXEC_MARK_0 0x7665696c2d696e69ULL
#define VEIL_EXEC_MARK_1 0x742d657865637665ULL
#define VEIL_EXEC_MARK_2 0x2d756e7365656e21ULL
/* execve with the three marks; returns only on failure, with -errno. */
int veil_execve_marked(const char *path, char *const argv[], char *const envp[]);
/* Sends one fd with SCM_RIGHTS and `data` as the message body. */
int veil_send_fd(int sock, int fd, const char *data, size_t len);
/* Receives one fd; returns it or -errno. */
int veil_recv_fd(int sock, char *buf, size_t buflen);
int veil_ioctl_int(int fd, unsigned long request, int *value);
int veil_ioctl_ptr(int fd, unsigned long request, void *value);
/* NS_GET_USERNS: a new fd of the user namespace owning the namespace `fd` refers to, or -errno. */
int veil_namespace_owner(int fd);
int veil_sigmask_block_all(void);
/* The init before execve: the terminating signals a runtime's kill sends (HUP INT QUIT TERM USR1
   USR2 ALRM) end it with status 128+signal. A PID-namespace init ignores signals it has no
   handler for, so without this `kill ID TERM` could not stop a created container (runc's Go
   init dies of them). execve resets the handlers to the defaults. */
int veil_exit_on_termination_signals(void);
int veil_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
/* glibc's malloc tuning (malloc.h is not in Swift's Glibc module), in veil_malloc.c:
   mallopt(M_ARENA_MAX, 1), so every thread allocates from the main arena; and malloc_trim(0),
   which returns free heap memory to the kernel. */
int veil_malloc_single_arena(void);
int veil_malloc_trim(void);
/* Drops the resident pages of the process's clean file mappings (read-only, file-backed, no
   private copy: smaps' "Anonymous: 0 kB"); returns how many mappings, -1 if smaps is unreadable.
   In C: parsing smaps with Swift strings cost the warden about 1 ms of CPU at every start. */
int veil_trim_clean_file_mappings(void);

int veil_setresuid(uid_t uid);
int veil_setns(int fd, int type);
int veil_setresgid(gid_t gid);
/* Unlocks a pty master and returns its slave's number, or -errno. */
int veil_pty_unlock(int master);
int veil_set_ctty(int fd);
/* fcntl is variadic and so unavailable to Swift. */
int veil_dup_cloexec_above(int fd, int minimum);
int veil_set_cloexec(int fd, int on);
int veil_set_nonblocking(int fd);
/* pipe2(O_CLOEXEC): no window in which another thread's spawn inherits the pipe. */
int veil_pipe_cloexec(int fds[2]);
/* A close-on-exec signalfd for every signal (they must already be blocked). */
int veil_signalfd_all(void);
/* Reads one signal from a signalfd: its number, or -errno. */
int veil_signalfd_read(int fd);
/* Puts a terminal in raw mode; `saved` (sizeof(struct termios) bytes, see veil_termios_size) keeps the old state. */
int veil_termios_size(void);
int veil_make_raw(int fd, void *saved);
int veil_restore_termios(int fd, const void *saved);


#endif
