"""Runs a command under a seccomp filter built the way systemd builds a
unit's SystemCallFilter= allow list, for tests on machines whose PID 1 is
not systemd.

    syscall_filter.py ALLOWED_FILE COMMAND [ARG...]

ALLOWED_FILE lists the allowed system calls by name, separated by white
space; every other call fails with EPERM (SystemCallErrorNumber=EPERM).
Memory that is both writable and executable is refused as with
MemoryDenyWriteExecute=yes. Needs Debian's python3-seccomp (libseccomp's
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


def build(allowed):
    rules = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for name in sorted(allowed - set(PROTECTION_CALLS)):
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
    build(allowed).load()
    os.execv(command[0], command)


main()
