#ifndef VEIL_IDMAP_H
#define VEIL_IDMAP_H

#include <stdint.h>

/* A detached copy of the mount tree at `path` (open_tree OPEN_TREE_CLONE, with its submounts
   when `recursive`), id-mapped through the user namespace `userns_fd` (mount_setattr
   MOUNT_ATTR_IDMAP): files owned by host uid 0 appear owned by the namespace's root.
   Returns the mount's fd (close-on-exec) or -errno; EINVAL means the filesystem cannot be
   id-mapped. `userns_fd` -1: the copy is not id-mapped (a slave, as the id-mapped ones). */
int veil_idmapped_tree(const char *path, int userns_fd, int recursive);

/* mount_setattr(2) on the mount at `path` (and every mount under it when `recursive`):
   MOUNT_ATTR_* bits to set and to clear. 0 or -errno. */
int veil_mount_setattr_path(const char *path, int recursive, uint64_t attr_set, uint64_t attr_clr);

/* Opens each of `paths` (O_PATH, close-on-exec) as seen in the mount namespace `namespace_fd`,
   from a short-lived thread that alone joins it, so the caller may be multi-threaded. `fds[i]`
   receives the fd or -errno. Returns 0, or -errno when the namespace could not be joined. */
int veil_open_in_mount_namespace(int namespace_fd, const char *const *paths, int count, int *fds);

/* move_mount(2) of a detached mount `fd` onto `target`. 0 or -errno. */
int veil_attach_mount(int fd, const char *target);

/* move_mount(2) of a detached mount `fd` onto the directory or file open as `target_fd` (O_PATH). */
int veil_attach_mount_at(int fd, int target_fd);

/* An overlay mount built in the caller (fsopen/fsconfig/fsmount) from the given option
   strings; each may name /proc/self/fd/N paths of detached, id-mapped layers.
   Returns the detached mount's fd or -errno. */
int veil_overlay_mount(const char *lowerdir, const char *upperdir, const char *workdir, const char *extra_options);

/* 1 when `path` is on overlayfs (which cannot itself be id-mapped), 0 when not, -errno. */
int veil_is_overlay(const char *path);

#endif
