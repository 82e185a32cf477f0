#define _GNU_SOURCE
#include "veil_idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#define VEIL_OPEN_TREE_CLONE 1
#define VEIL_AT_RECURSIVE 0x8000
#define VEIL_MOUNT_ATTR_IDMAP 0x00100000
#define VEIL_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define VEIL_FSCONFIG_SET_STRING 1
#define VEIL_FSCONFIG_CMD_CREATE 6
#define VEIL_FSMOUNT_CLOEXEC 1

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct veil_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

int veil_idmapped_tree(const char *path, int userns_fd, int recursive) {
    int flags = VEIL_OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? VEIL_AT_RECURSIVE : 0);
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
    if (fd < 0) return -errno;
    struct veil_mount_attr attr = { VEIL_MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns_fd };
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? VEIL_AT_RECURSIVE : 0), &attr, sizeof attr) < 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

int veil_attach_mount(int fd, const char *target) {
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target, VEIL_MOVE_MOUNT_F_EMPTY_PATH) < 0) return -errno;
    return 0;
}

int veil_attach_mount_at(int fd, int target_fd) {
    if (syscall(SYS_move_mount, fd, "", target_fd, "", VEIL_MOVE_MOUNT_F_EMPTY_PATH | 0x40 /* MOVE_MOUNT_T_EMPTY_PATH */) < 0) return -errno;
    return 0;
}

static int set_string(int fs, const char *key, const char *value) {
    return syscall(SYS_fsconfig, fs, VEIL_FSCONFIG_SET_STRING, key, value, 0) < 0 ? -errno : 0;
}

int veil_overlay_mount(const char *lowerdir, const char *upperdir, const char *workdir, const char *extra_options) {
    int fs = (int)syscall(SYS_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0) return -errno;
    int rc = set_string(fs, "lowerdir", lowerdir);
    if (rc == 0 && upperdir && *upperdir) rc = set_string(fs, "upperdir", upperdir);
    if (rc == 0 && workdir && *workdir) rc = set_string(fs, "workdir", workdir);
    if (rc == 0 && extra_options && *extra_options) {
        /* comma-separated key[=value] options, e.g. "index=off" */
        char buffer[512];
        strncpy(buffer, extra_options, sizeof buffer - 1);
        buffer[sizeof buffer - 1] = 0;
        char *save = NULL;
        for (char *option = strtok_r(buffer, ",", &save); option && rc == 0; option = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(option, '=');
            if (eq) { *eq = 0; rc = set_string(fs, option, eq + 1); }
            else rc = syscall(SYS_fsconfig, fs, 0 /* FSCONFIG_SET_FLAG */, option, NULL, 0) < 0 ? -errno : 0;
        }
    }
    if (rc == 0 && syscall(SYS_fsconfig, fs, VEIL_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) rc = -errno;
    if (rc < 0) { close(fs); return rc; }
    int mnt = (int)syscall(SYS_fsmount, fs, VEIL_FSMOUNT_CLOEXEC, 0);
    int code = errno;
    close(fs);
    return mnt < 0 ? -code : mnt;
}

int veil_is_overlay(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -errno;
    return fs.f_type == 0x794c7630 /* OVERLAYFS_SUPER_MAGIC */;
}
