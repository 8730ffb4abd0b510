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
* ``store``: whether whatsmeow's device store holds a device, read with plain SQL;
* ``ffi``: the process-wide reader/writer lock around every FFI call, and how
  neonize errors are classified as transient or permanent;
* ``session``: :class:`NeonizeSession`, the :class:`base.Session` the child hosts.
"""

from whatsapp.gateway.neonize.session import NeonizeSession

__all__ = ["NeonizeSession"]
