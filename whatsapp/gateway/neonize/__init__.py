"""The real WhatsApp gateway: one neonize (whatsmeow) client per child process.

This package is the only place in the project that imports neonize (through
``_lib``), and it is only imported inside a spawned child process (see
docs/ARCHITECTURE.md, docs/NEONIZE.md): neonize's Go core can abort the whole
process, leaks a handle per failed connect, and must never be imported in a
process that may fork.

Layout, one module per reason to change:

* ``_lib``: the guarded import of the neonize library and the names the other
  modules take from it;
* ``mapping``: pure functions (``map_message``, ``map_receipt``,
  ``map_history``) that turn neonize protobuf events into the plain dataclasses
  of :mod:`whatsapp.gateway.base`;
* ``store``: whether whatsmeow's device store holds a device, read with plain SQL (it
  imports no neonize: the worker's start-up check reads it in the parent process);
* ``ffi``: the process-wide reader/writer lock around every FFI call, and how
  neonize errors are classified as transient or permanent;
* ``session``: :class:`NeonizeSession`, the :class:`base.Session` the child hosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from whatsapp.gateway.neonize.session import NeonizeSession

__all__ = ["NeonizeSession"]


def __getattr__(name: str) -> object:
    # Loaded on first use, so the worker's start-up check can read ``store`` (plain SQL)
    # without loading the library into a process that may fork.
    if name == "NeonizeSession":
        from whatsapp.gateway.neonize.session import NeonizeSession

        return NeonizeSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
