// A spec's mount options are read by VeilMountOptions (its own module so that the shim can use
// the same table without linking the spec types); users of VeilSpec see them as before.
@_exported import VeilMountOptions
