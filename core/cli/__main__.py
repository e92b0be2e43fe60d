"""``python -m jinarag.cli``: the same as the ``jinarag`` command."""

from __future__ import annotations

import sys

from jinarag.cli import main

sys.exit(main())
