"""The ``jaxmail`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxmail",
        description=(
            "jaxmail: exploitability of multi-agent imitation learning. Batched JAX kernels "
            "for n-player general-sum Markov games (values, occupancies, best responses, "
            "Nash gaps). The library is used from Python: `import jaxmail as jm`."
        ),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="print the versions of jaxmail and JAX and the JAX devices")
    args = parser.parse_args(argv)
    if args.version:
        from jaxmail import __version__

        print(__version__)
        return 0
    if args.command == "info":
        import jax

        import jaxmail

        print(f"jaxmail {jaxmail.__version__}")
        print(f"jax {jax.__version__}")
        print(f"devices: {', '.join(str(d) for d in jax.devices())}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
