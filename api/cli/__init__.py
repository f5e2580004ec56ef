"""The ``rongxin`` command. Every subcommand has ``--help``; exit codes are in ``errors``.

Subcommands live one module per area (``crypto``: keys, signatures, CA, self-test;
``fp``: fingerprints; ``ledger``: the consortium; ``evidence_verify``: the offline court verifier). Other distributions add groups through the
``rongxin.cli`` entry point (a callable taking the ``rongxin`` group): ``bench`` comes that
way, so the product never imports it. Errors never reach the user as a traceback: ``RongxinGroup``
turns them into one line and a documented exit code.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from .errors import BAD_INPUT, report


class RongxinGroup(click.Group):
    """A click group that maps every error to a one-line message and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code if exc.exit_code else BAD_INPUT)
        except click.exceptions.Abort:
            sys.exit(report(KeyboardInterrupt()))
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - this is the one place that reports
            sys.exit(report(exc))
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=RongxinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rongxin", prog_name="rongxin")
def main() -> None:
    """Rongxin (融信): consortium ledger with national cryptography, copyright
    forensics and privacy computing.

    \b
    Exit codes: 0 ok; 1 a negative answer (invalid signature, revoked or expired
    certificate); 2 unusable input; 3 environment problem; 4 internal error.
    """


def _register() -> None:
    from . import crypto, evidence, evidence_capture, evidence_verify, fp, identity, ledger, mpc, works

    crypto.register(main)
    fp.register(main)
    identity.register(main)
    ledger.register(main)
    evidence_verify.register(main)
    works.register_cli(main)
    evidence.register(main)
    evidence_capture.register(main)
    mpc.register(main)
    for ep in entry_points(group="rongxin.cli"):
        ep.load()(main)


_register()
