"""``python -m whatsapp.simulator``: the simulator without Django (same options as the command)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from .server import DESCRIPTION, SimulatorServer, add_arguments, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m whatsapp.simulator", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = SimulatorServer(
        args.host, args.port, qr_interval=args.qr_interval, qr_rotations=args.qr_rotations
    )
    asyncio.run(
        serve(server, on_ready=lambda url: print(f"WhatsApp simulator on {url}", flush=True))
    )


if __name__ == "__main__":
    main()
