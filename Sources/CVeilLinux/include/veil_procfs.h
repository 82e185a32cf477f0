#ifndef VEIL_PROCFS_H
#define VEIL_PROCFS_H

#include <stddef.h>

/* A sandbox's own /proc files, served over FUSE so that their content is made when they are read
   (LXCFS's approach): a read-only directory holding `version`, `meminfo`, `cpuinfo`, `stat`,
   `cmdline`, `osrelease`, `kernel-version` and `loadavg`, which the sandbox's init binds over /proc (the last
   two over /proc/sys/kernel/osrelease and /proc/sys/kernel/version). */

enum {
    VEIL_PROCFS_VERSION = 0, VEIL_PROCFS_MEMINFO = 1, VEIL_PROCFS_CPUINFO = 2, VEIL_PROCFS_STAT = 3,
    VEIL_PROCFS_CMDLINE = 4, VEIL_PROCFS_OSRELEASE = 5, VEIL_PROCFS_KERNEL_VERSION = 6, VEIL_PROCFS_LOADAVG = 7,
    VEIL_PROCFS_FILES = 8
};

/* Writes file `file`'s current content into buffer (at most capacity bytes); returns its length. */
typedef size_t (*veil_procfs_fill)(void *context, int file, char *buffer, size_t capacity);

/* Opens /dev/fuse and mounts it read-only at `target` (allow_other, default_permissions). Returns
   the FUSE fd (close-on-exec) or -errno. The kernel queues requests on it until someone serves. */
int veil_procfs_mount(const char *target);

/* Serves requests on `fd` until the mount goes away (returns 0), an error (-errno), or, when `wake`
   is not -1, `wake` becomes readable (an eventfd the owner writes to stop it; returns 1, after
   answering the request in hand). Content comes from `fill`, asked at every lookup, stat and read:
   a file's size is its content's length at that moment. A server with a `wake` (create's, before
   the container runs) lets the kernel cache the files' attributes, and invalidates them when woken. */
int veil_procfs_serve(int fd, veil_procfs_fill fill, void *context, int wake);

/* The `wake` descriptor for veil_procfs_serve (an eventfd, close-on-exec), or -errno; and the
   write that stops the server. */
int veil_procfs_wake_fd(void);
int veil_procfs_wake(int wake);

#endif
