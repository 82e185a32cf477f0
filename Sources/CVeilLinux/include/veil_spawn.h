#ifndef VEIL_SPAWN_H
#define VEIL_SPAWN_H

#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>

/* Messages on the sync socket between the runtime and the container's first processes.
   Every message is a header followed by `length` payload bytes. */
struct veil_sync_header {
    uint32_t type;
    uint32_t length;
};

enum {
    VEIL_SYNC_STAGE1_READY = 1,  /* stage 1 joined/unshared the user namespace; parent: maps + cgroups, then ACK */
    VEIL_SYNC_INIT_PID = 2,      /* payload: int32 host pid of the container init */
    VEIL_SYNC_CHILD_ERROR = 3,   /* payload: int32 errno, int32 step (enum veil_spawn_step) */
    VEIL_SYNC_JSON = 10,         /* payload: a JSON message from `veil init` */
    VEIL_SYNC_ACK = 100,         /* parent -> child: go on */
    VEIL_SYNC_ABORT = 101,       /* parent -> child: give up */
    VEIL_SYNC_PLAN = 102,        /* parent -> init: the JSON plan */
};

enum veil_spawn_step {
    VEIL_STEP_SETNS = 1,
    VEIL_STEP_UNSHARE_USER = 2,
    VEIL_STEP_SYNC = 3,
    VEIL_STEP_SETID = 4,
    VEIL_STEP_UNSHARE = 5,
    VEIL_STEP_TIMENS = 6,
    VEIL_STEP_CLONE = 7,
    VEIL_STEP_PROTECT_EXE = 8,
    VEIL_STEP_FDS = 9,
    VEIL_STEP_EXEC = 10,
    VEIL_STEP_CGROUP = 11,
    VEIL_STEP_NETWORK = 12,  /* detail: 0 for the loopback, else the 1-based index of the sysctl */
};

#define VEIL_MAX_JOIN 8
#define VEIL_MAX_EXTRA_FDS 4
#define VEIL_MAX_CGROUPS 16

/* Everything the cloned children need, computed by Swift beforehand so that the children
   only make raw system calls (no allocation, no locks): they run in a copy of a
   multi-threaded process. */
struct veil_spawn_plan {
    const char *exe_path;            /* the veil binary to exec as `veil init` */
    int exe_fd;                      /* >= 0: exec this fd (sealed memfd copy) instead of exe_path */
    char *const *argv;
    char *const *envp;
    int join_fds[VEIL_MAX_JOIN];     /* namespace files to setns() into, user namespace last */
    int join_types[VEIL_MAX_JOIN];   /* CLONE_NEW* of each */
    int join_count;
    int unshare_user;                /* create a new user namespace (the parent writes the maps) */
    int unshare_flags;               /* the other CLONE_NEW* flags */
    const char *timens_offsets;      /* written to /proc/self/timens_offsets when CLONE_NEWTIME, or NULL */
    size_t timens_offsets_len;
    int sync_fd;                     /* the children's end of the sync socket */
    int preserve_fds;                /* fds 3 .. 3+preserve_fds-1 pass through */
    int extra_fds[VEIL_MAX_EXTRA_FDS]; /* placed at 3+preserve_fds+i in the init, in order */
    int extra_count;
    int protect_exe;                 /* bind exe_path read-only over itself in the new mount namespace */
    int cgroup_tasks_fds[VEIL_MAX_CGROUPS]; /* v1 `tasks` files stage 1 writes "0" to, joining itself */
    int cgroup_tasks_count;
    int cgroup_v2_fd;                /* >= 0: a v2 cgroup directory stage 1 is cloned into (CLONE_INTO_CGROUP) */
    /* Sandbox level: namespaces made before the user namespace, so the host's user namespace owns
       them (CLONE_NEWNET: container root never holds CAP_NET_ADMIN or CAP_NET_RAW over them). */
    int pre_user_unshare_flags;
    int bring_up_loopback;           /* set `lo` up in the network namespace stage 1 is in, before the user namespace */
    /* "path\0value\0" pairs written in that network namespace before the user namespace (its
       sysctls are not writable from inside the sandbox), or NULL. */
    const char *net_sysctls;
    size_t net_sysctls_len;
};

/* Forks stage 1 (into the v2 cgroup when given), which joins the v1 cgroups, sets up namespaces and clones the init (CLONE_PARENT, so the init is
   the caller's child) and exits. Returns stage 1's pid or -errno. The caller must reap it. */
pid_t veil_spawn_init(const struct veil_spawn_plan *plan);

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
/* Sends one fd with SCM_RIGHTS and `data` as the message body. */
int veil_send_fd(int sock, int fd, const char *data, size_t len);
/* Receives one fd; returns it or -errno. */
int veil_recv_fd(int sock, char *buf, size_t buflen);
int veil_ioctl_int(int fd, unsigned long request, int *value);
int veil_ioctl_ptr(int fd, unsigned long request, void *value);
/* NS_GET_USERNS: a new fd of the user namespace owning the namespace `fd` refers to, or -errno. */
int veil_namespace_owner(int fd);
/* Resets every signal disposition to default and unblocks all signals. */
void veil_reset_signals(void);
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
