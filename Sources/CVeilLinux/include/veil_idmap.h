#ifndef VEIL_IDMAP_H
#define VEIL_IDMAP_H

/* A detached copy of the mount tree at `path` (open_tree OPEN_TREE_CLONE, with its submounts
   when `recursive`), id-mapped through the user namespace `userns_fd` (mount_setattr
   MOUNT_ATTR_IDMAP): files owned by host uid 0 appear owned by the namespace's root.
   Returns the mount's fd (close-on-exec) or -errno; EINVAL means the filesystem cannot be
   id-mapped. */
int veil_idmapped_tree(const char *path, int userns_fd, int recursive);

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
