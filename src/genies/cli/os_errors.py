"""The one line a command that fails on a file prints: the file, what the system said, and the
fix where there is an obvious one."""

import errno

OS_ERROR_FIXES = {
    # the errno does not say whether a read or a write was refused
    errno.EACCES: "give this user access to it (read for an input, write for an output)",
    errno.EPERM: "give this user access to it (read for an input, write for an output)",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "free some disk space, then run the target again",
    errno.EDQUOT: "free some of your disk quota, then run the target again",
}


def os_error_line(exc: OSError) -> str:
    named = exc.filename2 or exc.filename  # a rename's target, not its temporary source
    where = f"{named}: " if named else ""
    fix = OS_ERROR_FIXES.get(exc.errno)
    return f"{where}{exc.strerror or exc}" + (f"; {fix}" if fix else "")
