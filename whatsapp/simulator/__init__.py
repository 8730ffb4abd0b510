"""A fake WhatsApp network for tests, demos and benchmarks (see :mod:`.server`).

No Django here: the package runs standalone and inside any test.
"""

from .client import ControlClient, ControlError
from .server import SimulatorServer, run_in_thread, serve

__all__ = ["ControlClient", "ControlError", "SimulatorServer", "run_in_thread", "serve"]
