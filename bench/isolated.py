"""`python -m bench.isolated REPORT CMD...`: run CMD as a child of this small process, report its peak RSS.

A child's ru_maxrss starts from the memory of the process that forked it: Linux carries the
parent's high-water mark across fork (and vfork) and exec. Forked straight from the bench, which
holds hundreds of MB, the run would be charged for the bench's memory. Forked from this launcher
(a bare interpreter), it is charged for its own.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    """Fork, exec CMD, wait; write {"max_rss_kib", "exit_code"} to REPORT; exit as CMD did."""
    report, command = argv[0], argv[1:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w", encoding="utf-8") as out:
        json.dump({"max_rss_kib": usage.ru_maxrss, "exit_code": code}, out)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
