"""The shapes of ``shutil.which`` and ``subprocess.run``, taken as parameters wherever we use them.

Every module that looks up a tool or starts a process gets these injected, so tests
replace the host with fakes instead of patching modules.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

Which = Callable[[str], "str | None"]
"""``shutil.which``: the full path of a command on PATH, or None."""

RunCommand = Callable[..., "subprocess.CompletedProcess[str]"]
"""``subprocess.run`` as we call it (``text=True``, so output is ``str``)."""
