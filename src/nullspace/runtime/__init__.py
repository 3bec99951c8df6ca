"""Host side of a sandbox: cgroups, seccomp, overlay rootfs, bwrap launch and teardown."""
