#ifndef VEIL_SPAWN_H
#define VEIL_SPAWN_H

#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>

#include "veil_sync.h"

#define VEIL_MAX_JOIN 8
#define VEIL_MAX_EXTRA_FDS 4
#define VEIL_MAX_CGROUPS 16

/* Everything the cloned children need, computed by Swift beforehand so that the children
   only make raw system calls (no allocation, no locks): they run in a copy of a
   multi-threaded process. */
struct veil_spawn_plan {
    int exe_fd;                      /* the veil binary to exec as `veil init`: a read-only detached mount (veil_readonly_exe_fd) */
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
    int cgroup_tasks_fds[VEIL_MAX_CGROUPS]; /* v1 `tasks` files stage 1 writes "0" to, joining itself */
    int cgroup_tasks_count;
    int cgroup_v2_fd;                /* >= 0: a v2 cgroup directory stage 1 is cloned into (CLONE_INTO_CGROUP) */
    /* systemd cgroup driver: stage 1 first asks to be placed (SCOPE_WAIT) and waits for the ACK, so
       systemd moves it into the container's scope before anything else (its namespaces, the init)
       exists: the init starts there and the cgroup namespace is rooted there. */
    int await_scope;
    /* process.oomScoreAdj, written by stage 1 as host root before any user namespace (a value below
       the current one needs CAP_SYS_RESOURCE there, as runc's nsexec does it); the children inherit it. */
    int set_oom_score_adj;
    int oom_score_adj;
    /* Sandbox level: namespaces made before the user namespace, so the host's user namespace owns
       them (CLONE_NEWNET: container root never holds CAP_NET_ADMIN or CAP_NET_RAW over them). */
    int pre_user_unshare_flags;
    int bring_up_loopback;           /* set `lo` up in the network namespace stage 1 is in, before the user namespace */
    /* "path\0value\0" pairs written in that network namespace before the user namespace (its
       sysctls are not writable from inside the sandbox), or NULL. */
    const char *net_sysctls;
    size_t net_sysctls_len;
    /* The init cloned straight from the runtime, its namespaces made by the clone itself, without
       stage 1: for a container that makes no user or time namespace, joins none and waits for no
       scope (one clone, one exit and one handoff fewer on the path every start waits on). The init
       joins its cgroups first and makes its cgroup namespace after, so that it is rooted there. */
    int direct;
};

/* Forks stage 1 (into the v2 cgroup when given), which joins the v1 cgroups, sets up namespaces and clones the init (CLONE_PARENT, so the init is
   the caller's child) and exits. Returns stage 1's pid or -errno. The caller must reap it.
   With `direct`, clones the init itself and returns its pid (nothing to reap before it exits). */
pid_t veil_spawn_init(const struct veil_spawn_plan *plan);

/* Resets every signal disposition to default and unblocks all signals (the init, before execve). */
void veil_reset_signals(void);

/* Runs the static executable open at `executable` chrooted into `root`, stdin from `stdin_fd`,
   stdout and stderr to `output_fd`: for a tool that works on a container's rootfs and must not
   be led out of it by the rootfs's symlinks. Returns the child's pid (the caller reaps it) or
   -errno; exit 125 is a failed chroot, 127 a failed exec. */
/* A restored sandbox's namespaces before CRIU runs: a child that makes a network namespace as host
   root (so the host's user namespace owns it), brings up lo and writes the "path\0value\0" pairs
   of `net_sysctls`, then makes a user namespace, whose maps the caller writes. It writes one byte to
   `report_fd` ('k' once both exist; 'n', 's' or 'u' when the network namespace, a sysctl or the
   user namespace failed, then exits) and waits to be killed. Returns its pid or -errno. */
pid_t veil_spawn_namespace_holder(int report_fd, const char *net_sysctls, size_t net_sysctls_len);

pid_t veil_spawn_chrooted(const char *root, int executable, char *const argv[], int stdin_fd, int output_fd);

#endif
