"""Runs a command under a seccomp filter built the way systemd builds a
unit's SystemCallFilter= allow list, for tests on machines whose PID 1 is
not systemd.

    syscall_filter.py ALLOWED_FILE COMMAND [ARG...]

ALLOWED_FILE lists the allowed system calls by name, separated by white
space; every other call fails with EPERM (SystemCallErrorNumber=EPERM).
Memory that is both writable and executable is refused as with
MemoryDenyWriteExecute=yes. With SOCKET_FAMILIES set (address family
numbers, comma-separated), socket(2) takes only those families, as with
RestrictAddressFamilies= (the error is EPERM here, EAFNOSUPPORT there). Needs Debian's python3-seccomp (libseccomp's
own bindings) and no_new_privs already set, as setpriv --no-new-privs does.
"""

import errno
import os
import sys

import seccomp

PROT_WRITE = 0x2
PROT_EXEC = 0x4
# Calls whose third argument is a protection mask.
PROTECTION_CALLS = ("mmap", "mprotect", "pkey_mprotect")


def build(allowed, families):
    rules = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    conditional = set(PROTECTION_CALLS)
    if families is not None and "socket" in allowed:
        conditional.add("socket")
        for family in families:
            rules.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    for name in sorted(allowed - conditional):
        try:
            rules.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):
            # A name systemd knows that this architecture lacks.
            pass
    wx = PROT_WRITE | PROT_EXEC
    for name in PROTECTION_CALLS:
        if name not in allowed:
            continue
        # Every protection but writable-and-executable.
        for value in (0, PROT_WRITE, PROT_EXEC):
            arg = seccomp.Arg(2, seccomp.MASKED_EQ, wx, value)
            rules.add_rule(seccomp.ALLOW, name, arg)
    return rules


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: syscall_filter.py ALLOWED_FILE COMMAND [ARG...]")
    with open(sys.argv[1], encoding="ascii") as listing:
        allowed = set(listing.read().split())
    command = sys.argv[2:]
    families = os.environ.get("SOCKET_FAMILIES")
    if families is not None:
        families = [int(f) for f in families.split(",")]
    build(allowed, families).load()
    os.execv(command[0], command)


main()
