"""Every exit status of `atc-xaccount`, in one table (docs/cli.md prints it; a test keeps them equal)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNDECIDABLE = 3
    DRIFT = 4
    ROWS = 5
    PIPE = 141


#: status -> what it means, for every command.
MEANING: dict[Exit, str] = {
    Exit.OK: "done: every execution SUCCEEDED, every doctor link is ok, nothing drifted",
    Exit.FAILED: "an execution FAILED (or was not found to succeed), the doctor found a broken link, "
    "or AWS refused a call",
    Exit.USAGE: "nothing was started: bad arguments or input file, an event no rule delivers, "
    "or missing configuration (credentials, region, deployment), named in one line on stderr",
    Exit.UNDECIDABLE: "`doctor`: nothing is broken, but some links depend on what only the real request carries",
    Exit.DRIFT: "`audit`: the audit ran and found drift (each drifted cluster is listed)",
    Exit.ROWS: "`register --from-file` / `local run --from-file`: the bulk run finished, but some rows "
    "were rejected or failed (each is listed with its line)",
    Exit.PIPE: "the reader of the output went away (piped into `head`, say): the command stops quietly",
}
