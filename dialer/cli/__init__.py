"""The `dialer` command line (contract: shared/cli-contract.md).

Commands parse options, call the library and print. Library errors (`DialerError`) become a
one-line message on stderr and exit code 2 for bad input, 1 for runtime failures.

The commands live by subject: `app` (the group, its options and the configuration file),
`common` (the store, errors, output), `campaigns`, `lists`, `agents`, `worker`, `sim`, `reports` (reports and status).
"""

from dialer.cli.app import main, run  # (each command's module is loaded when it runs: app.LAZY)

__all__ = ["main", "run"]
